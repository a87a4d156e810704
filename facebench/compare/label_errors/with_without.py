"""Every model's test metrics with and without the faces whose labels are suspected.

A sensitivity analysis of :mod:`facebench.compare.label_errors.detector`' suspicions, on the predictions
a run kept: :func:`label_metrics` (each model's headline metrics with 95 % bootstrap
intervals on all test faces and on the unsuspected ones), :func:`cleaned_paired_tests`
(the paired tests repeated on the unsuspected faces) and :func:`with_agreement` (which
models side with the detector on each suspected test face). Leaving out the faces a
detector doubts favours the models that agree with it; the report says so.
:func:`label_metrics_for_run` reads a finished run and writes all three.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from facebench.rundir import layout
from facebench.rundir.label_files import (
    LABEL_METRIC_COLUMNS,
    read_label_issues,
    write_label_issues,
    write_label_metrics,
    write_label_paired,
)
from facebench.rundir.layout import PAIRED_COLUMNS
from facebench.rundir.read import read_csv
from facebench.compare.stats.metrics import (
    age_bootstrap,
    age_metrics,
    bootstrap_indices,
    gender_bootstrap,
    gender_metrics,
    paired_tests,
    percentile_interval,
)

#: Metrics of label_metrics.csv (the headline ones, with intervals).
LABEL_METRICS = {"age": ("mae", "rmse"), "gender": ("accuracy", "roc_auc")}


def label_metrics(predictions: pd.DataFrame, issues: pd.DataFrame, *, n_boot: int = 1000,
                  seed: int = 0) -> pd.DataFrame:
    """Every model's test metrics on all test faces and on those the detector does not doubt.

    A sensitivity analysis: leaving out the suspected test faces (of the same trial, for
    the same task) favours the models that agree with the detector.

    Parameters
    ----------
    predictions : DataFrame
        ``predictions.csv.gz`` of the run (``trial``, ``fraction``, ``model``,
        ``image_id``, ``age``, ``gender``, ``age_pred``, ``p_female``, ``gender_pred``).
    issues : DataFrame
        :func:`suspect_labels_for_run`'s table.
    n_boot : int
        Bootstrap resamples for the 95 % intervals (0: none).
    seed : int

    Returns
    -------
    metrics : DataFrame
        Columns :data:`facebench.rundir.label_files.LABEL_METRIC_COLUMNS`.
    """
    rows = []
    doubted = _doubted(issues)
    for (trial, fraction, model), pred in predictions.groupby(["trial", "fraction", "model"], sort=False):
        for task, col in (("age", "age_pred"), ("gender", "gender_pred")):
            sub = pred[pred[col].notna()]
            if not len(sub):
                continue
            keep = ~sub["image_id"].isin(doubted.get((int(trial), task), set())).to_numpy()
            for subset, part in (("all", sub), ("unsuspected", sub[keep])):
                if not len(part):
                    continue
                idx = bootstrap_indices(len(part), n_boot, seed) if n_boot else None
                if task == "age":
                    point = age_metrics(part["age"], part["age_pred"])
                    boot = age_bootstrap(part["age"], part["age_pred"], idx) if idx is not None else {}
                else:
                    y, p, s = part["gender"].astype(int), part["gender_pred"].astype(int), part["p_female"].astype(float)
                    point = gender_metrics(y, p, s)
                    boot = gender_bootstrap(y, p, s, idx) if idx is not None else {}
                for metric in LABEL_METRICS[task]:
                    lo, hi = percentile_interval(boot[metric]) if metric in boot else (np.nan, np.nan)
                    rows.append({"trial": int(trial), "fraction": float(fraction), "model": model, "task": task,
                                 "subset": subset, "metric": metric, "value": float(point[metric]),
                                 "ci_low": lo, "ci_high": hi, "n": len(part)})
    return pd.DataFrame(rows, columns=LABEL_METRIC_COLUMNS)


def label_metrics_for_run(run_dir, issues: pd.DataFrame | None = None, *, n_boot: int = 1000,
                          seed: int = 0) -> pd.DataFrame | None:
    """Read a finished run's predictions (and its ``label_issues.csv``), write ``label_metrics.csv``.

    For the runner, after the units are aggregated. Returns the metrics, or None when
    the run has no predictions or no label issues.
    """
    issues = read_label_issues(run_dir) if issues is None else issues
    predictions = read_csv(Path(run_dir) / layout.PREDICTIONS_FILE, ("model", "image_id", "path"))
    if issues is None or predictions is None:
        return None
    metrics = label_metrics(predictions, issues, n_boot=n_boot, seed=seed)
    write_label_metrics(run_dir, metrics)
    write_label_paired(run_dir, cleaned_paired_tests(predictions, issues, n_boot=n_boot, seed=seed))
    write_label_issues(run_dir, with_agreement(issues, predictions))
    return metrics


def _doubted(issues: pd.DataFrame) -> dict:
    """(trial, task) -> the image ids of the test faces suspected for that task."""
    test_issues = issues[issues["part"] == "test"]
    return {(int(t), task): set(g["image_id"]) for (t, task), g in test_issues.groupby(["trial", "task"])}


def cleaned_paired_tests(predictions: pd.DataFrame, issues: pd.DataFrame, *, n_boot: int = 1000,
                         seed: int = 0) -> pd.DataFrame:
    """The paired tests of every trial x fraction, on the test faces the detector does not doubt.

    A face is left out only for the task its label is doubted for, so each task's pairs
    are tested on that task's unsuspected faces. Columns of ``paired.csv``.
    """
    doubted = _doubted(issues)
    rows = []
    for (trial, fraction), pred in predictions.groupby(["trial", "fraction"], sort=True):
        for task, col in (("gender", "gender_pred"), ("age", "age_pred")):
            other = "age_pred" if col == "gender_pred" else "gender_pred"
            keep = pred[pred[col].notna() & ~pred["image_id"].isin(doubted.get((int(trial), task), set()))]
            only = keep.assign(**{other: np.nan}) if other == "age_pred" else keep.assign(
                gender_pred=pd.array([pd.NA] * len(keep), dtype="Int64"))
            for r in paired_tests(only, n_boot=n_boot, seed=seed):
                if r["task"] == task:
                    rows.append({"trial": int(trial), "fraction": float(fraction), **r})
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def with_agreement(issues: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """``issues`` with ``agree``: for each suspected test face, the models (at the largest
    fraction of its trial) whose prediction sides with the detector."""
    out = issues.copy()
    out["agree"] = ""
    if not len(predictions):
        return out
    top = predictions[predictions["fraction"] == predictions.groupby("trial")["fraction"].transform("max")]
    by_face = {key: g for key, g in top.groupby(["trial", "image_id"])}
    agree = []
    for r in out.itertuples():
        g = by_face.get((int(r.trial), r.image_id)) if r.part == "test" else None
        if g is None:
            agree.append("")
            continue
        if r.task == "gender":
            sided = g[g["gender_pred"].notna() & (g["gender_pred"].astype("float") == float(r.suggested))]
        else:
            pred = g["age_pred"]
            sided = g[pred.notna() & ((pred - r.suggested).abs() < (pred - r.given).abs())]
        agree.append(";".join(sorted(sided["model"].astype(str))))
    out["agree"] = agree
    return out
