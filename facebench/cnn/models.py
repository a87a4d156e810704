"""Keras model builders for age regression and gender classification.

Two presets, each a builder function that reads top to bottom (check the
arguments, the input, the blocks, the heads) and returns a ``keras.Model`` whose
outputs are a dict with the keys ``"age"`` (years) and ``"gender"`` (P(female)):

``seed``
    The study's model exactly as published (see :func:`build_seed`), kept with
    its quirks as the reference point.
``default``
    A small CPU-friendly network designed to beat ``seed`` on both tasks at a
    fraction of its training time (see :func:`build_default`).

Both take raw uint8-range images, ``(H, W, 1)`` or ``(H, W, 3)``, and scale them
to [0, 1] inside the model, so callers pass the decoded uint8 stacks as they are.

:func:`default_params` returns everything needed to train a preset (the builder
parameters above plus the training recipe that :func:`facebench.cnn.fit` reads).
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Sequence

MODEL_NAMES = ("seed", "default")

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
        "test_time_flip": False,
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
        "standardize_age": True,
        "deterministic": False,
        "jit_compile": "auto",
        # Predict each face and its mirror image and average the two (age and P(female)).
        # Measured on the 5k subset, 8 trained models: MAE lower in 8 of 8 (0.01-0.31 years),
        # accuracy higher in 7 of 8 (up to +1.3 points); it doubles prediction time only.
        "test_time_flip": True,
    },
}


def default_params(name: str) -> dict:
    """Everything needed to build and train the preset ``name``.

    Parameters
    ----------
    name : {"seed", "default"}

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
    params = copy.deepcopy(_TRAINING_DEFAULTS[name])
    params.update(copy.deepcopy(_BUILDER_DEFAULTS[name]))
    return params


def builder_keys(name: str) -> tuple[str, ...]:
    """The parameter names the builder of ``name`` takes."""
    _check_name(name)
    return tuple(_BUILDER_DEFAULTS[name])


def build_model(name: str, input_shape: Sequence[int], **params):
    """Build the preset ``name`` for images of ``input_shape``.

    Parameters
    ----------
    name : {"seed", "default"}
    input_shape : (H, W) or (H, W, C) with C in {1, 3}
    **params
        Builder parameters overriding the preset's (see :func:`default_params`).
        Training keys of :func:`default_params` are accepted and ignored, so
        ``build_model(name, shape, **default_params(name))`` works.

    Returns
    -------
    keras.Model
        Outputs ``{"age": (N, 1) years, "gender": (N, 1) P(female)}``.

    Raises
    ------
    ValueError
        For an unknown name, an unknown parameter, or a bad value (the message
        names it).
    """
    _check_name(name)
    unknown = sorted(set(params) - set(_BUILDER_DEFAULTS[name]) - set(_TRAINING_DEFAULTS[name]))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) for CNN {name!r}: {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(set(_BUILDER_DEFAULTS[name]) | set(_TRAINING_DEFAULTS[name])))}"
        )
    kwargs = copy.deepcopy(_BUILDER_DEFAULTS[name])
    kwargs.update({k: v for k, v in params.items() if k in _BUILDER_DEFAULTS[name]})
    builder = build_seed if name == "seed" else build_default
    return builder(input_shape, **kwargs)


