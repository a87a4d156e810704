"""Build a small sweep directory (docs/sweep-directory.md) without training, for the sweep page's tests.

The points and curves are written the way the contract says, with the csv module, so a
test of a real sweep's output can compare its files with these (:data:`POINT_COLUMNS`,
:func:`build_sweep_dir`); the numbers are seeded noise around a smooth function of the
parameters, so the page has something to show. What the sweep derives from its points is
made by the sweep's own code: the config is resolved by the sweep's validator and written
by its writer, the winner is picked by the sweep directory's rule and ``best.toml`` is
written by the sweep's writer.

Kinds:

``"cnn"``
    12 points of a CNN sweep: 9 complete (point 0 is the base), 2 pruned, 1 failed;
    ``curves.csv`` for every point that trained; importances for both tasks.
``"classical"``
    a grid of 6 points of an age-only classical model (``hog6+lbp+svr``): no
    ``curves.csv``, no epochs, empty gender columns.
``"empty"``
    a sweep that has just started: ``points.csv`` with its header only.
``"failed"``
    3 points, every one failed.

``method="one-at-a-time"`` (CNN only) makes every point the base with one parameter changed.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from facebench import __version__
from facebench.compare.planning.config import dumps
from facebench.compare.search.sweep_config import resolve_sweep
from facebench.compare.search.sweep_outputs import best_config
from facebench.rundir.sweepdir import BEST_FILE, INFO_FILE, POINTS_FILE, SWEEP_FILE, best_number

POINT_COLUMNS = [
    "number", "state", "reason", "seconds", "epochs_run",
    "val_age_mae", "val_age_mae_low", "val_age_mae_high",
    "val_gender_accuracy", "val_gender_accuracy_low", "val_gender_accuracy_high",
    "objective", "is_base",
]  # fmt: skip
CURVE_COLUMNS = ["number", "epoch", "loss", "val_loss", "val_age_mae", "val_gender_accuracy"]

CNN_SPACE = {
    "filters": [[16, 32, 64, 128], [32, 64, 128, 256]],
    "dropout": {"low": 0.0, "high": 0.5},
    "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
    "batch_size": [32, 64],
}
CNN_BASE = {"filters": [32, 64, 128, 256], "dropout": 0.3, "learning_rate": 1e-3, "batch_size": 32}
CLASSICAL_SPACE = {"C": [1.0, 3.0, 10.0], "epsilon": [0.5, 1.0]}
CLASSICAL_BASE = {"C": 3.0, "epsilon": 1.0}
EPOCHS = 8
N_VAL = 240
FAIL_REASON = "ResourceExhaustedError: OOM when allocating tensor of shape [64, 256, 32, 32]"
def _cnn_points(method: str, rng: np.random.Generator) -> list[dict]:
    """Parameter dicts of the CNN points (the base first)."""
    if method == "one-at-a-time":
        points = [dict(CNN_BASE)]
        variations = {
            "filters": [[16, 32, 64, 128]],
            "dropout": [0.0, 0.1, 0.5],
            "learning_rate": [1e-4, 3e-4, 3e-3, 1e-2],
            "batch_size": [64],
        }
        for name, values in variations.items():
            for v in values:
                points.append({**CNN_BASE, name: v})
        return points[:12] + [{**CNN_BASE, "dropout": 0.2}] * max(0, 12 - len(points))
    points = [dict(CNN_BASE)]
    for _ in range(11):
        points.append({
            "filters": CNN_SPACE["filters"][int(rng.integers(2))],
            "dropout": round(float(rng.uniform(0.0, 0.5)), 4),
            "learning_rate": float(f"{10 ** rng.uniform(-4, -2):.3g}"),
            "batch_size": [32, 64][int(rng.integers(2))],
        })  # fmt: skip
    return points


def _true_mae(p: dict) -> float:
    """The fixture's made-up response surface: best near lr 3e-3, dropout 0.1, small filters."""
    return (
        7.0
        + 1.6 * (math.log10(p["learning_rate"]) + 2.5) ** 2
        + 4.0 * (p["dropout"] - 0.1) ** 2
        + (0.4 if p["filters"][0] == 32 else 0.0)
        + (0.2 if p["batch_size"] == 64 else 0.0)
    )


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return json.dumps(v)
    if isinstance(v, float):
        return repr(round(v, 6))
    return str(v)


def _interval(value: float, half: float) -> tuple[float, float, float]:
    return value, value - half, value + half


