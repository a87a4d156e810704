"""Classical models of the user's own, added to the registry from Python.

:func:`register_model` is the one documented way to add a model without editing
facebench: a registered name is valid in the config (``models.gender`` /
``models.age``), in ``facebench models`` and in the models table, like a built-in.
Register in the process that runs the benchmark, before ``facebench.compare.run``.
"""

from __future__ import annotations

import re

from facebench.baselines.registry import (
    _REGISTERED,
    COLOR_FEATURES,
    FEATURES,
    HEADS,
    MODEL_TASKS,
    MODELS,
    TASKS,
    _from_factory,
)

__all__ = ["add_user_models", "file_safe", "register_model", "user_models"]


def register_model(name, features, head=None, *, tasks, color=None, summary="", factory=None):
    """Add a classical model to the registry, valid in the config like a built-in one.

    Either combine registered parts (``features``: names of ``FEATURES``, a tuple or
    a "+"-joined string; ``head``: a key of ``HEADS``), or give a ``factory(task,
    random_state, n_jobs) -> Pipeline`` whose first step, named ``"features"``, is a
    stateless transformer (``features`` is then a short label of those features).
    Call it before the run, in the same process (e.g. a script that then calls
    ``facebench.compare.run``)::

        register_model("lbp+linsvm", ("lbp",), "linsvm", tasks=("gender",))

    Saved models are loaded back only when every type they hold is in
    ``TRUSTED_TYPES``; a factory model made of other types runs, but
    ``facebench predict`` / ``explain`` refuse its files.

    Parameters
    ----------
    name : str
        New; its file-safe form (every character outside ``[A-Za-z0-9._-]`` -> "-")
        must differ from every other model's and not start with "cnn-".
    features : sequence of str or str
    head : str, optional
        Required without ``factory``, refused with it.
    tasks : sequence of {"age", "gender"}
    color : {"rgb", None}, optional
        The input the model takes; for a combination it follows from its features.
    summary : str, optional
        One short sentence for ``facebench models`` and the report.
    factory : callable, optional

    Raises
    ------
    ValueError
        One line naming what is wrong.
    """
    _check_new_name(name)
    tasks = tuple(tasks) if isinstance(tasks, (list, tuple)) else (tasks,)
    if not tasks or len(set(tasks)) != len(tasks) or not set(tasks) <= set(TASKS):
        raise ValueError(f"register_model({name!r}): tasks={tasks!r} must be a non-empty subset of {TASKS}")
    if color not in (None, "rgb"):
        raise ValueError(f"register_model({name!r}): color={color!r} must be 'rgb' or None")
    if not isinstance(summary, str) or "\n" in summary:
        raise ValueError(f"register_model({name!r}): summary must be one line of text")
    if factory is not None:
        if head is not None:
            raise ValueError(f"register_model({name!r}): give a head or a factory, not both")
        if not callable(factory):
            raise ValueError(f"register_model({name!r}): factory={factory!r} is not callable")
        label = features if isinstance(features, str) else "+".join(map(str, features))
        entry = {"features": label, "head": None, "factory": factory, "color": color, "summary": summary}
        _REGISTERED[name], MODEL_TASKS[name] = entry, tasks
        try:
            for task in tasks:
                _from_factory(name, task, 0, None)
        except Exception:
            del _REGISTERED[name], MODEL_TASKS[name]
            raise
        return name
    names = tuple(features.split("+")) if isinstance(features, str) else tuple(features)
    unknown = [f for f in names if f not in FEATURES]
    if not names or unknown:
        raise ValueError(f"register_model({name!r}): unknown feature(s) {unknown or names!r}; known: {', '.join(FEATURES)}")
    if head not in HEADS:
        raise ValueError(f"register_model({name!r}): head={head!r} must be one of {', '.join(HEADS)} (or give a factory)")
    if not set(tasks) <= set(HEADS[head][0]):
        raise ValueError(f"register_model({name!r}): head {head!r} does tasks {HEADS[head][0]}, not {tasks}")
    derived = "rgb" if COLOR_FEATURES & set(names) else None
    if color is not None and color != derived:
        raise ValueError(f"register_model({name!r}): color={color!r} does not match its features "
                         f"(color={derived!r}); leave color out")
    MODELS[name] = (names, head)
    MODEL_TASKS[name] = tasks
    _REGISTERED[name] = {"features": "+".join(names), "head": head, "factory": None, "color": derived,
                         "summary": summary}
    return name


def file_safe(name):
    """``name`` as a file name: every character outside ``[A-Za-z0-9._-]`` becomes "-"."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", name)


def _check_new_name(name):
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError(f"register_model: name={name!r} must be a non-empty string without surrounding spaces")
    if name in MODEL_TASKS:
        raise ValueError(f"register_model: a model named {name!r} exists already")
    safe = file_safe(name)
    if safe.startswith("cnn-"):
        raise ValueError(f"register_model: name={name!r} would clash with the CNNs' file names (cnn-...); rename it")
    clash = next((other for other in MODEL_TASKS if file_safe(other) == safe), None)
    if clash is not None:
        raise ValueError(f"register_model: {name!r} and {clash!r} would share the file name {safe!r}; rename it")


def user_models() -> dict:
    """The models added by :func:`register_model` in this process, as one picklable dict.

    A worker process (joblib, Dask) starts with the built-in registry only; pass it
    this and call :func:`add_user_models` there before building a model.
    """
    return {name: {"entry": dict(entry), "spec": MODELS.get(name), "tasks": MODEL_TASKS[name]}
            for name, entry in _REGISTERED.items()}


def add_user_models(models: dict) -> None:
    """Install models from :func:`user_models` (in a worker); those already there are replaced.

    Raises
    ------
    ValueError
        For a name that is a built-in model.
    """
    for name, model in models.items():
        if name in MODEL_TASKS and name not in _REGISTERED:
            raise ValueError(f"add_user_models: {name!r} is a built-in model")
        if model["spec"] is not None:
            MODELS[name] = tuple(model["spec"])
        MODEL_TASKS[name] = tuple(model["tasks"])
        _REGISTERED[name] = dict(model["entry"])
