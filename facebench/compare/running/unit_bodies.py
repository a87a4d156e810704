"""The bodies of the units: fit one model on one trial's training rows, predict its test rows, write it.

Every body takes a :class:`facebench.compare.planning.plan.Unit` (its model resolved once, in the
plan) and the run's bootstrap count, never the run's configuration. Classical units share
features computed once per extractor (:func:`prepare_features`, memory-mapped); CNN units
train on the decoded stack. Every unit is written whole through
:func:`facebench.rundir.units.write_unit`, its fitted model included.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from facebench.data import decode
from facebench.data.cache import default_cache_dir
from facebench.errors import UserError
from facebench.io import atomic_save_npy, atomic_write_text
from facebench.rundir import layout, saved, units
from facebench.compare.running.feature_workers import feature_workers
from facebench.compare.stats.metrics import unit_metrics
from facebench.compare.planning.plan import ModelSpec, Unit

log = logging.getLogger("facebench.run")

#: Called with one line per finished CNN epoch, in the process that trains it (the runner
#: shows it in its progress display; every line also goes to the log).
EPOCH_LISTENERS: list = []


def guarded(kind: str, unit: Unit, main_pid: int, registered: dict, *args) -> str | dict:
    """Run one unit; an exception costs that unit only, reported as ``{"unit", "error"}``.

    Interruptions (Ctrl-C, a killed worker) are not caught: what finished is kept on
    disk and a rerun resumes. In a worker process, a watchdog ends the worker when the
    main process is gone, so a killed run leaves no worker behind, and the models the
    user registered in the main process (``registered``: ``{"models", "cnns"}``) are registered first.
    """
    if os.getpid() != main_pid:
        _exit_with_parent()
        if registered.get("models"):  # classical models registered from Python in the main process
            from facebench.baselines import add_user_models

            add_user_models(registered["models"])
        if registered.get("cnns"):  # and CNN builders
            from facebench.cnn import add_user_cnns

            add_user_cnns(registered["cnns"])
    fn = run_classical_unit if kind == "classical" else run_cnn_unit
    try:
        return fn(unit, *args)
    except Exception as exc:
        # the traceback for run.log; the console gets the runner's one line
        logging.getLogger("facebench.run").info("unit %s failed", unit.id, exc_info=True)
        return {"unit": unit.id, "error": f"{type(exc).__name__}: {exc}"}


_WATCHDOG: list[threading.Thread] = []


def _exit_with_parent(period: float = 0.5) -> None:
    """Start (once per process) a thread that ends this process when its parent dies."""
    if _WATCHDOG:
        return
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(period)
            if os.getppid() != parent:
                os._exit(3)

    thread = threading.Thread(target=watch, name="facebench-parent-watch", daemon=True)
    thread.start()
    _WATCHDOG.append(thread)


# --------------------------------------------------------------------------- threads


#: Threads of every classical fit and prediction (BLAS, OpenMP and oneDAL), wherever the unit runs.
#: Two processes of one thread each beat one of two threads on the 2-core machine
#: (benchmarks/RESULTS.md, "Thread layout"), and a fixed count keeps a unit's results the
#: same bit for bit in a worker or in the main process, alone or beside others: oneDAL's
#: SVC solver and the BLAS under PCA round differently with another thread count.
CLASSICAL_THREADS = 1


def classical_threads():
    """A context that holds BLAS, OpenMP and oneDAL to :data:`CLASSICAL_THREADS` threads."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=CLASSICAL_THREADS)


def svm_backend_line(specs: list[ModelSpec], choice: str) -> str | None:
    """The line that says which library fits the RBF SVMs of these models (``choice``: the
    run's ``svm_backend``); None when none has one."""
    with_svm = [s for s in specs if s.svm_backend]
    if not with_svm:
        return None
    library = LIBRARIES[with_svm[0].svm_backend]
    return f"RBF SVMs fitted by {library} (svm_backend = {choice!r}): {', '.join(s.name for s in with_svm)}"


#: How the log names each library of the RBF SVMs.
LIBRARIES = {"onedal": "oneDAL (scikit-learn-intelex)", "libsvm": "libsvm (scikit-learn)"}


# --------------------------------------------------------------------------- features