def build_sweep_dir(
    path,
    kind: str = "cnn",
    *,
    objective: str | None = None,
    method: str | None = None,
    finished: bool = True,
    seed: int = 0,
) -> Path:
    """Write a sweep directory of ``kind`` (see the module docstring) at ``path``; return it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    classical = kind == "classical"
    objective = objective or "age_mae"
    method = method or ("grid" if classical else "tpe")
    space = CLASSICAL_SPACE if classical else CNN_SPACE
    base_name = "hog6+lbp+svr" if classical else "cnn:default"

    if classical:
        params = [{"C": c, "epsilon": e} for c in CLASSICAL_SPACE["C"] for e in CLASSICAL_SPACE["epsilon"]]
    elif kind in ("empty",):
        params = []
    elif kind == "failed":
        params = _cnn_points(method, rng)[:3]
    else:
        params = _cnn_points(method, rng)
    base_params = CLASSICAL_BASE if classical else CNN_BASE

    rows, curves = [], []
    n_pruned = n_failed = 0
    for number, p in enumerate(params):
        is_base = p == base_params
        state = "complete"
        if kind == "failed":
            state = "failed"
        elif not classical and number in (4, 9):
            state = "pruned"
        elif not classical and number == 7:
            state = "failed"
        row = {c: None for c in POINT_COLUMNS}
        row.update(number=number, state=state, reason="", is_base=is_base)
        if classical:
            mae = 8.5 + 0.3 * abs(math.log10(p["C"]) - 0.5) + 0.4 * (p["epsilon"] - 0.5) + rng.normal(0, 0.05)
            row.update(seconds=round(float(rng.uniform(20, 40)), 2))
            row.update(zip(("val_age_mae", "val_age_mae_low", "val_age_mae_high"), _interval(mae, 0.45)))
            row["objective"] = mae
        elif state == "failed":
            row.update(seconds=round(float(rng.uniform(1, 5)), 2), reason=FAIL_REASON, epochs_run=0)
            n_failed += 1
        else:
            epochs = 3 if state == "pruned" else EPOCHS
            mae_final = _true_mae(p) + float(rng.normal(0, 0.15))
            acc_final = min(0.97, 0.93 - 0.03 * (mae_final - 7.0) + float(rng.normal(0, 0.005)))
            for epoch in range(1, epochs + 1):
                decay = math.exp(-(epoch - 1) / 2.5)
                m = mae_final + (6.0 if state == "complete" else 8.0) * decay
                a = acc_final - 0.25 * decay
                curves.append({
                    "number": number, "epoch": epoch, "loss": 0.9 * m + 1.0, "val_loss": m + 1.5,
                    "val_age_mae": m, "val_gender_accuracy": a,
                })  # fmt: skip
            last = curves[-1]
            mae, acc = last["val_age_mae"], last["val_gender_accuracy"]
            row.update(seconds=round(float(rng.uniform(40, 60)) * epochs / EPOCHS, 2), epochs_run=epochs)
            row.update(zip(("val_age_mae", "val_age_mae_low", "val_age_mae_high"), _interval(mae, 0.5)))
            row.update(zip(("val_gender_accuracy", "val_gender_accuracy_low", "val_gender_accuracy_high"), _interval(acc, 0.03)))
            if state == "pruned":
                row["reason"] = "pruned after epoch 3 (validation loss above the median)"
                n_pruned += 1
            if state == "complete" and objective != "both":
                row["objective"] = mae if objective == "age_mae" else acc
        for name, value in p.items():
            row[f"param.{name}"] = value
        rows.append(row)

    columns = POINT_COLUMNS + [f"param.{name}" for name in space]
    with open(path / POINTS_FILE, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns)
        for row in rows:
            w.writerow([_fmt(row.get(c)) for c in columns])
    if curves:
        with open(path / "curves.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(CURVE_COLUMNS)
            for c in curves:
                w.writerow([_fmt(c[k]) for k in CURVE_COLUMNS])

    complete = [r for r in rows if r["state"] == "complete"]
    if len(complete) >= 3:
        tasks = ["age_mae"] if classical else ["age_mae", "gender_accuracy"]
        weights = {"C": 0.7, "epsilon": 0.3} if classical else {"learning_rate": 0.55, "dropout": 0.25, "filters": 0.15, "batch_size": 0.05}
        imp = {t: dict(weights) for t in tasks}
        (path / "importances.json").write_text(json.dumps(imp, indent=2) + "\n", encoding="utf-8")

    config = resolve_sweep({
        "base": base_name,
        "method": method,
        "n": 12 if not classical else 6,
        "budget_minutes": 30,
        "objective": objective,
        "seed": seed,
        "validation": 0.2,
        "data": {"path": "/data/utkface-5k", "max_images": 2000},
        "space": space,
    })  # fmt: skip
    (path / SWEEP_FILE).write_text(dumps(config), encoding="utf-8")
    # the points as the sweep's writer holds them: list values as JSON text
    frame = pd.DataFrame(
        [{**r, **{k: json.dumps(v) for k, v in r.items() if isinstance(v, list)}} for r in rows],
        columns=columns,
    )
    best_point = best_number(frame, objective) if len(frame) else None
    best = best_config(frame, config) if len(frame) else None
    if best is not None:
        (path / BEST_FILE).write_text(dumps(best), encoding="utf-8")

    elapsed = float(sum(r["seconds"] or 0 for r in rows))
    info = {
        "format": 1,
        "facebench": __version__,
        "started": "2025-05-01T10:00:00+00:00",
        "finished": "2025-05-01T10:12:00+00:00" if finished else None,
        "elapsed_s": elapsed,
        "base": base_name,
        "method": method,
        "objective": objective,
        "n_requested": config["n"],
        "budget_minutes": 30,
        "stopped_by": ("grid exhausted" if classical else "n") if finished else None,
        "counts": {"complete": len(complete), "pruned": n_pruned, "failed": n_failed},
        "validation": {"n_train": 4 * N_VAL, "n_val": N_VAL, "test_part_read": False},
        "cpu": "Fixture CPU @ 2.0GHz",
        "cores": 2,
        "pruning": not classical and objective != "both",
        "base_point": next((r["number"] for r in rows if r["is_base"]), None),
        "best_point": best_point,
    }
    (path / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return path
