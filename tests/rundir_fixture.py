"""Build a small run directory of format 2 (docs/run-directory.md), for the report's edge cases.

Predictions are seeded random noise around the true labels (each model with its own
skill, worse on smaller training fractions); every metric, interval and paired test is
then computed from those predictions by ``facebench.compare.stats.metrics``, the code real
runs use, so no number in the run directory is typed by hand. ``run.json`` and
``models.csv`` are written through the run-directory package's own writers and names
(``facebench.rundir``); a real run's directory is checked by the runner's round-trip test.

Three test faces carry hostile or unicode names and are given the largest errors, so
they reach the report's gallery of worst errors; the audit lists hostile names too.
``cnn_history`` picks how the CNN's training ended: ``"converged"`` (lowest validation
loss mid-way, full epoch budget), ``"still_falling"`` (lowest at the last epoch) or
``"cut_short"`` (fewer epochs than the budget, not by early stopping).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w
from PIL import Image

from facebench import __version__
from facebench.compare.stats.metrics import paired_tests, unit_metrics
from facebench.io import write_json
from facebench.rundir import layout
from facebench.rundir.saved import write_models_table

HOSTILE_MISSING = "<script>alert(1)</script>.jpg"  # cannot be a file name (it has a '/')
HOSTILE_FILE = '"><img src=x onerror=alert(1)>.jpg'
UNICODE_FILE = "Zoë_名字_😀.jpg"
HOSTILE_NAMES = (HOSTILE_MISSING, HOSTILE_FILE, UNICODE_FILE)

# name -> (tasks, age noise sd in years (None: predicts the training mean), gender strength)
MODELS = {
    "dummy": (("age", "gender"), None, 0.0),
    "hog+ridge": (("age",), 9.0, None),
    "hog+svm": (("gender",), None, 1.6),
    "lbp+svm": (("gender",), None, 1.0),
    "cnn-default": (("age", "gender"), 6.0, 2.6),
}
# the models table's description of each (as the runner's models_table writes it)
TABLE = {
    "dummy": {"kind": "classical", "family": "trivial", "features": "none", "estimator": "dummy"},
    "hog+ridge": {"kind": "classical", "family": "hand-crafted", "features": "hog", "estimator": "ridge"},
    "hog+svm": {"kind": "classical", "family": "hand-crafted", "features": "hog", "estimator": "svm"},
    "lbp+svm": {"kind": "classical", "family": "hand-crafted", "features": "lbp", "estimator": "svm"},
    "cnn-default": {"kind": "cnn", "family": "learned", "features": "learned", "estimator": "default"},
}
N_BOOT = 100
EPOCHS = 8  # the CNN's configured epoch budget
PATIENCE = 3
ENVIRONMENT = {
    "python": "3.11.9",
    "platform": "Linux-6.1-x86_64-with-glibc2.36",
    "machine": {"cpu": "Test CPU 3000", "cores": 16, "usable_cores": 2, "memory_gb": 62.8},
    "versions": {"facebench": __version__, "numpy": np.__version__, "pandas": pd.__version__},
}


# ---- images ------------------------------------------------------------------------


def _face_image(rng: np.random.Generator, age: int, gender: int) -> Image.Image:
    """A 48x48 grey blob that looks vaguely like a face (enough to be a thumbnail)."""
    yy, xx = np.mgrid[0:48, 0:48]
    face = np.exp(-(((xx - 24) / 14) ** 2 + ((yy - 26) / 18) ** 2))
    eyes = np.exp(-(((xx - 17) ** 2 + (yy - 21) ** 2) / 6)) + np.exp(-(((xx - 31) ** 2 + (yy - 21) ** 2) / 6))
    img = 40 + 170 * face - 90 * eyes + (25 if gender else 0) * (yy < 12) - age * 0.3 * face
    img = img + rng.normal(0, 8, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "L")


def _make_pool(root: Path, rng: np.random.Generator, n: int, images: bool) -> pd.DataFrame:
    faces = root
    faces.mkdir(parents=True, exist_ok=True)
    young = rng.integers(0, 6, n)
    adult = np.clip(rng.normal(30, 14, n), 0, 95).astype(int)
    ages = np.where(rng.random(n) < 0.15, young, adult)
    genders = rng.integers(0, 2, n)
    races = pd.array(rng.integers(0, 5, n), dtype="Int64")
    races[rng.random(n) < 0.04] = pd.NA
    rows = []
    for i in range(n):
        if i < len(HOSTILE_NAMES):
            image_id = HOSTILE_NAMES[i]
            path = faces / ("gone.jpg" if image_id == HOSTILE_MISSING else image_id)
        else:
            race = "" if pd.isna(races[i]) else int(races[i])
            image_id = f"{ages[i]}_{genders[i]}_{race}_2017010{i:08d}.jpg.chip.jpg"
            path = faces / image_id
        if images and image_id != HOSTILE_MISSING:
            _face_image(rng, int(ages[i]), int(genders[i])).save(path, quality=80)
        rows.append((image_id, str(path), int(ages[i]), int(genders[i]), races[i]))
    table = pd.DataFrame(rows, columns=["image_id", "path", "age", "gender", "race"])
    table["race"] = table["race"].astype("Int64")
    table.loc[0, "race"] = pd.NA
    return table


# ---- the run -----------------------------------------------------------------------


def _predict(model: str, test: pd.DataFrame, fraction: float, train_mean_age: float, rng) -> pd.DataFrame:
    tasks, age_sd, strength = MODELS[model]
    out = test.copy()
    n = len(out)
    worse = 1 + 0.6 * (1 - fraction)
    hostile = out["image_id"].isin(HOSTILE_NAMES).to_numpy()
    out["age_pred"] = np.nan
    out["p_female"] = np.nan
    out["gender_pred"] = pd.array([pd.NA] * n, dtype="Int64")
    if "age" in tasks:
        if age_sd is None:
            out["age_pred"] = float(train_mean_age)
        else:
            pred = out["age"] + rng.normal(0, age_sd * worse, n) + np.where(hostile, 50.0, 0.0)
            out["age_pred"] = np.clip(pred, 0, 116)
    if "gender" in tasks:
        if strength == 0:
            out["p_female"] = 0.5
            out["gender_pred"] = 0
        else:
            sign = np.where(out["gender"] == 1, 1.0, -1.0) * np.where(hostile, -1, 1)
            logit = sign * (strength / worse + np.where(hostile, 4.0, 0)) + rng.normal(0, 1.5, n) * ~hostile
            p = 1 / (1 + np.exp(-logit))
            out["p_female"] = p
            out["gender_pred"] = (p > 0.5).astype(int)
    return out


def _history(rng, how: str = "converged") -> pd.DataFrame:
    """Per-epoch curves; ``val_loss`` has its lowest value where ``how`` says (see the module)."""
    epochs = 5 if how == "cut_short" else EPOCHS
    e = np.arange(epochs)
    decay = np.exp(-e / 3)
    h = {"epoch": e}
    h["age_mae"] = 6 + 10 * decay + rng.normal(0, 0.2, epochs)
    h["val_age_mae"] = 7 + 9 * decay + 0.1 * e + rng.normal(0, 0.3, epochs)
    h["age_loss"] = h["age_mae"] ** 2
    h["val_age_loss"] = h["val_age_mae"] ** 2
    h["gender_accuracy"] = 0.95 - 0.4 * decay + rng.normal(0, 0.01, epochs)
    h["val_gender_accuracy"] = 0.88 - 0.35 * decay + rng.normal(0, 0.015, epochs)
    h["gender_loss"] = 0.2 + 0.5 * decay
    h["val_gender_loss"] = 0.3 + 0.45 * decay + 0.01 * e
    h["loss"] = h["age_loss"] / 100 + h["gender_loss"]
    best = {"converged": 4, "still_falling": epochs - 1, "cut_short": epochs - 2}[how]
    h["val_loss"] = 1.0 + 0.05 * np.abs(e - best) + 0.01 * (e > best)
    return pd.DataFrame(h)


def build_run_dir(
    run_dir: Path,
    *,
    models: tuple[str, ...] = tuple(MODELS),
    n_trials: int = 2,
    fractions: tuple[float, ...] = (0.5, 1.0),
    n_test: int = 120,
    n_train: int = 400,
    seed: int = 0,
    synthetic: bool = True,
    images: bool = True,
    preset: str = "standard",
    cnn_history: str = "converged",
    root_name: str = "faces",
) -> Path:
    """Write a run directory of format 2 at ``run_dir`` and return it.

    ``models`` picks from :data:`MODELS`. Faces are written to ``run_dir/<root_name>``
    (``images=False`` leaves every image file missing, as after a dataset moved).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pool = _make_pool(run_dir / root_name, rng, n_test + n_train, images)
    hostile = pool["image_id"].isin(HOSTILE_NAMES)
    split_rows, pred_frames, metric_rows, paired_rows, timing_rows = [], [], [], [], []
    layout.histories_dir(run_dir).mkdir(exist_ok=True)
    for trial in range(n_trials):
        order = rng.permutation(np.flatnonzero(~hostile))
        test = pd.concat([pool[hostile], pool.iloc[order[: n_test - int(hostile.sum())]]])
        train = pool.drop(test.index)
        split_rows += [dict(trial=trial, **r, part="test") for r in test.to_dict("records")]
        split_rows += [dict(trial=trial, **r, part="train") for r in train.to_dict("records")]
        for fraction in fractions:
            sub = train.sample(frac=fraction, random_state=int(rng.integers(1 << 31)))
            preds = {}
            for model in models:
                p = _predict(model, test, fraction, sub["age"].mean(), rng)
                p.insert(0, "model", model)
                p.insert(0, "fraction", float(fraction))
                p.insert(0, "trial", trial)
                preds[model] = p
                pred_frames.append(p)
                key = {"trial": trial, "fraction": float(fraction), "model": model}
                metric_rows += [{**key, **row} for row in unit_metrics(p, n_boot=N_BOOT, seed=int(rng.integers(1 << 31)))]
                tasks = MODELS[model][0]
                is_cnn = TABLE[model]["kind"] == "cnn"
                fit = (30.0 if is_cnn else 2.0) * fraction * (1 + 0.1 * rng.random())
                timing_rows.append({**key, "task": tasks[0] if len(tasks) == 1 else "both",
                                    "n_train": len(sub), "n_test": len(test),
                                    "decode_s": 0.4 + 0.05 * rng.random(),
                                    "features_s": 0.0 if is_cnn or model == "dummy" else 1.5 * fraction + 0.1 * rng.random(),
                                    "fit_s": 0.001 if model == "dummy" else fit,
                                    "predict_s": 0.2 * rng.random() + (0.5 if is_cnn else 0.01),
                                    "peak_memory_mb": 300 + 500 * is_cnn + 50 * rng.random(),
                                    "model_bytes": int(2e6 if is_cnn else 4e4 + 1e3 * rng.random()),
                                    "svm_backend": "libsvm" if model.endswith(("+svm", "+svr")) else ""})
                if is_cnn:
                    uid = layout.unit_id(trial, float(fraction), model)
                    _history(rng, cnn_history).to_csv(layout.histories_dir(run_dir) / f"{uid}.csv", index=False)
            paired_rows += [{"trial": trial, "fraction": float(fraction), **row}
                            for row in paired_tests(pd.concat(preds.values()), n_boot=N_BOOT, seed=trial)]

    predictions = pd.concat(pred_frames, ignore_index=True)
    cols = layout.PRED_COLUMNS
    with gzip.open(run_dir / layout.PREDICTIONS_FILE, "wt", encoding="utf-8", newline="") as fh:
        predictions[cols].to_csv(fh, index=False)
    pd.DataFrame(metric_rows)[layout.METRIC_COLUMNS].to_csv(run_dir / layout.METRICS_FILE, index=False)
    pd.DataFrame(paired_rows, columns=layout.PAIRED_COLUMNS).to_csv(run_dir / layout.PAIRED_FILE, index=False)
    pd.DataFrame(timing_rows)[layout.TIMING_COLUMNS].to_csv(run_dir / layout.TIMINGS_FILE, index=False)
    pd.DataFrame(split_rows)[layout.SPLIT_COLUMNS].to_csv(run_dir / layout.SPLIT_FILE, index=False)
    if not any(TABLE[m]["kind"] == "cnn" for m in models):
        layout.histories_dir(run_dir).rmdir()

    faces = run_dir / root_name
    cnns = [m.removeprefix("cnn-") for m in models if TABLE[m]["kind"] == "cnn"]
    config = {
        "preset": preset,
        "description": "report test fixture",
        "trials": n_trials,
        "seed": seed,
        "fractions": [float(f) for f in fractions],
        "test_size": 0.2,
        "bootstrap": N_BOOT,
        "n_jobs": 1,
        "dask": "",
        "out": str(run_dir),
        "data": {"path": str(faces), "max_images": 0},
        "features": {"image_size": 48, "color": "gray"},
        "models": {
            "gender": [m for m in models if "gender" in MODELS[m][0] and TABLE[m]["kind"] == "classical"],
            "age": [m for m in models if "age" in MODELS[m][0] and TABLE[m]["kind"] == "classical"],
            "cnn": cnns,
        },
        "cnn": {name: {"epochs": EPOCHS} for name in cnns},
    }
    (run_dir / layout.CONFIG_FILE).write_text(tomli_w.dumps(config), encoding="utf-8")
    rows = []
    for m in models:
        cnn = TABLE[m]["kind"] == "cnn"
        params = {"epochs": EPOCHS, "patience": PATIENCE, "image_size": 48, "color": "gray"} if cnn else {}
        rows.append({"name": m, **TABLE[m], "tasks": MODELS[m][0], "image_size": 48, "color": "gray", "params": params,
                     "summary": f"{m} (fixture)"})
    write_models_table(run_dir, rows)
    audit = {
        "source": "folder",
        "root": str(faces),
        "found": len(pool) + 4,
        "used": len(pool),
        "skipped": [
            {"file": HOSTILE_MISSING, "reason": "labels do not parse: expected age_gender_race_datetime"},
            {"file": HOSTILE_FILE.replace(".jpg", ".txt"), "reason": "not an image file"},
            {"file": "61_1_20170109150557335.jpg.chip.jpg", "reason": "labels do not parse: missing field"},
            {"file": UNICODE_FILE.replace(".jpg", "_empty.jpg"), "reason": "empty file"},
        ],
        "duplicates": [{"files": [HOSTILE_FILE, "25_0_0_dup.jpg"], "action": "kept first"}],
        "not_used": ["extra/"],
        "synthetic": synthetic,
        "labels": {
            "age_min": int(pool["age"].min()),
            "age_max": int(pool["age"].max()),
            "age_median": float(pool["age"].median()),
            "gender_counts": {str(k): int(v) for k, v in pool["gender"].value_counts().sort_index().items()},
            "race_counts": {str(k): int(v) for k, v in pool["race"].astype("object").fillna("missing").value_counts().items()},
        },
    }
    write_json(run_dir / layout.AUDIT_FILE, audit)
    info = {
        "format": layout.FORMAT,
        "facebench": __version__,
        "command": f"facebench run --data {faces} --preset {preset}",
        "started": "2025-01-01T10:00:00+00:00",
        "finished": "2025-01-01T10:03:00+00:00",
        "failed_units": [],
        **ENVIRONMENT,
    }
    write_json(run_dir / layout.RUN_FILE, info)
    (run_dir / layout.LOG_FILE).write_text("fixture run\n", encoding="utf-8")
    return run_dir