def prepare_features(table: pd.DataFrame, specs: list[ModelSpec], workers: dict | None = None) -> dict:
    """Decode once, extract each model's features once for every image; memory-mapped files.

    Returns ``{model name: {"file", "decode_s_per_image", "features_s_per_image"}}``.
    Features of a stateless extractor do not depend on the split, so one pass over
    all images serves every trial, fraction and task. ``workers`` (``n_jobs`` and ``dask``)
    is where a feature step's own parallel work runs (:func:`feature_workers`).
    """
    workers = workers or {"n_jobs": 1, "dask": ""}
    stacks = {}  # (colour, size) -> (images, decode seconds per image), decoded on first use

    def stack(color, size):
        if (color, size) not in stacks:
            t = time.perf_counter()
            images = decode(table, size=size, color=color)
            stacks[color, size] = images, (time.perf_counter() - t) / len(table)
        return stacks[color, size]

    cache = default_cache_dir() / "features"
    paths = "\n".join(table["path"]).encode()
    out, done = {}, {}
    for model in {s.name: s for s in specs}.values():
        name, color, size = model.name, model.color, model.image_size  # colour features need RGB, a network its size
        extractor = model.build(model.tasks[0]).steps[0][1]
        key_base = hashlib.sha256(paths + f"{size}{color}".encode()).hexdigest()[:16]
        spec = f"{color}|{extractor!r}"
        if spec not in done:
            images, decode_s = stack(color, size)
            digest = hashlib.sha256(f"{key_base}|{spec}".encode()).hexdigest()[:24]
            path = cache / f"{digest}.npy"
            feat_s = 0.0
            if not path.exists():
                t = time.perf_counter()
                try:
                    with feature_workers(workers):  # a network's embeddings spread over the run's workers
                        feats = _transform_chunked(extractor, images, _feature_threads(extractor, workers))
                except ValueError as exc:  # e.g. LBP on colour images, HOG cells larger than the image
                    raise UserError(f"model {name!r} cannot use features.image_size={size}, "
                                    f"features.color={color!r}: {exc}") from None
                feat_s = (time.perf_counter() - t) / len(table)
                atomic_save_npy(path, feats)
                atomic_write_text(path.with_suffix(".json"), f'{{"seconds_per_image": {feat_s}}}')
            else:
                try:
                    feat_s = json.loads(path.with_suffix(".json").read_text())["seconds_per_image"]
                except (OSError, ValueError, KeyError):
                    feat_s = float("nan")
            log.info("features %s: %s (%.2f ms/image)", name, spec, feat_s * 1000)
            done[spec] = {"file": str(path), "decode_s_per_image": decode_s, "features_s_per_image": feat_s}
        out[name] = done[spec]
    return out


def _feature_threads(extractor, workers: dict) -> int:
    """Threads for a feature step: the run's ``n_jobs`` for facebench's hand-crafted features, else one.

    A pretrained network's step runs its network on TensorFlow's threads (or sends its chunks to
    a Dask cluster), and a user's step is not known to be safe in threads.
    """
    from sklearn.base import BaseEstimator
    from sklearn.pipeline import FeatureUnion, Pipeline

    from facebench.machine import resolve_n_jobs

    parts = [extractor, *(v for v in extractor.get_params(deep=True).values() if isinstance(v, BaseEstimator))]
    ours = all(isinstance(part, (FeatureUnion, Pipeline)) or type(part).__module__.startswith("facebench.baselines.")
               for part in parts)
    if workers.get("dask") or not ours:
        return 1
    return resolve_n_jobs(workers.get("n_jobs"))


def _transform_chunked(extractor, images, threads: int = 1, chunk: int = 2048) -> np.ndarray:
    """A run's features of ``images``, float32, by chunks of ``chunk`` images in ``threads`` threads."""
    from facebench.baselines import transform_in_threads

    return np.asarray(transform_in_threads(extractor, images, n_jobs=threads, chunk_size=chunk), dtype=np.float32)


def decoded_for_cnn(table, spec: ModelSpec):
    """The stack a CNN trains on (its own size and colour) and the decode seconds per image."""
    t = time.perf_counter()
    stack = decode(table, size=spec.image_size, color=spec.color)
    return stack, (time.perf_counter() - t) / len(table)


def shareable(stack) -> dict:
    """A decoded stack as workers should get it: the cache file's path when there is one."""
    path = getattr(stack, "filename", None)
    return {"file": str(path)} if path else {"array": np.asarray(stack)}


