"""Gender: the table of every classification metric, confusion matrices and ROC curves."""

from __future__ import annotations

from typing import Any

from facebench.reports import plots
from facebench.reports.sections import predictions_at, task_start, task_table
from facebench.reports.summary import Summary, frac, label
from facebench.reports.tables import MISSING, Column
from facebench.vocab import GENDER_METRICS


def _confusion(run, model: str, f: float) -> dict[str, Any] | None:
    m = run.metrics
    sel = m[(m["model"] == model) & (m["task"] == "gender") & (m["group"] == "all") & (m["fraction"] == f)]
    counts = sel.groupby("metric")["value"].sum()
    if not {"tn", "fp", "fn", "tp"} <= set(counts.index):
        return None
    grid = [[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]]
    rows = []
    for name, (a, b) in zip(("male", "female"), grid):
        total = a + b
        cells = []
        for c in (a, b):
            share = c / total if total else 0.0
            cells.append(
                {
                    "count": f"{int(c):,}",
                    "share": f"{share:.0%}" if total else MISSING,
                    "style": f"background: rgba(49, 130, 189, {0.08 + 0.85 * share:.2f}); color: {'#fff' if share > 0.55 else '#111'}",
                }
            )
        rows.append({"label": name, "cells": cells})
    return {"model": model, "rows": rows, "trials": int(sel["trial"].nunique())}


def _roc(run, models: list[str], f: float, colors: dict[str, str]) -> dict[str, str]:
    preds = predictions_at(run, f)
    if preds is None:
        return {"roc_message": "predictions.csv.gz is missing, so there are no ROC curves."}
    from sklearn.metrics import roc_auc_score, roc_curve

    curves = {}
    for model in models:
        p = preds[preds["model"] == model].dropna(subset=["p_female"])
        if len(p) and p["gender"].nunique() == 2:
            y, score = p["gender"].astype(int), p["p_female"].astype(float)
            fpr, tpr, _ = roc_curve(y, score)
            curves[model] = (fpr, tpr, roc_auc_score(y, score))
    if not curves:
        return {"roc_message": "No model has scores for both genders, so there are no ROC curves."}
    return {
        "roc": plots.roc_curves(curves, colors),
        "roc_note": f"Trial {int(preds['trial'].iloc[0])} at training fraction {frac(f)}, from P(female) of every test face.",
    }


def gender_section(run, S: Summary, colors: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = task_start(run, "gender")
    if "message" in out:
        return out
    models, f = out["models"], run.main_fraction
    cols = []
    for metric in GENDER_METRICS:
        kind, _, cls = metric.partition("_")
        if cls in ("male", "female", "macro"):
            cols.append(Column(metric, "F1" if kind == "f1" else kind.capitalize(), True, group=cls.capitalize()))
        else:
            cols.append(Column(metric, label(metric), True))
    out["table"] = task_table(run, S, "gender", cols, f"Gender: every model (female is the positive class; training fraction {frac(f)})")
    out["confusions"] = [c for c in (_confusion(run, m, f) for m in models) if c]
    n_trials = max((c["trials"] for c in out["confusions"]), default=1)
    out["confusion_note"] = (
        "Counts of test faces"
        + (f", added up over {n_trials} trials" if n_trials > 1 else "")
        + "; the percentage is the share of its row (of the true class)."
    )
    out.update(_roc(run, models, f, colors))
    return out
