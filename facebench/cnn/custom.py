"""CNNs of the user's own, added from Python and then used like ``seed`` and ``default``.

:func:`register_cnn` is the one documented way to add a CNN without editing facebench:
the name is then valid in ``models.cnn``, its builder parameters are keys of its
``[cnn.NAME]`` table, and :func:`facebench.cnn.default_params`, ``resolve_params``,
``describe``, ``build_model``, ``fit``, saving and :func:`facebench.cnn.load` take it.
Register in the process that runs the benchmark, before ``facebench.compare.run``;
worker processes get the registrations through :func:`user_cnns` / :func:`add_user_cnns`.
"""

from __future__ import annotations

import copy
import re

from facebench.cnn.params import (
    _REGISTERED,
    MODEL_NAMES,
    _training_defaults,
    check_builder_params,
    cnn_names,
)

__all__ = ["add_user_cnns", "build_registered", "cnn_names", "register_cnn", "user_cnns"]

#: The input every registration is checked on: (H, W) of a zero image, channels from the recipe.
CHECK_SIZE = 32

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_PARAM_TYPES = (bool, int, float, str, tuple, list, type(None))


def register_cnn(name, builder, *, params=None, base="default", summary=""):
    """Add a CNN, valid in the config (``models.cnn``, ``[cnn.NAME]``) like a built-in one.

    ``builder(input_shape, **builder_params) -> keras.Model`` takes ``input_shape``
    ``(H, W, C)`` (C 1 or 3) and returns a model of uint8-range images whose outputs
    are a dict ``{"age": (N, 1) years, "gender": (N, 1) P(female)}``, as
    :func:`facebench.cnn.build_default` does (scale the input to [0, 1] inside the
    model). The CNN trains with ``base``'s recipe (``image_size``, ``color``,
    ``epochs``, ``batch_size``, ``augment``, ... of :func:`facebench.cnn.default_params`),
    except that ``standardize_age`` is off unless ``params`` has ``age_mean`` and
    ``age_std`` (then :func:`facebench.cnn.fit` sets them from the training ages and the
    builder must map its standardised output back to years, as ``build_default`` does).

    The builder is built once here, on a ``32 x 32`` zero image, and its outputs
    checked. For ``--dask`` workers it must be picklable: a module-level function
    of an importable module, not a lambda or a nested function. Use standard Keras
    layers: a saved model then loads without the registration (``facebench predict``,
    ``explain``); see :func:`facebench.cnn.load` for layers of one's own::

        def build_tiny(input_shape, *, filters=16, dropout=0.2):
            inputs = keras.Input(input_shape)
            x = keras.layers.Rescaling(1 / 255)(inputs)
            x = keras.layers.Conv2D(filters, 3, activation="relu")(x)
            x = keras.layers.Dropout(dropout)(keras.layers.GlobalAveragePooling2D()(x))
            return keras.Model(inputs, {"age": keras.layers.Dense(1, name="age")(x),
                                        "gender": keras.layers.Dense(1, "sigmoid", name="gender")(x)})

        register_cnn("tiny", build_tiny, params={"filters": 16, "dropout": 0.2}, summary="one conv")

    Parameters
    ----------
    name : str
        New, not a built-in CNN; letters, digits, "_" and "-" only (a TOML key and a
        file name: the run calls it ``cnn-NAME``).
    builder : callable
    params : dict, optional
        The builder's keyword parameters and their defaults: bool, int, float, str,
        list / tuple or None. Each is a key of ``[cnn.NAME]``; a config value must
        have its default's type (any for None). They may not share a name with a
        training key (``epochs``, ``image_size``, ...), nor be ``base`` (a variant's key).
    base : str
        The CNN whose training recipe this one takes (a name of :func:`cnn_names`).
    summary : str, optional
        One line for ``facebench models`` and the report.

    Returns
    -------
    str
        ``name``.

    Raises
    ------
    ValueError
        One line naming what is wrong.
    """
    where = f"register_cnn({name!r})"
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"register_cnn: name={name!r} must be letters, digits, '_' or '-' "
                         "(a TOML key and a file name)")
    if name in MODEL_NAMES:
        raise ValueError(f"{where}: {name!r} is a built-in CNN; choose another name")
    if name in _REGISTERED:
        raise ValueError(f"{where}: a CNN named {name!r} is registered already")
    if not callable(builder):
        raise ValueError(f"{where}: builder={builder!r} is not callable")
    if base not in cnn_names():
        raise ValueError(f"{where}: base={base!r} must be one of {', '.join(cnn_names())}")
    if not isinstance(summary, str) or "\n" in summary:
        raise ValueError(f"{where}: summary must be one line of text")
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise ValueError(f"{where}: params must be a dict of the builder's parameters and their defaults")
    training = copy.deepcopy(_training_defaults(base))
    for key, value in params.items():
        if not isinstance(key, str) or not _NAME.fullmatch(key):
            raise ValueError(f"{where}: parameter name {key!r} must be letters, digits, '_' or '-'")
        if key in training:
            raise ValueError(f"{where}: parameter {key!r} is a training key of the recipe; rename it")
        if key == "base":
            raise ValueError(f"{where}: parameter 'base' names a variant's base in [cnn.NAME]; rename it")
        if not isinstance(value, _PARAM_TYPES):
            raise ValueError(f"{where}: parameter {key}={value!r} must default to a bool, int, float, str, "
                             "list, tuple or None")
    if not {"age_mean", "age_std"} <= set(params):
        training["standardize_age"] = False
    entry = {"builder": builder, "base": base, "params": copy.deepcopy(params), "training": training,
             "summary": summary or f"a CNN of the user's own ({_qualname(builder)}, {base}'s recipe)"}
    _REGISTERED[name] = entry
    try:
        channels = 3 if training["color"] == "rgb" else 1
        _build_and_check(name, (CHECK_SIZE, CHECK_SIZE, channels), params, run=True, where=where)
    except Exception:
        del _REGISTERED[name]
        raise
    return name