def build_seed(
    input_shape,
    *,
    filters=(32, 64, 128, 256),
    kernel_size=3,
    pool_size=2,
    strides=1,
    padding="valid",
    dense_units=256,
    dropout=0.3,
    age_activation="relu",
):
    """The study's CNN, as published.

    Input (128, 128, 1) scaled to [0, 1]; Conv2D 32, 64, 128, 256 (3x3, relu,
    'valid' padding), each followed by 2x2 max-pooling; flatten; Dense 256 relu
    (``d1``) -> Dropout 0.3 -> ``gender`` Dense(1, sigmoid); ``d1`` -> Dense 256
    relu -> Dropout 0.3 -> ``age`` Dense(1, relu). 2,813,698 parameters at
    128x128x1, 84 % of them in ``d1`` (6*6*256 = 9,216 inputs x 256).

    Notes
    -----
    Kept as the reference point, quirks included:

    - The age head is ``relu`` on the raw target in years with an MAE loss: a
      unit whose pre-activation goes negative for every input outputs 0 and gets
      no gradient ("dead" head; every prediction is then 0 years). With a
      zero-initialised bias it starts at the edge of that region.
    - The age target is not standardised: MAE in years (~15 at the start) and
      binary cross-entropy (~0.69) are summed unweighted, so early training and
      ``val_loss`` are driven by age.
    - The gender head branches off ``d1`` before dropout, the age head after a
      second dense layer: the two tasks get different depths.
    - Flatten into a 2.4M-weight dense layer: most of the parameters and a large
      share of the overfitting on a few thousand faces.
    - No batch normalisation, no augmentation, no early stopping (30 epochs).
    """
    keras = keras_module()
    layers = keras.layers
    shape = _check_input_shape("seed", input_shape)
    filters = _check_int_tuple("filters", filters)
    kernel_size = _check_positive_int("kernel_size", kernel_size)
    pool_size = _check_positive_int("pool_size", pool_size)
    strides = _check_positive_int("strides", strides)
    padding = _check_choice("padding", padding, ("valid", "same"))
    dense_units = _check_positive_int("dense_units", dense_units)
    dropout = _check_fraction("dropout", dropout)
    age_activation = _check_choice("age_activation", age_activation, ("relu", "linear", "softplus"))
    _check_spatial_fit(
        "seed", shape, [(kernel_size, strides, padding), (pool_size, pool_size, "valid")] * len(filters)
    )

    inputs = keras.Input(shape=shape, name="image")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)

    # Blocks: conv -> max-pool
    for i, n in enumerate(filters, start=1):
        x = layers.Conv2D(
            n, kernel_size, strides=strides, padding=padding, activation="relu", name=f"block{i}_conv"
        )(x)
        x = layers.MaxPooling2D(pool_size, name=f"block{i}_pool")(x)

    # Heads
    x = layers.Flatten(name="flatten")(x)
    d1 = layers.Dense(dense_units, activation="relu", name="d1")(x)
    g = layers.Dropout(dropout, name="gender_dropout")(d1)
    gender = layers.Dense(1, activation="sigmoid", name="gender")(g)
    a = layers.Dense(dense_units, activation="relu", name="age_dense")(d1)
    a = layers.Dropout(dropout, name="age_dropout")(a)
    age = layers.Dense(1, activation=age_activation, name="age")(a)
    return keras.Model(inputs, {"age": age, "gender": gender}, name="seed")


def build_default(
    input_shape,
    *,
    stem_filters=24,
    stem_kernel_size=3,
    stem_strides=2,
    filters=(24, 48, 96, 192),
    convs_per_block=2,
    kernel_size=3,
    pool_size=2,
    separable=False,
    batch_norm=True,
    bn_momentum=0.9,
    dense_units=128,
    dropout=0.3,
    age_mean=33.0,
    age_std=20.0,
):
    """A small CNN for CPUs: strided stem, conv-BN-ReLU blocks, global pooling.

    Input (64, 64, 1) scaled to [0, 1] -> stem conv (stride ``stem_strides``) ->
    for each entry of ``filters`` a block of ``convs_per_block`` 'same' convs
    (depthwise-separable after the first block when ``separable``), each with
    batch norm and ReLU, then max-pooling (global average pooling after the last
    block) -> Dropout -> Dense(``dense_units``, relu) -> two heads. Batch-norm
    ``bn_momentum`` is 0.9 rather than Keras' 0.99: with ~60 steps per epoch on a
    few thousand faces the moving statistics otherwise lag the weights for
    several epochs and the validation metrics (and early stopping) see a
    different network from the one being trained. The heads:

    - ``gender``: Dense(1, sigmoid), P(female);
    - ``age``: a linear unit on the standardised target, mapped back to years in
      the model itself by a fixed ``Rescaling(scale=age_std, offset=age_mean)``,
      so predictions (and the saved model) are in years. :func:`facebench.cnn.fit`
      sets ``age_mean``/``age_std`` from the training ages.
    """
    keras = keras_module()
    layers = keras.layers
    shape = _check_input_shape("default", input_shape)
    stem_filters = _check_positive_int("stem_filters", stem_filters)
    stem_kernel_size = _check_positive_int("stem_kernel_size", stem_kernel_size)
    stem_strides = _check_positive_int("stem_strides", stem_strides)
    filters = _check_int_tuple("filters", filters)
    convs_per_block = _check_positive_int("convs_per_block", convs_per_block)
    kernel_size = _check_positive_int("kernel_size", kernel_size)
    pool_size = _check_positive_int("pool_size", pool_size)
    separable = _check_bool("separable", separable)
    batch_norm = _check_bool("batch_norm", batch_norm)
    bn_momentum = _check_fraction("bn_momentum", bn_momentum)
    dense_units = _check_nonnegative_int("dense_units", dense_units)
    dropout = _check_fraction("dropout", dropout)
    age_mean = _check_float("age_mean", age_mean)
    age_std = _check_float("age_std", age_std, positive=True)
    steps = [(stem_kernel_size, stem_strides, "same")] + [(pool_size, pool_size, "valid")] * (len(filters) - 1)
    _check_spatial_fit("default", shape, steps)

    inputs = keras.Input(shape=shape, name="image")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)

    # Stem: one strided conv halves the resolution before anything expensive
    x = layers.Conv2D(
        stem_filters, stem_kernel_size, strides=stem_strides, padding="same", use_bias=not batch_norm, name="stem_conv"
    )(x)
    if batch_norm:
        x = layers.BatchNormalization(momentum=bn_momentum, name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)

    # Blocks: [conv -> BN -> ReLU] x convs_per_block -> pool
    for i, n in enumerate(filters, start=1):
        for j in range(1, convs_per_block + 1):
            conv = layers.SeparableConv2D if separable and i > 1 else layers.Conv2D
            x = conv(n, kernel_size, padding="same", use_bias=not batch_norm, name=f"block{i}_conv{j}")(x)
            if batch_norm:
                x = layers.BatchNormalization(momentum=bn_momentum, name=f"block{i}_bn{j}")(x)
            x = layers.ReLU(name=f"block{i}_relu{j}")(x)
        if i < len(filters):
            x = layers.MaxPooling2D(pool_size, name=f"block{i}_pool")(x)

    # Heads
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    if dense_units:
        x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    gender = layers.Dense(1, activation="sigmoid", name="gender")(x)
    age_z = layers.Dense(1, name="age_z")(x)
    age = layers.Rescaling(scale=age_std, offset=age_mean, name="age")(age_z)
    return keras.Model(inputs, {"age": age, "gender": gender}, name="default")


