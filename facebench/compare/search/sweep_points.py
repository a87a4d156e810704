"""One point of a sweep: the validation data, the fit of the point's model, its metrics.

:func:`validation_data` cuts the training part of the run's first split into fit and
validation rows (the test part is never decoded for a model); :func:`evaluate_point` fits
one point on the fit rows and measures it on the validation rows; :func:`cannot_build`
says, before any image is decoded, when a CNN point has no feature map at its image size.
The search around them (Optuna, the study, the outputs) is :mod:`facebench.compare.search.study`.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import time

import numpy as np
import pandas as pd

from facebench.data import decode, make_split, run_splits
from facebench.errors import UserError
from facebench.compare.stats.metrics import age_bootstrap, bootstrap_indices, gender_bootstrap, percentile_interval
from facebench.compare.search.sweep_config import cnn_name, is_cnn, model_definition

log = logging.getLogger("facebench.sweep")

#: Called with one line per finished CNN epoch (the command line shows it in its progress bar).
EPOCH_LISTENERS: list = []

# --------------------------------------------------------------------------- data


def validation_data(config: dict) -> dict:
    """The training part of the run's first split, cut into fit and validation rows; images decoded.

    The split is the run's trial 0 (:func:`facebench.data.run_splits`: a manifest's own, or
    stratified with near-duplicate groups kept whole) on the table ``facebench run`` prepares
    (:func:`facebench.compare.planning.prepare_table`: the same data, ``exclude``,
    ``max_images`` and near-duplicate keys), so the run's trial 0 test part is exactly the one
    no model sees here; the validation rows keep the groups whole too.
    """
    from facebench.compare.planning.table import prepare_table

    dataset, table = prepare_table(config)
    if len(table) < 40:
        raise UserError(f"--data {config['data']['path']}: only {len(table)} usable image(s); a sweep needs 40")
    # the run's trial 0 split (a manifest's own, or near-duplicate groups kept whole), then
    # the validation rows cut from its training part with the groups kept whole again
    splits, record = run_splits(table, trials=1, seed=config["seed"], test_size=config["test_size"],
                                user_split=dataset.user_split)
    train, test = splits[0]
    part = table.iloc[np.sort(np.asarray(train))].reset_index(drop=True)
    groups = part["near_group"].to_numpy() if "near_group" in part else None
    fit_rows, val_rows = make_split(part, seed=config["seed"] + 10_000, test_size=config["validation"], groups=groups)
    fit_rows, val_rows = np.sort(np.asarray(fit_rows)), np.sort(np.asarray(val_rows))
    ids = part["image_id"].astype(str).to_numpy()
    rows = hashlib.sha256(("\n".join(ids[fit_rows]) + "\n--\n" + "\n".join(ids[val_rows])).encode()).hexdigest()[:16]
    return {"table": part, "fit": fit_rows, "val": val_rows, "n_fit": len(fit_rows), "n_val": len(val_rows),
            "n_test_unread": len(test), "split": record["rule"], "rows": rows}


# --------------------------------------------------------------------------- one point


def evaluate_point(params: dict, config: dict, data: dict, trial=None) -> dict:
    """Fit the base with ``params`` on the fit rows, measure it on the validation rows.

    Returns ``{"state": "complete" | "pruned" | "failed", "reason", "seconds", "epochs_run",
    "metrics": {...}, "curve": [...]}``; a point that cannot be built or fails is a
    result with its one-line reason, never an exception.
    """
    start = time.perf_counter()
    try:
        problem = cannot_build(config, params)
        if problem:
            return {"state": "failed", "reason": problem[:300], "metrics": {}, "curve": [], "epochs_run": None,
                    "unbuildable": True, "seconds": round(time.perf_counter() - start, 2)}
        definition = model_definition(config, params)
        if definition["kind"] == "cnn":
            result = _evaluate_cnn(definition, config, data, trial)
        else:
            result = _evaluate_classical(definition, config, data)
    except Exception as exc:  # noqa: BLE001 - a failed point is recorded, the sweep goes on
        log.info("point %s failed", params, exc_info=True)
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        for prefix in ("config key 'cnn.sweep-point.", "config key 'classical.sweep-point."):
            text = text.replace(prefix, "'")
        kind = "" if isinstance(exc, UserError) else f"{type(exc).__name__}: "
        result = {"state": "failed", "reason": f"{kind}{text}"[:300], "metrics": {}, "curve": [],
                  "epochs_run": None}
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result


def cannot_build(config: dict, params: dict) -> str | None:
    """Why a CNN point cannot be built at its image size, before any image is decoded; else None.

    Too many valid-padded blocks, strides or pools for the image leave no feature map.
    Classical points pass, as do CNNs registered from Python (their builder alone knows).
    """
    if not is_cnn(config):
        return None
    from facebench.cnn import ParamError, resolve_params

    try:
        # resolving checks the builder's parameters against the image size
        resolve_params(cnn_name(config), copy.deepcopy({**config["fixed"], **params}))
    except ParamError as exc:
        if exc.key not in ("image_size", "input_shape") or "large enough" not in str(exc.expected):
            return None  # a bad value: the point fails with its own message
        size = exc.value if exc.key == "image_size" else exc.value[0]
        return (f"cannot be built at {size} px: the feature map shrinks to nothing (fewer blocks, "
                "smaller kernels, pools or strides, or padding 'same')")
    return None


def _evaluate_cnn(definition, config, data, trial):
    """A CNN point: its model resolved as a run resolves one, trained by the run's CNN body."""
    from facebench.cnn.models import keras_module
    from facebench.compare.planning.plan import cnn_spec
    from facebench.compare.running.unit_bodies import fit_cnn

    spec = cnn_spec({"cnn": {"point": {"base": definition["base"], **definition["params"]}}}, "point")
    table = data["table"]
    images = decode(table, size=spec.image_size, color=spec.color)
    fit_rows, val_rows = data["fit"], data["val"]
    keras = keras_module()
    epochs = spec.params["epochs"]
    number = trial.number if trial is not None else "?"

    class Watch(keras.callbacks.Callback):
        pruned = False

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            seconds = time.perf_counter() - self.started
            line = (f"point {number}: epoch {epoch + 1}/{epochs}, val loss {logs.get('val_loss', float('nan')):.3f}, "
                    f"val age MAE {logs.get('val_age_mae', float('nan')):.2f}, {seconds:.1f} s/epoch")
            log.info(line)
            for listener in EPOCH_LISTENERS:
                listener(line)
            if trial is not None and config["objective"] != "both" and "val_loss" in logs:
                trial.report(float(logs["val_loss"]), epoch + 1)  # step k: after k epochs
                # the base's own point is the yardstick: it always trains to its end; a point
                # past its last epoch is complete (there is nothing left to save by pruning it)
                if not trial.user_attrs.get("is_base") and epoch + 1 < epochs and trial.should_prune():
                    Watch.pruned = True
                    self.model.stop_training = True

    fitted = fit_cnn(spec, images[fit_rows], table["age"].to_numpy()[fit_rows], table["gender"].to_numpy()[fit_rows],
                     config["seed"], callbacks=[Watch()])
    out = fitted.predict(np.asarray(images[val_rows]))
    metrics = _metrics(table.iloc[val_rows], out, config)
    history = fitted.history
    curve = [{"epoch": i + 1, **{k: history[k][i] for k in ("loss", "val_loss", "val_age_mae",
                                                            "val_gender_accuracy") if k in history}}
             for i in range(len(history.get("loss", [])))]
    state = "pruned" if Watch.pruned else "complete"
    reason = (f"pruned after epoch {len(curve)} (validation loss not in the best third at that epoch)"
              if Watch.pruned else "")
    return {"state": state, "reason": reason, "metrics": metrics, "curve": curve, "epochs_run": len(curve)}