# --------------------------------------------------------------------------- units


def fit_classical(spec: ModelSpec, x_train, targets: dict, x_test, seed: int) -> dict:
    """Fit one head per task of a classical model on its features; predict ``x_test``.

    ``targets``: the training labels by task. Every fit and prediction runs on
    :data:`CLASSICAL_THREADS` threads, so the numbers do not depend on where it runs. Returns
    ``{"outputs": {task: predict_outputs}, "fitted": {task: Pipeline (features + head)},
    "fit_s", "predict_s", "backend"}`` (``backend``: the library of its RBF SVMs, or "").
    A run's unit and a sweep's point both fit here.
    """
    from sklearn.pipeline import Pipeline

    from facebench.baselines import predict_outputs
    from facebench.baselines.svm_backend import backend_of

    x_train, x_test = np.asarray(x_train), np.asarray(x_test)
    result = {"outputs": {}, "fitted": {}, "fit_s": 0.0, "predict_s": 0.0}
    backends = set()
    for task in spec.tasks:
        model = spec.build(task, random_state=seed, n_jobs=1)
        head = model[1:]
        backends.add(backend_of(head))
        with classical_threads():
            t = time.perf_counter()
            head.fit(x_train, targets[task])
            result["fit_s"] += time.perf_counter() - t
            t = time.perf_counter()
            result["outputs"][task] = predict_outputs(head, x_test, task)
            result["predict_s"] += time.perf_counter() - t
        result["fitted"][task] = Pipeline([model.steps[0], *head.steps])
    result["backend"] = "onedal" if "onedal" in backends else "libsvm" if "libsvm" in backends else ""
    return result


def run_classical_unit(unit: Unit, inputs: dict, labels: pd.DataFrame, bootstrap: int, run_dir: str) -> str:
    """Fit one classical model per task of the unit on shared features; write the unit."""
    from facebench.baselines.svm_backend import portable

    features = np.load(inputs["file"], mmap_mode="r")
    train, test, spec = unit.train, unit.test, unit.spec
    result = fit_classical(spec, features[train], {task: labels[task].to_numpy()[train] for task in unit.tasks},
                           features[test], unit.seed)
    pred = _prediction_frame(unit, labels)
    for out in result["outputs"].values():
        _fill_predictions(pred, out)
    fitted, backend, fit_s, predict_s = result["fitted"], result["backend"], result["fit_s"], result["predict_s"]
    # the input the model was trained on, as predict must decode it (colour models take RGB)
    meta = {"model": unit.model, "unit": unit.id,
            "features": {**spec.features, "color": spec.color, "image_size": spec.image_size},
            **({"svm_backend": backend} if backend else {})}
    n = len(train) + len(test)
    timing = _timing(unit, n_train=len(train), n_test=len(test),
                     decode_s=inputs["decode_s_per_image"] * n, features_s=inputs["features_s_per_image"] * n,
                     fit_s=fit_s, predict_s=predict_s)
    timing["svm_backend"] = backend

    def write_model(folder: Path) -> None:
        # saved as plain scikit-learn estimators: the file opens without sklearnex, under TRUSTED_TYPES
        saved.save_classical(folder / layout.CLASSICAL_MODEL, meta, {t: portable(m) for t, m in fitted.items()})
        timing["model_bytes"] = (folder / layout.CLASSICAL_MODEL).stat().st_size

    _finish_unit(unit, pred, timing, bootstrap, run_dir, write_model=write_model)
    return unit.id


def fit_cnn(spec: ModelSpec, images, age, gender, seed: int, callbacks=()):
    """Train a CNN of the plan (its preset and overrides) on ``images`` with both labels.

    A run's CNN unit and a sweep's CNN point both train here (each with its own callbacks:
    the progress line, or the pruning check).
    """
    from facebench.cnn import fit

    return fit(spec.base, np.asarray(images), np.asarray(age), np.asarray(gender), params=dict(spec.overrides),
               seed=seed, callbacks=list(callbacks))