# --- TensorFlow, imported lazily ---------------------------------------------------

_TF_READY = False


def tf_module():
    """Import TensorFlow on first use: quietly, and with both kinds of threading set.

    ``import facebench`` stays fast because nothing imports TensorFlow at module
    level. On first use the C++ start-up chatter (oneDNN notices, absl warnings)
    is silenced unless the user set ``TF_CPP_MIN_LOG_LEVEL`` themselves, and the
    thread pools are sized to the cores this process may use (``FACEBENCH_THREADS``
    overrides), which matters in containers where ``os.cpu_count()`` over-reports.
    """
    global _TF_READY
    if _TF_READY:
        import tensorflow as tf

        return tf
    quiet = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    if quiet:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    with _stderr_silenced(quiet):
        import tensorflow as tf
    if quiet:  # Python-side chatter too, e.g. retracing warnings for a short last batch
        tf.get_logger().setLevel("ERROR")
    threads = int(os.environ.get("FACEBENCH_THREADS", 0)) or _usable_cores()
    with contextlib.suppress(RuntimeError):  # the runtime was already started by someone else
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(2, threads))
    _TF_READY = True
    return tf


def keras_module():
    """The ``keras`` package, after :func:`tf_module` has set TensorFlow up."""
    tf_module()
    import keras

    return keras


def _usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def _stderr_silenced(active):
    """Send file descriptor 2 to /dev/null (C++ logging ignores Python's sys.stderr)."""
    if not active:
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# --- argument checks ---------------------------------------------------------------


def _check_name(name):
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown CNN name {name!r}; allowed: {', '.join(MODEL_NAMES)}")


def _check_input_shape(name, input_shape):
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape={input_shape!r}: expected (H, W) or (H, W, C)") from None
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) != 3 or shape[2] not in (1, 3) or min(shape[:2]) < 1:
        raise ValueError(f"input_shape={input_shape!r}: expected (H, W) or (H, W, C) with C 1 or 3")
    return shape


def _check_spatial_fit(name, shape, steps):
    """Raise if the spatial size shrinks below 1 along the (kernel, stride, padding) steps."""
    size = min(shape[:2])
    for kernel, stride, padding in steps:
        size = (size - kernel) // stride + 1 if padding == "valid" else -(-size // stride)
        if size < 1:
            raise ValueError(
                f"input_shape={tuple(shape)} is too small for CNN {name!r} with these parameters "
                "(the feature map shrinks to nothing); use larger images or fewer blocks"
            )


def _check_positive_int(key, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key}={value!r}: expected a positive integer")
    return value


def _check_nonnegative_int(key, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key}={value!r}: expected an integer >= 0")
    return value


def _check_int_tuple(key, value):
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ValueError(f"{key}={value!r}: expected a non-empty sequence of positive integers")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{key}={value!r}: expected a non-empty sequence of positive integers")
    return tuple(value)


def _check_fraction(key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{key}={value!r}: expected a number in [0, 1)")
    return float(value)


def _check_float(key, value, positive=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (positive and value <= 0):
        raise ValueError(f"{key}={value!r}: expected a {'positive ' if positive else ''}number")
    return float(value)


def _check_bool(key, value):
    if not isinstance(value, bool):
        raise ValueError(f"{key}={value!r}: expected true or false")
    return value


def _check_choice(key, value, allowed):
    if value not in allowed:
        raise ValueError(f"{key}={value!r}: allowed: {', '.join(map(str, allowed))}")
    return value
