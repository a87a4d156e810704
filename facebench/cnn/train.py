"""Training, prediction, saving and loading of the age + gender CNNs.

:func:`fit` takes the decoded uint8 training images and their labels, carves a
validation slice out of *those* rows only, streams both through ``tf.data``
(:mod:`facebench.cnn.inputs`), trains the preset and returns a :class:`FittedCNN`
with the model, the resolved parameters, the per-epoch history and the timings.
:meth:`FittedCNN.save` / :func:`load` round-trip all of it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from facebench.cnn.inputs import _add_channel, make_dataset, split_validation
from facebench.cnn.low_res import low_res_epochs
from facebench.cnn.models import build_model, keras_module, tf_module
from facebench.cnn.params import builder_keys, cnn_names, default_params, resolve_params
from facebench.cnn.precision import compute_precision, dtype_policy
from facebench.cnn.recipe import compile_args
from facebench import vocab
from facebench.io import atomic_write_text

AGE_MAX = float(vocab.AGE_MAX)


class FittedCNN:
    """A trained CNN with everything needed to report on it and to use it again.

    Attributes
    ----------
    model : keras.Model
        Outputs ``{"age": years, "gender": P(female)}``; takes uint8-range images.
    name : str
        The preset (``"seed"``, ``"default"`` or a registered CNN's name).
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
    prediction) in Keras' safe mode; ``PATH.json``, when present, restores name, params,
    history and timings.

    A CNN added by :func:`facebench.cnn.register_cnn` loads without its registration
    (nor its builder) when the model holds only standard Keras layers: the file has the
    whole model. A model with layers of the user's own loads only in a process that has
    imported their classes, registered with ``keras.saving.register_keras_serializable``;
    elsewhere Keras raises a ``TypeError`` naming the class it cannot locate (and safe
    mode refuses a ``Lambda`` layer with a ``ValueError``); ``facebench predict`` and
    ``explain`` say either in one line.
    """
    keras = keras_module()
    keras_path, json_path = _paths(path)
    if not keras_path.exists():
        raise FileNotFoundError(f"no saved CNN at {keras_path}")
    model = keras.models.load_model(keras_path, compile=False)
    meta = json.loads(json_path.read_text()) if json_path.exists() else {}
    params = meta.get("params", {})
    name = meta.get("name", model.name)
    # JSON has lists only: back to the tuples the params held (all of them when the CNN's
    # registration is not in this process; a built-in CNN's only list is filters)
    defaults = default_params(name) if name in cnn_names() else {}
    for key, value in params.items():
        if isinstance(value, list) and not isinstance(defaults.get(key), list):
            params[key] = tuple(value)
    return FittedCNN(
        model,
        name,
        params,
        history=meta.get("history", {}),
        timings=meta.get("timings", {}),
        validation_index=meta.get("validation_index"),
    )


def fit(name, images, age, gender, *, params=None, seed=0, verbose=0, callbacks=None):
    """Train the preset ``name`` on decoded training images.

    Parameters
    ----------
    name : str
        ``"seed"``, ``"default"`` or a CNN added by :func:`facebench.cnn.register_cnn`.
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

    precision = compute_precision(p["precision"])
    with dtype_policy("mixed_bfloat16" if precision == "bfloat16" else "float32"):
        model = build_model(name, x.shape[1:], **{k: p[k] for k in builder_keys(name)})
    _start_at_the_age_prior(model, age[train_idx])

    def compile_(net):  # a fresh optimizer each time (the small-face epochs compile twice)
        net.compile(**compile_args(p, model.output_names, steps_per_epoch))

    compile_(model)
    timer = _epoch_timer()
    start = time.perf_counter()
    low_epochs = int(p.get("low_res_epochs", 0) or 0)
    early = {}
    if low_epochs:
        early = low_res_epochs(name, model, x, age, gender, p, seed, train_idx, val_idx, steps_per_epoch,
                                compile_, [timer, *(callbacks or [])], verbose)

    cbs = [timer]
    if p["ema"]:
        # Before EarlyStopping, so that it judges and keeps the averaged weights: Keras
        # swaps them in for validation and at each epoch's end, and finalises them at
        # the last epoch; an early stop restores the best epoch's averaged weights.
        cbs.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
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

    hist = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=p["epochs"],
        initial_epoch=low_epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=cbs,
        verbose=verbose,
        shuffle=False,  # the dataset shuffles itself
    )
    fit_s = time.perf_counter() - start

    history = {k: early.get(k, [float("nan")] * low_epochs) + [float(v) for v in vals] for k, vals in hist.history.items()}
    epochs_run = len(timer.epoch_s)
    timings = {
        "fit_s": fit_s,
        "epochs_run": epochs_run,
        "s_per_epoch": float(np.mean(timer.epoch_s)) if epochs_run else float("nan"),
        "epoch_s": timer.epoch_s,
        "n_train": int(len(train_idx)),
        "n_validation": int(len(val_idx)),
        "precision": precision,
    }
    return FittedCNN(model, name, p, history=history, timings=timings, validation_index=val_idx)


# --- helpers -----------------------------------------------------------------------


def _start_at_the_age_prior(model, ages):
    """Set a distribution age head's bias to the log of the training ages' histogram.

    The untrained head then predicts the training part's own age distribution (its
    expected value the mean age) instead of a uniform one over 0-116 (58 years), so the
    expectation's MAE starts near the spread of the ages rather than far above it.
    A model without an ``age_dist`` layer is left alone.
    """
    try:
        dist = model.get_layer("age_dist")
    except ValueError:
        return
    kernel, bias = dist.get_weights()
    counts = np.bincount(np.clip(np.rint(ages), 0, len(bias) - 1).astype(np.int64), minlength=len(bias))
    prior = (counts + 0.5) / (counts.sum() + 0.5 * len(bias))  # every age keeps some mass
    dist.set_weights([kernel, np.log(prior).astype(bias.dtype)])



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
