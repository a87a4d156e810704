"""Training, prediction, saving and loading of the age + gender CNNs.

:func:`fit` takes the decoded uint8 training images and their labels, carves a
validation slice out of *those* rows only, streams both through ``tf.data``
(gather from the in-memory array, augmentation, prefetch: no re-decoding and no
Python loop per batch), trains the preset and returns a :class:`FittedCNN` with
the model, the resolved parameters, the per-epoch history and the timings.
:meth:`FittedCNN.save` / :func:`load` round-trip all of it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from facebench.cnn.models import (
    _BUILDER_DEFAULTS,
    _TRAINING_DEFAULTS,
    build_model,
    default_params,
    keras_module,
    tf_module,
)
from facebench.data.cache import atomic_write_text

AGE_MAX = 116.0
_AUGMENT_KEYS = ("flip", "shift", "rotation", "zoom", "contrast", "brightness")
_OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
_LR_SCHEDULES = (None, "cosine", "plateau")
_AGE_LOSSES = ("mae", "huber", "mse")


class FittedCNN:
    """A trained CNN with everything needed to report on it and to use it again.

    Attributes
    ----------
    model : keras.Model
        Outputs ``{"age": years, "gender": P(female)}``; takes uint8-range images.
    name : str
        The preset (``"seed"`` or ``"default"``).
    params : dict
        The resolved parameters it was trained with (``default_params(name)``
        updated with the caller's, plus ``age_mean``/``age_std`` when learned).
    history : dict[str, list[float]]
        The Keras history, one value per epoch run (``loss``, ``age_loss``,
        ``age_mae``, ``gender_loss``, ``gender_accuracy`` and their ``val_``
        twins, ``learning_rate`` when a schedule reports it).
    timings : dict
        ``fit_s`` (wall seconds of training), ``epochs_run``, ``s_per_epoch``
        (mean), ``epoch_s`` (each epoch, validation included), ``n_train``,
        ``n_validation``.
    validation_index : ndarray of int
        Rows of the training images that were held out for validation.
    """

    def __init__(self, model, name, params, history=None, timings=None, validation_index=None):
        self.model = model
        self.name = name
        self.params = params
        self.history = history or {}
        self.timings = timings or {}
        self.validation_index = np.asarray(
            validation_index if validation_index is not None else [], dtype=np.int64
        )

    def __repr__(self):
        return (
            f"FittedCNN(name={self.name!r}, epochs_run={self.timings.get('epochs_run')}, "
            f"input_shape={tuple(self.model.input_shape[1:])})"
        )

    def predict(self, images, batch_size=256):
        """Predict age and gender for a stack of images.

        Parameters
        ----------
        images : ndarray of shape (n, H, W) or (n, H, W, C), uint8 range
            Decoded at the size and colour the model was trained on.
        batch_size : int

        With ``params["test_time_flip"]`` (on for ``default``, off for ``seed``)
        each face and its mirror image are predicted and the two outputs
        averaged, before clipping.

        Returns
        -------
        dict
            ``age``: float ndarray (n,), years clipped to [0, 116];
            ``p_female``: float ndarray (n,) in [0, 1];
            ``gender``: int ndarray (n,), 1 (female) where ``p_female >= 0.5``.
        """
        x = _as_model_input(images, tuple(self.model.input_shape[1:]))
        if len(x) == 0:
            return {"age": np.zeros(0), "p_female": np.zeros(0), "gender": np.zeros(0, dtype=np.int64)}
        age, p_female = self._predict_raw(x, batch_size)
        if self.params.get("test_time_flip", False):
            # mirror along the width axis; the two predictions are averaged
            age_m, p_female_m = self._predict_raw(np.ascontiguousarray(x[:, :, ::-1]), batch_size)
            age, p_female = (age + age_m) / 2, (p_female + p_female_m) / 2
        age = np.clip(age, 0.0, AGE_MAX)
        p_female = np.clip(p_female, 0.0, 1.0)
        return {"age": age, "p_female": p_female, "gender": (p_female >= 0.5).astype(np.int64)}

    def _predict_raw(self, x, batch_size):
        out = self.model.predict(x, batch_size=int(batch_size), verbose=0)
        return (np.asarray(out["age"], dtype=np.float64).reshape(-1),
                np.asarray(out["gender"], dtype=np.float64).reshape(-1))

    def save(self, path):
        """Write ``PATH.keras`` (the model) and ``PATH.json`` (name, params, history, timings).

        ``path`` may end in ``.keras`` or not. Both files are written atomically
        (temporary file, then rename).
        """
        keras_path, json_path = _paths(path)
        keras_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".keras", prefix=".tmp-", dir=keras_path.parent)
        os.close(fd)
        try:
            self.model.save(tmp)
            os.replace(tmp, keras_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        meta = {
            "name": self.name,
            "params": _jsonable(self.params),
            "history": self.history,
            "timings": _jsonable(self.timings),
            "validation_index": self.validation_index.tolist(),
        }
        atomic_write_text(json_path, json.dumps(meta, indent=1))
        return keras_path


def load(path):
    """Load a :class:`FittedCNN` written by :meth:`FittedCNN.save`.

    ``path`` may end in ``.keras`` or not. The model is loaded uncompiled (for
    prediction); ``PATH.json``, when present, restores name, params, history and
    timings.
    """
    keras = keras_module()
    keras_path, json_path = _paths(path)
    if not keras_path.exists():
        raise FileNotFoundError(f"no saved CNN at {keras_path}")
    model = keras.models.load_model(keras_path, compile=False)
    meta = json.loads(json_path.read_text()) if json_path.exists() else {}
    params = meta.get("params", {})
    for key in ("filters",):
        if isinstance(params.get(key), list):
            params[key] = tuple(params[key])
    return FittedCNN(
        model,
        meta.get("name", model.name),
        params,
        history=meta.get("history", {}),
        timings=meta.get("timings", {}),
        validation_index=meta.get("validation_index"),
    )


def resolve_params(name, params=None):
    """``default_params(name)`` updated with ``params``, checked.

    Raises
    ------
    ValueError
        For an unknown key or a bad value; the message names it.
    """
    resolved = default_params(name)
    params = dict(params or {})
    allowed = set(resolved)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(
            f"unknown parameter(s) for CNN {name!r}: {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    if "augment" in params and params["augment"] is True:
        params["augment"] = copy.deepcopy(_TRAINING_DEFAULTS["default"]["augment"])
    if isinstance(params.get("loss_weights"), dict):
        params["loss_weights"] = {**resolved["loss_weights"], **params["loss_weights"]}
    for key in ("patience", "lr_schedule"):  # TOML has no null: accept "none"
        if isinstance(params.get(key), str) and params[key].lower() == "none":
            params[key] = None
    if isinstance(params.get("filters"), list):  # from JSON / TOML
        params["filters"] = tuple(params["filters"])
    resolved.update(params)
    _check_training_params(resolved)
    return resolved


def fit(name, images, age, gender, *, params=None, seed=0, verbose=0, callbacks=None):
    """Train the preset ``name`` on decoded training images.

    Parameters
    ----------
    name : {"seed", "default"}
    images : ndarray of shape (n, H, W) or (n, H, W, 3), uint8 range
        The training part only, already at ``params["image_size"]`` and
        ``params["color"]``. The validation slice (``validation_split``) is a
        seeded random subset of these rows; no other rows are ever seen.
    age : array-like of shape (n,)
        Ages in years.
    gender : array-like of shape (n,)
        0 male, 1 female.
    params : dict, optional
        Overrides of :func:`default_params` (builder and training keys).
    seed : int
        Seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``), the
        validation slice, the shuffling and the augmentation. With
        ``params["deterministic"]`` TensorFlow op determinism is switched on for
        the duration of the fit (slower; Keras turns XLA off under it).
    verbose : int
        Passed to ``keras.Model.fit``.
    callbacks : list of keras.callbacks.Callback, optional
        Run after facebench's own (early stopping, LR schedule, timing).

    Returns
    -------
    FittedCNN
    """
    keras = keras_module()
    p = resolve_params(name, params)
    x = _check_images(images, p)
    age = _check_labels("age", age, len(x), low=0.0, high=AGE_MAX)
    gender = _check_labels("gender", gender, len(x), low=0.0, high=1.0)
    if not np.all((gender == 0) | (gender == 1)):
        raise ValueError("gender: expected 0 (male) or 1 (female) for every image")
    if p["standardize_age"] and "age_std" not in _BUILDER_DEFAULTS[name]:
        raise ValueError(f"standardize_age=True: CNN {name!r} has no de-standardising age head")
    seed = int(seed)

    keras.utils.set_random_seed(seed)
    with _op_determinism(p["deterministic"]):
        return _fit(name, x, age, gender, p, params, seed, verbose, callbacks)


def _fit(name, x, age, gender, p, params, seed, verbose, callbacks):
    keras = keras_module()

    train_idx, val_idx = split_validation(len(x), p["validation_split"], seed)
    if p["standardize_age"] and not (params and {"age_mean", "age_std"} & set(params)):
        p["age_mean"] = round(float(np.mean(age[train_idx])), 4)
        p["age_std"] = round(max(float(np.std(age[train_idx])), 1.0), 4)
    train_ds = make_dataset(x[train_idx], age[train_idx], gender[train_idx], p, seed=seed, training=True)
    val_ds = (
        make_dataset(x[val_idx], age[val_idx], gender[val_idx], p, seed=seed, training=False)
        if len(val_idx)
        else None
    )
    steps_per_epoch = math.ceil(len(train_idx) / p["batch_size"])

    model = build_model(name, x.shape[1:], **{k: p[k] for k in _BUILDER_DEFAULTS[name]})
    model.compile(
        optimizer=_make_optimizer(p, steps_per_epoch),
        loss={"age": _age_loss(p), "gender": "binary_crossentropy"},
        loss_weights=_effective_loss_weights(p),
        metrics={"age": ["mae"], "gender": ["accuracy"]},
        jit_compile=p["jit_compile"],
    )

    timer = _epoch_timer()
    cbs = [timer]
    if p["patience"] is not None:
        cbs.append(
            keras.callbacks.EarlyStopping(
                monitor=p["monitor"], patience=p["patience"], restore_best_weights=True
            )
        )
    if p["lr_schedule"] == "plateau":
        cbs.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=p["monitor"], factor=0.5, patience=max(1, (p["patience"] or 4) // 2), min_lr=1e-5
            )
        )
    cbs.extend(callbacks or [])

    start = time.perf_counter()
    hist = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=p["epochs"],
        steps_per_epoch=steps_per_epoch,
        callbacks=cbs,
        verbose=verbose,
        shuffle=False,  # the dataset shuffles itself
    )
    fit_s = time.perf_counter() - start

    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    epochs_run = len(timer.epoch_s)
    timings = {
        "fit_s": fit_s,
        "epochs_run": epochs_run,
        "s_per_epoch": float(np.mean(timer.epoch_s)) if epochs_run else float("nan"),
        "epoch_s": timer.epoch_s,
        "n_train": int(len(train_idx)),
        "n_validation": int(len(val_idx)),
    }
    return FittedCNN(model, name, p, history=history, timings=timings, validation_index=val_idx)


def split_validation(n, fraction, seed):
    """Split ``range(n)`` into (train, validation) rows, seeded, both sorted.

    ``floor(n * fraction)`` rows (at least one when ``fraction > 0``) go to
    validation, chosen at random: unlike Keras' ``validation_split``, which takes
    the *last* rows and so a biased slice when the rows are sorted (UTKFace
    names sort by age).
    """
    n_val = int(n * fraction)
    if fraction > 0:
        n_val = max(n_val, 1)
    if fraction > 0 and n - n_val < 1:
        raise ValueError(
            f"validation_split={fraction} leaves no training image out of {n}; pass more images"
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def make_dataset(images, age, gender, params, *, seed=0, training=True):
    """A ``tf.data.Dataset`` of ``(float32 images, {"age", "gender"})`` batches.

    Only the rows passed in are captured. ``training=True``: reshuffled every
    epoch, augmented (``params["augment"]``) and repeated forever (``fit``
    passes ``steps_per_epoch``); otherwise in order, once, unaugmented. Batches
    are gathered from the in-memory uint8 array and prefetched.
    """
    tf = tf_module()
    x = _add_channel(np.asarray(images))
    n = len(x)
    xt = tf.constant(x)
    yt_age = tf.constant(np.asarray(age, dtype=np.float32))
    yt_gender = tf.constant(np.asarray(gender, dtype=np.float32))
    augment = params.get("augment") if training else None
    batch_size = int(params["batch_size"])

    ds = tf.data.Dataset.range(n)
    if training:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if training:
        ds = ds.repeat()
        # one stateless seed pair per batch: repeatable, different every batch and epoch
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds))
    else:
        ds = ds.map(lambda i: (i, tf.zeros([2], tf.int64)))

    def gather(idx, batch_seed):
        xb = tf.cast(tf.gather(xt, idx), tf.float32)
        if augment:
            xb = augment_batch(xb, batch_seed, augment)
        return xb, {"age": tf.gather(yt_age, idx), "gender": tf.gather(yt_gender, idx)}

    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def augment_batch(images, seed, augment):
    """Light, label-preserving augmentation of a float32 batch (0-255 range).

    One affine warp per image (horizontal flip, shift up to ``shift`` of the
    size, rotation up to ``rotation`` degrees, zoom up to ``zoom``, reflected
    borders), then contrast (factor in 1 +- ``contrast`` around the image mean)
    and brightness (+- ``brightness`` x 255). Stateless: the same ``seed`` gives
    the same result.
    """
    tf = tf_module()
    seed = tf.cast(seed, tf.int64)
    n = tf.shape(images)[0]
    h = tf.cast(tf.shape(images)[1], tf.float32)
    w = tf.cast(tf.shape(images)[2], tf.float32)

    def uniform(k, lo, hi):
        return tf.random.stateless_uniform([n], seed=seed + k, minval=lo, maxval=hi)

    flip, shift = augment.get("flip", False), float(augment.get("shift", 0.0))
    rotation, zoom = float(augment.get("rotation", 0.0)), float(augment.get("zoom", 0.0))
    if flip or shift or rotation or zoom:
        f = tf.where(uniform(1, 0.0, 1.0) < 0.5, -1.0, 1.0) if flip else tf.ones([n])
        theta = uniform(2, -rotation, rotation) * (math.pi / 180.0)
        s = uniform(3, 1.0 - zoom, 1.0 + zoom)
        tx, ty = uniform(4, -shift, shift) * w, uniform(5, -shift, shift) * h
        cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
        # output pixel p -> input pixel M (p - c - t) + c, with M = R(theta) diag(f, 1) / s
        cos, sin = tf.cos(theta) / s, tf.sin(theta) / s
        m00, m01, m10, m11 = cos * f, -sin, sin * f, cos
        a2 = cx - m00 * (cx + tx) - m01 * (cy + ty)
        b2 = cy - m10 * (cx + tx) - m11 * (cy + ty)
        zeros = tf.zeros([n])
        transforms = tf.stack([m00, m01, a2, m10, m11, b2, zeros, zeros], axis=1)
        images = tf.raw_ops.ImageProjectiveTransformV3(
            images=images,
            transforms=transforms,
            output_shape=tf.shape(images)[1:3],
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="REFLECT",
        )
    contrast, brightness = float(augment.get("contrast", 0.0)), float(augment.get("brightness", 0.0))
    if contrast:
        c = tf.reshape(uniform(6, 1.0 - contrast, 1.0 + contrast), [-1, 1, 1, 1])
        mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
        images = (images - mean) * c + mean
    if brightness:
        images = images + tf.reshape(uniform(7, -brightness, brightness), [-1, 1, 1, 1]) * 255.0
    if contrast or brightness:
        images = tf.clip_by_value(images, 0.0, 255.0)
    return images


# --- helpers -----------------------------------------------------------------------


@contextlib.contextmanager
def _op_determinism(active):
    """Switch TensorFlow op determinism on for one fit, and back off after it.

    TensorFlow has no public switch-off; its internal one is used when present,
    otherwise determinism stays on for the rest of the process.
    """
    tf = tf_module()
    from tensorflow.python.framework import config as tf_config

    was_on = tf_config.is_op_determinism_enabled()
    if active and not was_on:
        tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if active and not was_on and hasattr(tf_config, "disable_op_determinism"):
            tf_config.disable_op_determinism()


def _epoch_timer():
    """A Keras callback recording wall seconds per epoch (training and validation)."""
    keras = keras_module()

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch_s = []
            self._t0 = None

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_s.append(time.perf_counter() - self._t0)

    return EpochTimer()


def _make_optimizer(p, steps_per_epoch):
    keras = keras_module()
    lr = p["learning_rate"]
    if p["lr_schedule"] == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            p["learning_rate"], decay_steps=max(1, p["epochs"] * steps_per_epoch), alpha=0.01
        )
    name = p["optimizer"]
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr, weight_decay=p["weight_decay"] or None)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=p["weight_decay"] or 1e-4)
    if name == "sgd":
        return keras.optimizers.SGD(
            learning_rate=lr, momentum=0.9, nesterov=True, weight_decay=p["weight_decay"] or None
        )
    return keras.optimizers.RMSprop(learning_rate=lr, weight_decay=p["weight_decay"] or None)


def _age_loss(p):
    keras = keras_module()
    scale = p["age_std"] if p["standardize_age"] else 1.0
    if p["age_loss"] == "huber":
        return keras.losses.Huber(delta=p["huber_delta"] * scale)
    return p["age_loss"]


def _effective_loss_weights(p):
    """Loss weights as compiled: with ``standardize_age`` the age weight applies to
    the age loss in standard deviations (MAE/Huber in years / std, MSE / std**2)."""
    w_age, w_gender = float(p["loss_weights"]["age"]), float(p["loss_weights"]["gender"])
    if p["standardize_age"]:
        w_age /= p["age_std"] ** (2 if p["age_loss"] == "mse" else 1)
    return {"age": w_age, "gender": w_gender}


def _check_training_params(p):
    def bad(key, allowed):
        raise ValueError(f"{key}={p[key]!r}: expected {allowed}")

    if not isinstance(p["image_size"], int) or isinstance(p["image_size"], bool) or p["image_size"] < 8:
        bad("image_size", "an integer >= 8")
    if p["color"] not in ("gray", "rgb"):
        bad("color", "'gray' or 'rgb'")
    for key in ("epochs", "batch_size"):
        if not isinstance(p[key], int) or isinstance(p[key], bool) or p[key] < 1:
            bad(key, "a positive integer")
    if not isinstance(p["learning_rate"], (int, float)) or not 0 < p["learning_rate"] < 10:
        bad("learning_rate", "a number in (0, 10)")
    if not isinstance(p["weight_decay"], (int, float)) or p["weight_decay"] < 0:
        bad("weight_decay", "a number >= 0")
    if p["optimizer"] not in _OPTIMIZERS:
        bad("optimizer", f"one of {', '.join(_OPTIMIZERS)}")
    if p["lr_schedule"] not in _LR_SCHEDULES:
        bad("lr_schedule", "None, 'cosine' or 'plateau'")
    vs = p["validation_split"]
    if isinstance(vs, bool) or not isinstance(vs, (int, float)) or not 0 <= vs < 1:
        bad("validation_split", "a number in [0, 1)")
    pat = p["patience"]
    if pat is not None and (isinstance(pat, bool) or not isinstance(pat, int) or pat < 0):
        bad("patience", "None (no early stopping) or an integer >= 0")
    if not isinstance(p["monitor"], str):
        bad("monitor", "a history key such as 'val_loss'")
    if (pat is not None or p["lr_schedule"] == "plateau") and vs == 0 and p["monitor"].startswith("val_"):
        raise ValueError(
            f"patience={pat!r} / lr_schedule={p['lr_schedule']!r} monitor {p['monitor']!r}, "
            "which needs validation_split > 0"
        )
    aug = p["augment"]
    if aug not in (None, False):
        if not isinstance(aug, dict):
            bad("augment", "None, False, True or a dict with keys " + ", ".join(_AUGMENT_KEYS))
        unknown = sorted(set(aug) - set(_AUGMENT_KEYS))
        if unknown:
            raise ValueError(f"augment: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_AUGMENT_KEYS)}")
        for key, value in aug.items():
            if key == "flip":
                if not isinstance(value, bool):
                    raise ValueError(f"augment.flip={value!r}: expected true or false")
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (
                key != "rotation" and value >= 1
            ):
                raise ValueError(f"augment.{key}={value!r}: expected a number >= 0 (< 1 but for rotation)")
    if p["age_loss"] not in _AGE_LOSSES:
        bad("age_loss", f"one of {', '.join(_AGE_LOSSES)}")
    if not isinstance(p["huber_delta"], (int, float)) or p["huber_delta"] <= 0:
        bad("huber_delta", "a positive number")
    lw = p["loss_weights"]
    if not isinstance(lw, dict) or set(lw) != {"age", "gender"} or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in lw.values()
    ):
        bad("loss_weights", "a dict {'age': w, 'gender': w} of numbers >= 0")
    for key in ("standardize_age", "deterministic", "test_time_flip"):
        if not isinstance(p[key], bool):
            bad(key, "true or false")
    if p["jit_compile"] not in ("auto", True, False):
        bad("jit_compile", "'auto', true or false")


def _check_images(images, p):
    x = np.asarray(images)
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 3)):
        raise ValueError(f"images: expected shape (n, H, W) or (n, H, W, 3), got {x.shape}")
    channels = 1 if x.ndim == 3 else x.shape[-1]
    want_channels = 3 if p["color"] == "rgb" else 1
    size = p["image_size"]
    if x.shape[1:3] != (size, size) or channels != want_channels:
        raise ValueError(
            f"images of shape {x.shape} do not match image_size={size}, color={p['color']!r}; "
            f"decode them with size={size}, color={p['color']!r} (or pass params to match)"
        )
    if len(x) < 2:
        raise ValueError(f"images: need at least 2 training images, got {len(x)}")
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.number) or x.min() < 0 or x.max() > 255:
            raise ValueError(f"images: expected uint8-range values (0-255), got dtype {x.dtype}")
    return _add_channel(x)


def _check_labels(key, values, n, low, high):
    y = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(y) != n:
        raise ValueError(f"{key}: {len(y)} labels for {n} images")
    if not np.all(np.isfinite(y)) or y.min() < low or y.max() > high:
        raise ValueError(f"{key}: expected finite values in [{low:g}, {high:g}]")
    return y


def _add_channel(x):
    return x[..., np.newaxis] if x.ndim == 3 else x


def _as_model_input(images, input_shape):
    x = _add_channel(np.asarray(images))
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(input_shape):
        raise ValueError(
            f"images of shape {np.asarray(images).shape} do not fit the model's input {tuple(input_shape)}"
        )
    return x


def _paths(path):
    s = os.fspath(path)
    base = s[: -len(".keras")] if s.endswith(".keras") else s
    return Path(base + ".keras"), Path(base + ".json")


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj
