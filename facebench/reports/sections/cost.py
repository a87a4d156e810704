"""Cost: seconds per stage, memory and model size of each model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from facebench.reports import plots
from facebench.reports.summary import frac
from facebench.reports.tables import MISSING, Cell, Column, Table, format_bytes, format_metric, format_seconds, is_missing, text_cell

STAGES = {"decode_s": "Decode", "features_s": "Features", "fit_s": "Fit", "predict_s": "Predict"}


def _cell(key: str, v: Any) -> Cell:
    if key in ("n_train", "n_test"):
        return Cell(value=v, text=format_metric("n", v))
    if key == "model_bytes":
        return Cell(value=v, text=format_bytes(v))
    if key == "peak_memory_mb":
        return Cell(value=v, text=MISSING if is_missing(v) else f"{v:,.0f}")
    if key == "predict_ms_per_face":
        return Cell(value=v, text=MISSING if is_missing(v) else f"{v:.3g}")
    return Cell(value=v, text=format_seconds(v))


def _embedding_note(run, med) -> str:
    """For models on a pretrained network's features: their Features column is the one-off embedding."""
    elsewhere = [str(m) for m in med.index if run.family(str(m)) == "learned elsewhere"]
    if not elsewhere or "features_s" not in med.columns:
        return ""
    m = elsewhere[0]
    faces = sum(med.loc[m, c] for c in ("n_train", "n_test") if c in med.columns)
    rate = f" ({1000 * med.loc[m, 'features_s'] / faces:.0f} ms per face)" if faces else ""
    return (f" For the models learned elsewhere ({', '.join(elsewhere)}), Features is the one-off embedding of the "
            f"faces by the pretrained network{rate}, apart from the fit of their heads; it is cached by image "
            "content, so a later run on the same faces reads it back in seconds.")


#: How the cost table names the library that fitted a model (timings.csv ``svm_backend``).
LIBRARIES = {"onedal": "oneDAL", "libsvm": "libsvm"}


def _fitted_by(run, t, models) -> dict:
    """Per model, the library that fitted it: the RBF SVMs' (oneDAL / libsvm), TensorFlow, or scikit-learn."""
    recorded = t.groupby("model", sort=False)["svm_backend"].agg(
        lambda s: ", ".join(sorted({LIBRARIES.get(str(v), str(v)) for v in s if isinstance(v, str) and v}))
    ) if "svm_backend" in t.columns else pd.Series(dtype=object)
    out = {}
    for m in models:
        kind = run.kind(str(m))
        out[m] = recorded.get(m) or ("TensorFlow" if kind == "cnn" else "scikit-learn" if kind == "classical" else MISSING)
    return out


def cost_section(run) -> dict[str, Any]:
    t = run.timings
    if t is None or not len(t):
        return {"message": "timings.csv is missing, so the cost of each model is unknown."}
    f = run.main_fraction
    t = t[t["fraction"] == f] if (t["fraction"] == f).any() else t
    stages = [c for c in STAGES if c in t.columns]
    numeric = [c for c in ["n_train", "n_test", *stages, "peak_memory_mb", "model_bytes"] if c in t.columns]
    med = t.groupby("model", sort=False)[numeric].median()
    order = [m for m in run.models if m in med.index] + [m for m in med.index if m not in run.models]
    med = med.loc[order]
    med["total_s"] = med[stages].sum(axis=1, min_count=1)
    cols = [Column("model", "Model"), Column("fitted_by", "Fitted by")]
    fitted_by = _fitted_by(run, t, med.index)
    cols += [Column(c, {"n_train": "Train", "n_test": "Test"}[c], True, group="Faces") for c in ("n_train", "n_test") if c in med.columns]
    cols += [Column(c, STAGES[c], True, group="Seconds") for c in stages] + [Column("total_s", "Total", True, group="Seconds")]
    if "predict_s" in med.columns and "n_test" in med.columns:
        med["predict_ms_per_face"] = 1000 * med["predict_s"] / med["n_test"].replace(0, np.nan)
        cols.append(Column("predict_ms_per_face", "Predict ms / face", True))
    if "peak_memory_mb" in med.columns:
        cols.append(Column("peak_memory_mb", "Peak memory (MB)", True))
    if "model_bytes" in med.columns:
        cols.append(Column("model_bytes", "Model size", True))
    rows = [[text_cell(model), text_cell(fitted_by[model])] + [_cell(c.key, r[c.key]) for c in cols[2:]]
            for model, r in med.iterrows()]
    n_trials = int(t["trial"].nunique()) if "trial" in t.columns else 1
    table = Table(
        "cost",
        f"What each model costs (training fraction {frac(f)})",
        cols,
        rows,
        note=(f"Median over {n_trials} trials. " if n_trials > 1 else "")
        + "Decoding is shared by the models of a trial where the run caches images; ★ cheapest (trivial baselines left out). "
        "Fitted by: the library that fitted the model (for RBF SVMs, oneDAL or libsvm: config key svm_backend)."
        + _embedding_note(run, med),
    )
    real = [i for i, model in enumerate(med.index) if run.family(str(model)) != "trivial"]
    for key in ("total_s", "predict_ms_per_face", "peak_memory_mb", "model_bytes"):
        if any(c.key == key for c in cols):
            table.mark_best(key, "min", rows=real)
    figure = plots.cost_figure(med[stages].rename(columns=STAGES)) if stages else None
    return {"table": table, "figure": figure}
