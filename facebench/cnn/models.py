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

:func:`facebench.cnn.default_params` returns everything needed to train a preset (the
builder parameters above plus the training recipe that :func:`facebench.cnn.fit` reads);
:mod:`facebench.cnn.params` checks them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facebench.cnn.params import MODEL_NAMES, ParamError, builder_keys, check_builder_params, default_params
from facebench.tf_runtime import tf_module

#: Ages a distribution head predicts over: 0, 1, ..., 116 years.
AGE_BINS = 117


def build_model(name: str, input_shape: Sequence[int], **params):
    """Build the preset ``name`` for images of ``input_shape``.

    Parameters
    ----------
    name : str
        ``"seed"``, ``"default"`` or a CNN added by :func:`facebench.cnn.register_cnn`.
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
    defaults = default_params(name)
    for key in params:
        if key not in defaults:
            raise ParamError(key, params[key], "", unknown=True, allowed=defaults, name=name)
    kwargs = {key: params.get(key, defaults[key]) for key in builder_keys(name)}
    if name not in MODEL_NAMES:
        from facebench.cnn.custom import build_registered

        return build_registered(name, input_shape, kwargs)
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
    shape, a = check_builder_params("seed", input_shape, {
        "filters": filters, "kernel_size": kernel_size, "pool_size": pool_size, "strides": strides,
        "padding": padding, "dense_units": dense_units, "dropout": dropout, "age_activation": age_activation})
    filters, kernel_size, pool_size, strides = a["filters"], a["kernel_size"], a["pool_size"], a["strides"]
    padding, dense_units, dropout, age_activation = a["padding"], a["dense_units"], a["dropout"], a["age_activation"]

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
    gender = layers.Dense(1, activation="sigmoid", name="gender", dtype="float32")(g)
    a = layers.Dense(dense_units, activation="relu", name="age_dense")(d1)
    a = layers.Dropout(dropout, name="age_dropout")(a)
    age = layers.Dense(1, activation=age_activation, name="age", dtype="float32")(a)
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
    age_head="linear",
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
      sets ``age_mean``/``age_std`` from the training ages. With
      ``age_head="distribution"`` instead: a softmax over the ages 0-116 (``age_dist``)
      and its expected value (``age``, a fixed, untrained dot product with 0, 1, ..., 116),
      as in DEX and DLDL-v2; the loss is still on the age in years, and
      :func:`facebench.cnn.fit` starts the softmax at the training ages' histogram.
      The distribution is a third output, ``age_dist``, which the training loss may pull
      towards a Gaussian around each face's age (``age_kl_weight``, DLDL-v2).
    """
    keras = keras_module()
    layers = keras.layers
    shape, a = check_builder_params("default", input_shape, {
        "stem_filters": stem_filters, "stem_kernel_size": stem_kernel_size, "stem_strides": stem_strides,
        "filters": filters, "convs_per_block": convs_per_block, "kernel_size": kernel_size, "pool_size": pool_size,
        "separable": separable, "batch_norm": batch_norm, "bn_momentum": bn_momentum, "dense_units": dense_units,
        "dropout": dropout, "age_mean": age_mean, "age_std": age_std, "age_head": age_head})
    stem_filters, stem_kernel_size, stem_strides = a["stem_filters"], a["stem_kernel_size"], a["stem_strides"]
    filters, convs_per_block, kernel_size, pool_size = a["filters"], a["convs_per_block"], a["kernel_size"], a["pool_size"]
    separable, batch_norm, bn_momentum = a["separable"], a["batch_norm"], a["bn_momentum"]
    dense_units, dropout, age_mean, age_std = a["dense_units"], a["dropout"], a["age_mean"], a["age_std"]

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
    # the heads compute in float32 under mixed precision too
    gender = layers.Dense(1, activation="sigmoid", name="gender", dtype="float32")(x)
    if a["age_head"] == "distribution":
        dist = layers.Dense(AGE_BINS, activation="softmax", name="age_dist", dtype="float32")(x)
        expected = layers.Dense(1, use_bias=False, trainable=False, name="age", dtype="float32")
        age = expected(dist)
        expected.set_weights([np.arange(AGE_BINS, dtype=np.float32).reshape(AGE_BINS, 1)])
        return keras.Model(inputs, {"age": age, "gender": gender, "age_dist": dist}, name="default")
    else:
        age_z = layers.Dense(1, name="age_z", dtype="float32")(x)
        age = layers.Rescaling(scale=age_std, offset=age_mean, name="age", dtype="float32")(age_z)
    return keras.Model(inputs, {"age": age, "gender": gender}, name="default")


# --- TensorFlow, imported lazily (facebench.tf_runtime) ------------------------------


def keras_module():
    """The ``keras`` package, after :func:`tf_module` has set TensorFlow up."""
    tf_module()
    import keras

    return keras
