"""The CNNs' parameters: each preset's defaults and the one checker of every value.

:func:`default_params` gives everything needed to build and train a preset
(builder keys such as ``filters`` plus the training recipe such as ``epochs``);
:func:`resolve_params` completes a caller's overrides from it and checks every
key and value, raising :class:`ParamError` (a ``ValueError``) that names the key,
the value and what is allowed. The builders and :func:`facebench.cnn.fit` rely on
it, and the configuration wraps its message, so no value is checked twice.
No TensorFlow here.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Sequence

__all__ = ["MODEL_NAMES", "ParamError", "builder_keys", "check_builder_params", "cnn_names", "default_params",
           "describe", "resolve_params"]

MODEL_NAMES = ("seed", "default")

# CNNs added by facebench.cnn.custom.register_cnn: name -> {"builder", "base", "params"
# (builder defaults), "training" (the recipe, from the base), "summary"}.
_REGISTERED: dict[str, dict] = {}


def cnn_names() -> tuple[str, ...]:
    """Every CNN name: the built-in ones, then those added by :func:`facebench.cnn.register_cnn`."""
    return MODEL_NAMES + tuple(_REGISTERED)

# Builder parameters per preset. Every key here is a keyword of the builder.
_BUILDER_DEFAULTS: dict[str, dict] = {
    "seed": {
        "filters": (32, 64, 128, 256),
        "kernel_size": 3,
        "pool_size": 2,
        "strides": 1,
        "padding": "valid",
        "dense_units": 256,
        "dropout": 0.3,
        "age_activation": "relu",
    },
    "default": {
        "stem_filters": 24,
        "stem_kernel_size": 3,
        "stem_strides": 2,
        "filters": (24, 48, 96, 192),
        "convs_per_block": 2,
        "kernel_size": 3,
        "pool_size": 2,
        "separable": False,
        "batch_norm": True,
        "bn_momentum": 0.9,
        "dense_units": 128,
        "dropout": 0.3,
        "age_mean": 33.0,
        "age_std": 20.0,
        # "linear": one unit on the standardised age; "distribution": a softmax over the
        # ages 0-116 whose expected value is the prediction (DEX / DLDL-v2's expectation).
        "age_head": "linear",
    },
}

# Training recipe per preset (read by facebench.cnn.fit, ignored by the builders).
_TRAINING_DEFAULTS: dict[str, dict] = {
    "seed": {
        "image_size": 128,
        "color": "gray",
        "epochs": 30,
        "batch_size": 32,
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "weight_decay": 0.0,
        "lr_schedule": None,
        "validation_split": 0.2,
        "patience": None,
        "monitor": "val_loss",
        "augment": None,
        "age_loss": "mae",
        "huber_delta": 1.0,
        "loss_weights": {"age": 1.0, "gender": 1.0},
        "standardize_age": False,
        "deterministic": False,
        "jit_compile": "auto",
        "precision": "float32",
        "ema": 0.0,
        "test_time_flip": False,
        "low_res_epochs": 0,
        "low_res_size": 32,
    },
    "default": {
        "image_size": 64,
        "color": "gray",
        "epochs": 30,
        "batch_size": 64,
        "optimizer": "adam",
        "learning_rate": 2e-3,
        "weight_decay": 0.0,
        "lr_schedule": "cosine",
        "validation_split": 0.1,
        "patience": 6,
        "monitor": "val_loss",
        "augment": {
            "flip": True,
            "shift": 0.06,
            "rotation": 10.0,
            "zoom": 0.06,
            "contrast": 0.2,
            "brightness": 0.1,
        },
        "age_loss": "mae",
        "huber_delta": 1.0,
        "loss_weights": {"age": 1.0, "gender": 1.0},
        # with age_head = "distribution": the weight of a KL loss between the head's
        # distribution and a Gaussian of age_sigma years around each face's age (DLDL-v2)
        "age_kl_weight": 0.0,
        "age_sigma": 2.0,
        "standardize_age": True,
        "deterministic": False,
        "jit_compile": "auto",
        # "bfloat16": mixed precision (bfloat16 compute, float32 weights and heads); "auto":
        # bfloat16 where the CPU computes it natively (facebench.machine.has_bf16), else float32.
        "precision": "float32",
        # > 0: keep an exponential moving average of the weights with this momentum (per
        # step), validate and early-stop on the averaged weights, and end with them.
        "ema": 0.0,
        # Predict each face and its mirror image and average the two (age and P(female)).
        # Measured on the 5k subset, 8 trained models: MAE lower in 8 of 8 (0.01-0.31 years),
        # accuracy higher in 7 of 8 (up to +1.3 points); it doubles prediction time only.
        "test_time_flip": True,
        # The first ``low_res_epochs`` epochs train on the faces shrunk to ``low_res_size``
        # pixels (a quarter of the compute at 32 of 64), then the same weights go on at
        # ``image_size``: for CNNs whose weights do not depend on the image size (global
        # pooling), as ``default``. 0 is off (benchmarks/RESULTS.md has the measurement).
        "low_res_epochs": 0,
        "low_res_size": 32,
    },
}


def default_params(name: str) -> dict:
    """Everything needed to build and train the preset ``name``.

    Parameters
    ----------
    name : str
        One of :func:`cnn_names`: ``"seed"``, ``"default"`` or a CNN added by
        :func:`facebench.cnn.register_cnn` (its builder parameters, its base's recipe).

    Returns
    -------
    dict
        A fresh copy: builder parameters (``filters``, ``kernel_size``, ...) and the
        training recipe (``image_size``, ``color``, ``epochs``, ``batch_size``,
        ``learning_rate``, ``optimizer``, ``validation_split``, ``patience``
        (``None``: no early stopping), ``augment``, ``loss_weights``, ...).

    Raises
    ------
    ValueError
        If ``name`` is not a known preset.
    """
    _check_name(name)
    params = copy.deepcopy(_training_defaults(name))
    params.update(copy.deepcopy(_builder_defaults(name)))
    return params


def builder_keys(name: str) -> tuple[str, ...]:
    """The parameter names the builder of ``name`` takes."""
    _check_name(name)
    return tuple(_builder_defaults(name))


_AUGMENT_KEYS = ("flip", "shift", "rotation", "zoom", "contrast", "brightness")
_OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
_LR_SCHEDULES = (None, "cosine", "plateau")
_AGE_LOSSES = ("mae", "huber", "mse")
PRECISIONS = ("float32", "bfloat16", "auto")

_SUMMARIES = {
    "seed": "the study's CNN: 4 conv + max-pool blocks, flatten, dense heads (age relu, MAE in years)",
    "default": "a small CPU CNN: strided stem, conv-BN-ReLU blocks, global pooling, standardised age, "
               "augmentation, test-time flip",
}


class ParamError(ValueError):
    """A bad CNN parameter: ``key`` (dotted for ``augment``), ``value`` and what is ``expected``.

    ``unknown`` is true for a key the preset does not have; ``allowed`` then
    lists the keys it has and ``suggestion`` the closest one (or None).
    """

    def __init__(self, key, value, expected, *, unknown=False, allowed=(), name=None):
        self.key, self.value, self.expected, self.unknown = key, value, expected, unknown
        self.allowed = tuple(allowed)
        close = difflib.get_close_matches(str(key), [str(a) for a in self.allowed], n=1) if unknown else []
        self.suggestion = close[0] if close else None
        if unknown:
            hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
            where = f" for CNN {name!r}" if name else ""
            message = f"unknown parameter {key!r}{where}{hint}; allowed: {', '.join(sorted(self.allowed))}"
        else:
            message = f"{key}={value!r}: expected {expected}"
        super().__init__(message)


def describe(name: str) -> dict:
    """What a CNN preset is, as the models table and ``facebench models`` show it.

    Returns
    -------
    info : dict
        ``name``, ``kind`` ("cnn"), ``family`` ("learned"), ``tasks`` ("age",
        "gender"), ``features`` ("learned"), ``estimator`` ("keras"), and the
        preset's default ``image_size``, ``color`` and a one-line ``summary``.
    """
    _check_name(name)
    p = _training_defaults(name)
    summary = _REGISTERED[name]["summary"] if name in _REGISTERED else _SUMMARIES[name]
    return {"name": name, "kind": "cnn", "tasks": ("age", "gender"), "family": "learned", "features": "learned",
            "estimator": "keras", "image_size": p["image_size"], "color": p["color"], "summary": summary}


def resolve_params(name, params=None):
    """``default_params(name)`` updated with ``params``, every key and value checked.

    ``"none"`` (TOML has no null) stands for ``None`` in ``patience`` and
    ``lr_schedule``; ``augment = true`` means the ``default`` preset's augmentation;
    a partial ``loss_weights`` keeps the other weight; lists become tuples.

    Raises
    ------
    ParamError
        A ``ValueError`` naming the key, the bad value and what is allowed (for an
        unknown key, the closest known one).
    """
    resolved = default_params(name)
    if params is not None and not isinstance(params, dict):
        raise ParamError("params", params, "a dict of parameters")
    params = dict(params or {})
    for key in params:
        if key not in resolved:
            raise ParamError(key, params[key], "", unknown=True, allowed=resolved, name=name)
    if params.get("augment") is True:
        params["augment"] = copy.deepcopy(_TRAINING_DEFAULTS["default"]["augment"])
    if isinstance(params.get("loss_weights"), dict):
        params["loss_weights"] = {**resolved["loss_weights"], **params["loss_weights"]}
    for key in ("patience", "lr_schedule"):
        if isinstance(params.get(key), str) and params[key].lower() == "none":
            params[key] = None
    for key, default in _builder_defaults(name).items():  # lists from JSON / TOML, e.g. filters
        if isinstance(default, tuple) and isinstance(params.get(key), list):
            params[key] = tuple(params[key])
    resolved.update(params)
    _check_training_params(name, resolved)
    channels = 3 if resolved["color"] == "rgb" else 1
    try:
        check_builder_params(name, (resolved["image_size"], resolved["image_size"], channels),
                             {k: resolved[k] for k in _builder_defaults(name)})
    except ParamError as exc:
        if exc.key != "input_shape":
            raise
        raise ParamError("image_size", resolved["image_size"], exc.expected) from None
    return resolved


def check_builder_params(name, input_shape, params):
    """Check a builder's input shape and keyword arguments; return ``(shape, checked params)``.

    ``shape`` is ``(H, W, C)``; ``params`` must hold every builder key of ``name``.
    Raises :class:`ParamError` for a bad value or an input too small for the layers.
    """
    _check_name(name)
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ParamError("input_shape", input_shape, "(H, W) or (H, W, C)") from None
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) != 3 or shape[2] not in (1, 3) or min(shape[:2]) < 1:
        raise ParamError("input_shape", input_shape, "(H, W) or (H, W, C) with C 1 or 3")
    if name in _REGISTERED:  # a builder of the user's own: each value of its default's type
        return shape, {key: _like_default(key, params[key], default)
                       for key, default in _REGISTERED[name]["params"].items()}
    checked = {key: check(key, params[key]) for key, check in _BUILDER_CHECKS[name].items()}
    size = min(shape[:2])
    for kernel, stride, padding in _spatial_steps(name, checked):
        size = (size - kernel) // stride + 1 if padding == "valid" else -(-size // stride)
        if size < 1:
            raise ParamError("input_shape", tuple(shape),
                             f"an input large enough for CNN {name!r} with these parameters (the feature map "
                             "shrinks to nothing); use larger images or fewer blocks")
    return shape, checked


def _spatial_steps(name, p):
    """The (kernel, stride, padding) steps that shrink the feature map of a preset."""
    if name == "seed":
        return [(p["kernel_size"], p["strides"], p["padding"]), (p["pool_size"], p["pool_size"], "valid")] * len(p["filters"])
    return [(p["stem_kernel_size"], p["stem_strides"], "same")] + [(p["pool_size"], p["pool_size"], "valid")] * (len(p["filters"]) - 1)


def _check_name(name):
    if name not in MODEL_NAMES and name not in _REGISTERED:
        raise ValueError(f"unknown CNN name {name!r}; allowed: {', '.join(cnn_names())}")


def _builder_defaults(name):
    return _REGISTERED[name]["params"] if name in _REGISTERED else _BUILDER_DEFAULTS[name]


def _training_defaults(name):
    return _REGISTERED[name]["training"] if name in _REGISTERED else _TRAINING_DEFAULTS[name]


def _like_default(key, value, default):
    """A registered builder's parameter: a value of its default's type (any value for a None default)."""
    if default is None:
        return value
    if isinstance(default, bool):
        return _boolean(key, value)
    if isinstance(default, int):
        if not _is_int(value):
            raise ParamError(key, value, f"an integer (the default is {default!r})")
        return value
    if isinstance(default, float):
        if not _is_number(value):
            raise ParamError(key, value, f"a number (the default is {default!r})")
        return float(value)
    if isinstance(default, (tuple, list)):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ParamError(key, value, f"a list (the default is {list(default)!r})")
        return tuple(value) if isinstance(default, tuple) else list(value)
    if not isinstance(value, type(default)):
        raise ParamError(key, value, f"a {type(default).__name__} (the default is {default!r})")
    return value


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(key, value):
    if not _is_int(value) or value < 1:
        raise ParamError(key, value, "a positive integer")
    return value


def _nonnegative_int(key, value):
    if not _is_int(value) or value < 0:
        raise ParamError(key, value, "an integer >= 0")
    return value


def _int_tuple(key, value):
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value or not all(
            _is_int(v) and v >= 1 for v in value):
        raise ParamError(key, value, "a non-empty sequence of positive integers")
    return tuple(value)


def _fraction(key, value):
    if not _is_number(value) or not 0 <= value < 1:
        raise ParamError(key, value, "a number in [0, 1)")
    return float(value)


def _number(key, value):
    if not _is_number(value):
        raise ParamError(key, value, "a number")
    return float(value)


def _positive_number(key, value):
    if not _is_number(value) or value <= 0:
        raise ParamError(key, value, "a positive number")
    return float(value)


def _boolean(key, value):
    if not isinstance(value, bool):
        raise ParamError(key, value, "true or false")
    return value


def _choice(*allowed):
    def check(key, value):
        if value not in allowed:
            raise ParamError(key, value, "one of " + ", ".join(map(repr, allowed)))
        return value

    return check


_BUILDER_CHECKS = {
    "seed": {"filters": _int_tuple, "kernel_size": _positive_int, "pool_size": _positive_int,
             "strides": _positive_int, "padding": _choice("valid", "same"), "dense_units": _positive_int,
             "dropout": _fraction, "age_activation": _choice("relu", "linear", "softplus")},
    "default": {"stem_filters": _positive_int, "stem_kernel_size": _positive_int, "stem_strides": _positive_int,
                "filters": _int_tuple, "convs_per_block": _positive_int, "kernel_size": _positive_int,
                "pool_size": _positive_int, "separable": _boolean, "batch_norm": _boolean,
                "bn_momentum": _fraction, "dense_units": _nonnegative_int, "dropout": _fraction,
                "age_mean": _number, "age_std": _positive_number,
                "age_head": _choice("linear", "distribution")},
}


def _check_training_params(name, p):
    def bad(key, allowed):
        raise ParamError(key, p[key], allowed)

    if not _is_int(p["image_size"]) or p["image_size"] < 8:
        bad("image_size", "an integer >= 8")
    _choice("gray", "rgb")("color", p["color"])
    for key in ("epochs", "batch_size"):
        _positive_int(key, p[key])
    if not _is_number(p["learning_rate"]) or not 0 < p["learning_rate"] < 10:
        bad("learning_rate", "a number in (0, 10)")
    if not _is_number(p["weight_decay"]) or p["weight_decay"] < 0:
        bad("weight_decay", "a number >= 0")
    _choice(*_OPTIMIZERS)("optimizer", p["optimizer"])
    if p["lr_schedule"] not in _LR_SCHEDULES:
        bad("lr_schedule", "'none', 'cosine' or 'plateau'")
    vs = _fraction("validation_split", p["validation_split"])
    pat = p["patience"]
    if pat is not None and (not _is_int(pat) or pat < 0):
        bad("patience", "'none' (no early stopping) or an integer >= 0")
    if not isinstance(p["monitor"], str):
        bad("monitor", "a history key such as 'val_loss'")
    if (pat is not None or p["lr_schedule"] == "plateau") and vs == 0 and p["monitor"].startswith("val_"):
        raise ParamError("validation_split", vs, f"> 0: patience={pat!r} / lr_schedule={p['lr_schedule']!r} "
                                                 f"monitor {p['monitor']!r}")
    aug = p["augment"]
    if aug not in (None, False):
        if not isinstance(aug, dict):
            bad("augment", "none, false, true or a table with keys " + ", ".join(_AUGMENT_KEYS))
        for key, value in aug.items():
            if key not in _AUGMENT_KEYS:
                raise ParamError(f"augment.{key}", value, "", unknown=True, allowed=_AUGMENT_KEYS)
            if key == "flip":
                _boolean("augment.flip", value)
            elif not _is_number(value) or value < 0 or (key != "rotation" and value >= 1):
                raise ParamError(f"augment.{key}", value, "a number >= 0 (< 1 but for rotation)")
    _choice(*_AGE_LOSSES)("age_loss", p["age_loss"])
    _positive_number("huber_delta", p["huber_delta"])
    lw = p["loss_weights"]
    if not isinstance(lw, dict) or set(lw) != {"age", "gender"} or not all(_is_number(v) and v >= 0 for v in lw.values()):
        bad("loss_weights", "a table {age = w, gender = w} of numbers >= 0")
    for key in ("standardize_age", "deterministic", "test_time_flip"):
        _boolean(key, p[key])
    if p["standardize_age"] and "age_std" not in _builder_defaults(name):
        bad("standardize_age", f"false: CNN {name!r} has no de-standardising age head")
    if p["jit_compile"] not in ("auto", True, False):
        bad("jit_compile", "'auto', true or false")
    _choice(*PRECISIONS)("precision", p["precision"])
    if not _is_number(p["ema"]) or not 0 <= p["ema"] < 1:
        bad("ema", "a number in [0, 1): 0 is off, 0.99-0.9999 the usual momenta")
    if "low_res_epochs" in p:
        if not _is_int(p["low_res_epochs"]) or not 0 <= p["low_res_epochs"] < p["epochs"]:
            bad("low_res_epochs", f"an integer from 0 (off) to epochs - 1 = {p['epochs'] - 1}")
        if p["low_res_epochs"] and (not _is_int(p["low_res_size"]) or not 8 <= p["low_res_size"] < p["image_size"]):
            bad("low_res_size", f"an integer from 8 to image_size - 1 = {p['image_size'] - 1}")
    if "age_kl_weight" in p:
        if not _is_number(p["age_kl_weight"]) or p["age_kl_weight"] < 0:
            bad("age_kl_weight", "a number >= 0")
        _positive_number("age_sigma", p["age_sigma"])
