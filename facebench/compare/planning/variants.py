"""Named variants: a model of the run defined as a base model with some parameters changed.

A run config may define, beside the registry's models and the CNN presets::

    [classical.svr-c10]                     # a classical variant, used in models.age
    base = "hog6+lbp+svr"
    params = { C = 10.0 }                   # scikit-learn's nested names (or a unique ending)

    [cnn.wide]                              # a CNN variant, used in models.cnn
    base = "default"
    filters = [32, 64, 128, 256]

Each variant is a model like any other in the run: its own units, metrics and paired
tests. Everything in :mod:`facebench.compare` that builds, describes or schedules a
model asks this module, so a variant and a built-in are one code path.

A classical variant's parameter that the base's cross-validated search would choose
(e.g. the SVR's ``C``) is taken out of that search: the value given is used as is.
"""

from __future__ import annotations

import difflib

from facebench.errors import UserError

#: How many close parameter names a bad key's message shows.
_SHOWN = 6


# --------------------------------------------------------------------------- classical


def classical_base(config: dict, name: str) -> str:
    """The registry model a run's classical model is built from (itself unless a variant)."""
    variant = config.get("classical", {}).get(name)
    return variant["base"] if variant else name


def classical_params(config: dict, name: str) -> dict:
    """The parameters a variant sets on its base (full scikit-learn names); ``{}`` for a registry model."""
    variant = config.get("classical", {}).get(name)
    return dict(variant.get("params", {})) if variant else {}


def build_classical(config: dict, name: str, task: str, random_state=None, n_jobs=None):
    """A fresh, unfitted pipeline for a run's classical model (a registry model or a variant).

    Its RBF SVC / SVR heads (registry, variant or registered model alike) are fitted by
    the run's ``svm_backend`` (:mod:`facebench.baselines.svm_backend`).
    """
    return build_model(classical_base(config, name), classical_params(config, name), task, svm_backend(config),
                       random_state=random_state, n_jobs=n_jobs)


def build_model(base: str, params: dict, task: str, backend: str, random_state=None, n_jobs=None):
    """A fresh, unfitted pipeline: registry model ``base`` with ``params`` set (full scikit-learn
    names; each taken out of the base's search), its RBF SVMs fitted by ``backend``."""
    from facebench.baselines import make_model
    from facebench.baselines.svm_backend import use_backend

    model = make_model(base, task, random_state=random_state, n_jobs=n_jobs)
    if params:
        model.set_params(**_as_values(params))
        _untune(model, params)
    return use_backend(model, backend)


def svm_backend(config: dict) -> str:
    """The library that fits a run's RBF SVMs: ``"onedal"`` or ``"libsvm"`` (config key ``svm_backend``)."""
    from facebench.baselines.svm_backend import resolve

    return resolve(config.get("svm_backend", "auto"))


def classical_svm_backend(config: dict, name: str, tasks) -> str | None:
    """The library of a run's classical model's RBF SVMs, or None when it has none."""
    from facebench.baselines.svm_backend import svm_params

    has_svm = any(svm_params(build_classical({**config, "svm_backend": "libsvm"}, name, task)) for task in tasks)
    return svm_backend(config) if has_svm else None


def classical_tasks(config: dict, name: str) -> tuple:
    from facebench.baselines import MODEL_TASKS

    return tuple(MODEL_TASKS[classical_base(config, name)])


