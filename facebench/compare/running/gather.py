"""Gather a run's finished units into the top-level tables, and the terminal summary."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from facebench.rundir import layout, units, write
from facebench.compare.stats.metrics import paired_tests


def aggregate(run_dir: Path, uids: list[str], n_boot: int = 1000, seed: int = 0) -> dict:
    """Gather units into predictions.csv.gz, metrics.csv, timings.csv, histories/, paired.csv.

    ``uids`` are the units known to be whole: checked against their manifests on resume,
    or written by this run (the runner holds the lock, so nothing changed them since).
    """
    run_dir = Path(run_dir)
    preds, mets, times = [], [], []
    write.clear_histories(run_dir)
    for uid in uids:
        unit = units.read_unit(run_dir, uid)
        preds.append(unit["predictions"])
        mets.append(unit["metrics"])
        times.append(unit["timing"])
        if unit["history"] is not None:
            write.write_history(run_dir, uid, unit["history"])
    pred = pd.concat(preds, ignore_index=True) if preds else pd.DataFrame(columns=layout.PRED_COLUMNS)
    met = pd.concat(mets, ignore_index=True) if mets else pd.DataFrame(columns=layout.METRIC_COLUMNS)
    pred["gender_pred"] = pred["gender_pred"].astype("Int64")
    tim = pd.DataFrame(times, columns=layout.TIMING_COLUMNS)
    paired = []
    for (trial, fraction), group in pred.groupby(["trial", "fraction"], sort=True):
        for row in paired_tests(group, n_boot=n_boot, seed=seed + int(trial)):
            paired.append({"trial": trial, "fraction": fraction, **row})
    paired = pd.DataFrame(paired, columns=layout.PAIRED_COLUMNS)
    write.write_results(run_dir, pred, met, tim, paired)
    return {"predictions": pred, "metrics": met, "timings": tim, "paired": paired}


def summary_table(metrics: pd.DataFrame, timings: pd.DataFrame) -> str:
    """The terminal summary: per model at the largest fraction, median over trials."""
    if metrics.empty:
        return "no finished units"
    top = metrics["fraction"].max()
    m = metrics[(metrics["fraction"] == top) & (metrics["group"] == "all")]
    wide = m[m["metric"].isin(["accuracy", "roc_auc", "mae", "r2"])].pivot_table(
        index="model", columns="metric", values="value", aggfunc="median")
    fit = timings[timings["fraction"] == top].groupby("model")["fit_s"].median()
    wide["fit_s"] = fit
    wide = wide.reindex(columns=[c for c in ("accuracy", "roc_auc", "mae", "r2", "fit_s") if c in wide])
    sort = "accuracy" if "accuracy" in wide else wide.columns[0]
    wide = wide.sort_values(sort, ascending=False)
    n_trials = metrics["trial"].nunique()
    head = f"Results at training fraction {top:g} (median over {n_trials} trial(s), full test part):"
    return head + "\n" + wide.to_string(float_format=lambda v: f"{v:.3f}", na_rep="-")