def run_cnn_unit(unit: Unit, images: dict, decode_s: float, labels: pd.DataFrame, bootstrap: int, run_dir: str) -> str:
    """Train one CNN (both heads) on the unit's training rows; predict its test rows."""
    from facebench.cnn.device import training_device

    stack = np.load(images["file"], mmap_mode="r") if "file" in images else images["array"]
    train, test = unit.train, unit.test
    t = time.perf_counter()
    fitted = fit_cnn(unit.spec, stack[train], labels["age"].to_numpy()[train], labels["gender"].to_numpy()[train],
                     unit.seed, callbacks=[_epoch_progress(unit)])
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    out = fitted.predict(np.asarray(stack[test]))
    predict_s = time.perf_counter() - t
    pred = _prediction_frame(unit, labels)
    _fill_predictions(pred, out)
    history = pd.DataFrame(fitted.history)
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    n = len(train) + len(test)
    timing = _timing(unit, n_train=len(train), n_test=len(test), decode_s=decode_s * n, features_s=0.0,
                     fit_s=fit_s, predict_s=predict_s)
    timing["device"] = training_device()

    def write_model(folder: Path) -> None:
        fitted.save(folder / layout.CNN_MODEL)
        timing["model_bytes"] = sum(f.stat().st_size for f in folder.glob("model.*") if f.is_file())

    _finish_unit(unit, pred, timing, bootstrap, run_dir, history, write_model=write_model)
    return unit.id


def _epoch_progress(unit: Unit):
    """A Keras callback that reports every epoch: losses, validation metrics, seconds, time left."""
    from facebench.cnn.models import keras_module

    keras = keras_module()
    epochs = unit.spec.params["epochs"]

    class EpochProgress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            self.seconds.append(time.perf_counter() - self.started)
            left = float(np.mean(self.seconds)) * (epochs - epoch - 1)
            parts = [f"{unit.model} trial {unit.trial} fraction {unit.fraction:g}: "
                     f"epoch {epoch + 1}/{epochs}", f"loss {logs.get('loss', float('nan')):.3f}"]
            for key, label, fmt in (("val_loss", "val loss", ".3f"), ("val_age_mae", "val age MAE", ".2f"),
                                    ("val_gender_accuracy", "val gender acc", ".3f")):
                if key in logs:
                    parts.append(f"{label} {logs[key]:{fmt}}")
            parts.append(f"{self.seconds[-1]:.1f} s/epoch")
            if epoch + 1 < epochs:
                parts.append(f"at most {left / 60:.1f} min left" if left >= 90 else f"at most {left:.0f} s left")
            line = ", ".join(parts)
            log.info(line)
            for listener in EPOCH_LISTENERS:
                listener(line)

    return EpochProgress()


def _prediction_frame(unit, labels):
    pred = labels.iloc[unit.test].reset_index(drop=True).copy()
    pred.insert(0, "model", unit.model)
    pred.insert(0, "fraction", unit.fraction)
    pred.insert(0, "trial", unit.trial)
    pred["age_pred"] = np.nan
    pred["p_female"] = np.nan
    pred["gender_pred"] = pd.array([pd.NA] * len(pred), dtype="Int64")
    return pred


def _fill_predictions(pred, out):
    if "age" in out:
        pred["age_pred"] = np.round(np.asarray(out["age"], float), 3)
    if "p_female" in out:
        pred["p_female"] = np.round(np.asarray(out["p_female"], float), 5)
        pred["gender_pred"] = pd.array(np.asarray(out["gender"], int), dtype="Int64")


def _timing(unit, **values):
    task = "both" if len(unit.tasks) == 2 else unit.tasks[0]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"trial": unit.trial, "fraction": unit.fraction, "model": unit.model, "task": task,
            **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in values.items()},
            "peak_memory_mb": round(peak, 1), "model_bytes": 0}


def _finish_unit(unit: Unit, pred, timing, bootstrap, run_dir, history=None, write_model=None):
    metrics = pd.DataFrame(unit_metrics(pred, n_boot=bootstrap, seed=unit.seed))
    metrics.insert(0, "model", unit.model)
    metrics.insert(0, "fraction", unit.fraction)
    metrics.insert(0, "trial", unit.trial)
    units.write_unit(Path(run_dir), unit.id, pred, metrics, timing, history, write_model=write_model,
                     definition=unit.digest(bootstrap))
    log.info("unit %s done: fit %.1f s, predict %.1f s", unit.id, timing["fit_s"], timing["predict_s"])