def check_classical_variant(name: str, variant, known: list[str]) -> dict:
    """Validate ``[classical.NAME]``; return it normalised (full parameter names).

    Raises :class:`UserError` naming the key, the value and what is allowed.
    """
    from facebench.baselines import MODEL_TASKS, make_model

    where = f"classical.{name}"
    if not isinstance(variant, dict):
        raise UserError(f"config key {where!r} = {variant!r} is invalid: expected a table with base and params")
    extra = sorted(set(variant) - {"base", "params", "summary"})
    if extra:
        raise UserError(f"config key '{where}.{extra[0]}' is unknown; allowed: base, params, summary")
    if name in known:
        raise UserError(f"config key {where!r}: {name!r} is a registry model already; give the variant a new name")
    base = variant.get("base")
    if base not in known:
        close = difflib.get_close_matches(str(base), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(f"config key '{where}.base' = {base!r} is invalid{hint}: expected a classical model, "
                        f"one of {', '.join(known)}")
    params = variant.get("params", {})
    if not isinstance(params, dict):
        raise UserError(f"config key '{where}.params' = {params!r} is invalid: expected a table of parameters")
    summary = variant.get("summary", "")
    if not isinstance(summary, str) or "\n" in summary:
        raise UserError(f"config key '{where}.summary' = {summary!r} is invalid: expected one line of text")
    full = {}
    for task in MODEL_TASKS[base]:
        model = make_model(base, task)
        names = list(model.get_params(deep=True))
        for key, value in params.items():
            full[_full_name(where, base, key, names)] = value
        try:
            model.set_params(**_as_values(full))
            _untune(model, full)
            _check_values(model)
        except (ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"config key '{where}.params' = {params!r} is invalid for {base!r}: {first}") from None
    return {"base": base, "params": full, **({"summary": summary} if summary else {})}


def _full_name(where, base, key, names) -> str:
    """A parameter's full nested name: itself, or the one name that ends with ``__key``."""
    if not isinstance(key, str):
        raise UserError(f"config key '{where}.params' has a key {key!r}: expected a parameter name")
    if key in names:
        return key
    endings = [n for n in names if n.endswith("__" + key)]
    if len(endings) == 1:
        return endings[0]
    if len(endings) > 1:
        raise UserError(f"config key '{where}.params.{key}' is ambiguous in {base!r}: "
                        f"{', '.join(endings[:_SHOWN])}; give the full name")
    settable = [n for n in names if not _is_object_param(n, names)]
    close = difflib.get_close_matches(key, settable, n=_SHOWN, cutoff=0.3)
    tails = difflib.get_close_matches(key, [n.rsplit("__", 1)[-1] for n in settable], n=3, cutoff=0.5)
    close += [n for n in settable if n.rsplit("__", 1)[-1] in tails and n not in close]
    shown = ", ".join(close[:_SHOWN]) or ", ".join(settable[:_SHOWN])
    raise UserError(f"config key '{where}.params.{key}' is unknown in {base!r}; close: {shown} "
                    f"(facebench models --params {base} lists all {len(settable)})")


def _is_object_param(name, names) -> bool:
    """Whether ``name`` is a step (an estimator with parameters of its own) rather than a value."""
    return any(other.startswith(name + "__") for other in names)


def settable_params(base: str) -> dict:
    """``{full name: default}`` of every value a variant of ``base`` may set (for ``facebench models --params``)."""
    from facebench.baselines import MODEL_TASKS, make_model

    out = {}
    for task in MODEL_TASKS[base]:
        params = make_model(base, task).get_params(deep=True)
        out.update({k: v for k, v in params.items() if not _is_object_param(k, params)})
    return out


def _as_values(params: dict) -> dict:
    """TOML has no tuples: lists become tuples (e.g. ``pixels_per_cell = [6, 6]``)."""
    return {k: _tuple(v) for k, v in params.items()}


def _tuple(value):
    return tuple(_tuple(v) for v in value) if isinstance(value, list) else value


def _untune(model, params: dict) -> None:
    """Take each parameter the variant fixes out of the cross-validated search that would override it."""
    from facebench.baselines.estimators import TunedEstimator

    every = model.get_params(deep=True)
    for prefix, step in every.items():
        if not isinstance(step, TunedEstimator):
            continue
        lead = f"{prefix}__estimator__"
        fixed = {k[len(lead):] for k in params if k.startswith(lead)}
        if not fixed:
            continue
        grids = step.param_grid if isinstance(step.param_grid, list) else [step.param_grid]
        kept = [{k: v for k, v in grid.items() if k not in fixed} for grid in grids]
        step.set_params(param_grid=kept if isinstance(step.param_grid, list) else kept[0])


def _check_values(model) -> None:
    """scikit-learn's own parameter checks, which otherwise run only at fit time."""
    for step in [model, *model.get_params(deep=True).values()]:
        validate = getattr(step, "_validate_params", None)  # scikit-learn's constraint checker
        if callable(validate) and hasattr(step, "_parameter_constraints"):
            validate()


# --------------------------------------------------------------------------- CNNs


def cnn_presets() -> list[str]:
    """The CNNs a run may name or base a variant on: the presets and those registered from Python."""
    from facebench import cnn

    names = getattr(cnn, "cnn_names", None)
    return list(names() if names else cnn.MODEL_NAMES)


def cnn_base(config: dict, name: str) -> str:
    """The CNN preset a run's CNN is built from (itself unless a variant)."""
    table = config.get("cnn", {}).get(name, {})
    return table.get("base", name) if isinstance(table, dict) else name


def cnn_overrides(config: dict, name: str) -> dict:
    """The parameters a run's CNN changes on its preset (``[cnn.NAME]`` without ``base``)."""
    table = config.get("cnn", {}).get(name, {})
    return {k: v for k, v in table.items() if k != "base"} if isinstance(table, dict) else {}


def cnn_params(config: dict, name: str) -> dict:
    """Every resolved parameter of a run's CNN (preset defaults updated with its overrides)."""
    from facebench.cnn import resolve_params

    return resolve_params(cnn_base(config, name), cnn_overrides(config, name))