def _evaluate_classical(definition, config, data):
    """A classical point: its model resolved as a run resolves one, fitted by the run's unit body."""
    from facebench.compare.planning.plan import classical_spec
    from facebench.compare.planning.variants import classical_tasks
    from facebench.compare.running.unit_bodies import fit_classical, prepare_features

    run_config = {"features": config["features"], "svm_backend": config.get("svm_backend", "auto"),
                  "classical": {"point": {"base": definition["base"], "params": definition["params"]}}}
    table = data["table"]
    tasks = classical_tasks(run_config, "point")
    spec = classical_spec(run_config, "point", tasks)
    inputs = prepare_features(table, [spec], {"n_jobs": 1, "dask": ""})["point"]
    features = np.load(inputs["file"], mmap_mode="r")
    fit_rows, val_rows = data["fit"], data["val"]
    result = fit_classical(spec, features[fit_rows], {task: table[task].to_numpy()[fit_rows] for task in tasks},
                           features[val_rows], config["seed"])
    out = {k: v for task_out in result["outputs"].values() for k, v in task_out.items()}
    return {"state": "complete", "reason": "", "metrics": _metrics(table.iloc[val_rows], out, config), "curve": [],
            "epochs_run": None}


def _metrics(rows: pd.DataFrame, out: dict, config: dict) -> dict:
    """Validation MAE and accuracy with percentile-bootstrap 95 % intervals."""
    n_boot = config["bootstrap"]
    idx = bootstrap_indices(len(rows), n_boot, config["seed"]) if n_boot else None
    metrics = {}
    if "age" in out:
        truth, pred = rows["age"].to_numpy(float), np.asarray(out["age"], float)
        metrics["val_age_mae"] = float(np.mean(np.abs(pred - truth)))
        low, high = percentile_interval(age_bootstrap(truth, pred, idx)["mae"]) if n_boot else (math.nan,) * 2
        metrics |= {"val_age_mae_low": low, "val_age_mae_high": high}
    if "gender" in out:
        truth, pred = rows["gender"].to_numpy(int), np.asarray(out["gender"], int)
        metrics["val_gender_accuracy"] = float(np.mean(pred == truth))
        if n_boot:
            low, high = percentile_interval(gender_bootstrap(truth, pred, None, idx)["accuracy"])
        else:
            low, high = math.nan, math.nan
        metrics |= {"val_gender_accuracy_low": low, "val_gender_accuracy_high": high}
    return metrics
