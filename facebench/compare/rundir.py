"""Reading and writing the run directory (docs/run-directory.md is the contract).

Each unit (trial x fraction x model) writes its results into ``units/<unit>/``
through a temporary folder and one rename, so a unit is either wholly there or
not at all; a rerun skips the units that are there. ``aggregate`` then gathers
every finished unit into the top-level files the report reads.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.cache import atomic_write, atomic_write_text
from .metrics import paired_tests

PRED_COLUMNS = ["trial", "fraction", "model", "image_id", "path", "age", "gender", "race",
                "age_pred", "p_female", "gender_pred"]
METRIC_COLUMNS = ["trial", "fraction", "model", "task", "group", "metric", "value", "ci_low", "ci_high"]
TIMING_COLUMNS = ["trial", "fraction", "model", "task", "n_train", "n_test", "decode_s", "features_s",
                  "fit_s", "predict_s", "peak_memory_mb", "model_bytes"]
PAIRED_COLUMNS = ["trial", "fraction", "task", "model_a", "model_b", "test", "statistic", "p_value",
                  "p_holm", "effect", "effect_name", "effect_ci_low", "effect_ci_high", "n", "better"]


def unit_id(trial: int, fraction, model: str) -> str:
    """``t0_f1.0_hog-svm``: file-safe and unique per trial x fraction x model."""
    frac = f"{fraction:g}" if isinstance(fraction, float) else str(fraction)
    if isinstance(fraction, float) and "." not in frac and "e" not in frac:
        frac += ".0"
    safe = "".join(c if c.isalnum() or c in "-." else "-" for c in model)
    return f"t{trial}_f{frac}_{safe}"


def is_done(run_dir: Path, uid: str) -> bool:
    return (Path(run_dir) / "units" / uid / "done.json").exists()


def write_unit(run_dir: Path, uid: str, predictions: pd.DataFrame, metrics: pd.DataFrame,
               timing: dict, history: pd.DataFrame | None = None) -> Path:
    """Write one unit's results atomically: a temporary folder, then one rename."""
    units = Path(run_dir) / "units"
    units.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=units, prefix=f".{uid}."))
    try:
        predictions.to_csv(tmp / "predictions.csv.gz", index=False)
        metrics.to_csv(tmp / "metrics.csv", index=False)
        if history is not None:
            history.to_csv(tmp / "history.csv", index=False)
        (tmp / "done.json").write_text(json.dumps(timing, default=_json_default))
        final = units / uid
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def clear(run_dir: Path) -> None:
    """Forget every result of a run directory (``--force``)."""
    run_dir = Path(run_dir)
    for name in ("units", "models", "histories", "tables"):
        shutil.rmtree(run_dir / name, ignore_errors=True)
    for name in ("predictions.csv.gz", "metrics.csv", "paired.csv", "timings.csv", "report.html"):
        (run_dir / name).unlink(missing_ok=True)


def aggregate(run_dir: Path, uids: list[str], n_boot: int = 1000, seed: int = 0) -> dict:
    """Gather finished units into predictions.csv.gz, metrics.csv, timings.csv, histories/, paired.csv."""
    run_dir = Path(run_dir)
    preds, mets, times = [], [], []
    hist_dir = run_dir / "histories"
    for uid in uids:
        udir = run_dir / "units" / uid
        if not (udir / "done.json").exists():
            continue
        preds.append(pd.read_csv(udir / "predictions.csv.gz", dtype={"image_id": str}))
        mets.append(pd.read_csv(udir / "metrics.csv"))
        times.append(json.loads((udir / "done.json").read_text()))
        if (udir / "history.csv").exists():
            hist_dir.mkdir(exist_ok=True)
            shutil.copyfile(udir / "history.csv", hist_dir / f"{uid}.csv")
    pred = pd.concat(preds, ignore_index=True) if preds else pd.DataFrame(columns=PRED_COLUMNS)
    met = pd.concat(mets, ignore_index=True) if mets else pd.DataFrame(columns=METRIC_COLUMNS)
    pred["gender_pred"] = pred["gender_pred"].astype("Int64")
    tim = pd.DataFrame(times, columns=TIMING_COLUMNS)
    paired = []
    for (trial, fraction), group in pred.groupby(["trial", "fraction"], sort=True):
        for row in paired_tests(group, n_boot=n_boot, seed=seed + int(trial)):
            paired.append({"trial": trial, "fraction": fraction, **row})
    paired = pd.DataFrame(paired, columns=PAIRED_COLUMNS)
    _write_csv(run_dir / "predictions.csv.gz", pred[PRED_COLUMNS])
    _write_csv(run_dir / "metrics.csv", met[METRIC_COLUMNS])
    _write_csv(run_dir / "timings.csv", tim)
    _write_csv(run_dir / "paired.csv", paired)
    return {"predictions": pred, "metrics": met, "timings": tim, "paired": paired}


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    compression = "gzip" if path.suffix == ".gz" else None
    atomic_write(path, lambda fh: frame.to_csv(fh, index=False, compression=compression))


def write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default))


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if obj is pd.NA:
        return None
    return str(obj)