def build_registered(name, input_shape, params):
    """Build the registered CNN ``name`` with ``params`` (every builder key); outputs checked.

    Raises
    ------
    ValueError
        For a bad parameter value, or a model whose outputs are not ``age`` and ``gender``.
    """
    return _build_and_check(name, input_shape, params, run=False, where=f"CNN {name!r}")


def _build_and_check(name, input_shape, params, *, run, where):
    import numpy as np

    from facebench.cnn.models import keras_module

    keras = keras_module()
    shape, checked = check_builder_params(name, input_shape, params)
    builder = _REGISTERED[name]["builder"]
    call = f"{_qualname(builder)}({shape}, **params)"
    try:
        model = builder(shape, **checked)
    except Exception as exc:  # noqa: BLE001 - whatever the user's code raises, said in one line
        raise ValueError(f"{where}: {call} failed: {_one_line(exc)}") from None
    if not isinstance(model, keras.Model):
        raise ValueError(f"{where}: {call} returned {type(model).__name__}, not a keras.Model")
    try:  # a functional model knows its outputs without running
        static = model.output
    except (AttributeError, ValueError):
        static = None
    if static is not None:
        _check_outputs(where, static)
    if run:
        try:
            out = model(np.zeros((2, *shape), dtype="float32"), training=False)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"{where}: the model of {call} fails on a {shape} input: {_one_line(exc)}") from None
        _check_outputs(where, out)
    return model


def _check_outputs(where, out):
    if not isinstance(out, dict) or set(out) != {"age", "gender"}:
        got = sorted(map(str, out)) if isinstance(out, dict) else f"a {type(out).__name__}"
        raise ValueError(f"{where}: the model's outputs must be a dict with keys 'age' and 'gender', got {got}")
    for key in ("age", "gender"):
        shape = tuple(getattr(out[key], "shape", ()))
        if shape[1:] != (1,):
            raise ValueError(f"{where}: output {key!r} has shape {shape}; expected (N, 1), one value per "
                             "image (end with Dense(1))")


def user_cnns() -> dict:
    """The CNNs added by :func:`register_cnn` in this process, as one dict.

    A worker process (joblib, Dask) starts with the built-in CNNs only; pass it this
    and call :func:`add_user_cnns` there before building a model. The dict pickles
    when every builder does: module-level functions of importable modules, not
    lambdas or nested functions.
    """
    return {name: copy.deepcopy({k: v for k, v in entry.items() if k != "builder"}) | {"builder": entry["builder"]}
            for name, entry in _REGISTERED.items()}


def add_user_cnns(cnns: dict) -> None:
    """Install CNNs from :func:`user_cnns` (in a worker); those already there are replaced.

    Nothing is built here (the main process checked each one).

    Raises
    ------
    ValueError
        For a name that is a built-in CNN.
    """
    for name, entry in cnns.items():
        if name in MODEL_NAMES:
            raise ValueError(f"add_user_cnns: {name!r} is a built-in CNN")
        _REGISTERED[name] = {**copy.deepcopy({k: v for k, v in entry.items() if k != "builder"}),
                             "builder": entry["builder"]}


def _qualname(fn):
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _one_line(exc):
    text = str(exc).strip()
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first[:300]}" if first else type(exc).__name__

