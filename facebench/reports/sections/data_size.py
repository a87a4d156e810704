"""Data size: how each model improves as it sees more training faces."""

from __future__ import annotations

from typing import Any

import pandas as pd

from facebench.reports import plots
from facebench.reports.summary import Summary, frac, label
from facebench.reports.tables import Cell, Column, Table, format_metric, is_missing, text_cell

SPECS = [("age", "mae"), ("age", "r2"), ("gender", "accuracy"), ("gender", "roc_auc")]
#: What a user sets to get a data-size curve (a top-level key of the config).
FRACTIONS_HINT = "--set 'fractions=[0.25, 0.5, 1.0]'"


def data_size_section(run, S: Summary, colors: dict[str, str]) -> dict[str, Any]:
    fractions = run.fractions
    out: dict[str, Any] = {}
    if len(fractions) < 2:
        out["message"] = (
            f"This run trained on one training fraction only ({frac(fractions[0])}); "
            "the data-size curve needs several fractions: set the config key fractions "
            f"(for example {FRACTIONS_HINT}), or use the full preset."
        )
        return out
    n_train: dict[float, float] = {}
    if run.timings is not None and "n_train" in run.timings.columns:
        n_train = run.timings.groupby("fraction")["n_train"].median().to_dict()
    use_n = all(f in n_train for f in fractions)
    panels = []
    for task, metric in SPECS:
        recs = []
        for model in run.models_for(task):
            for fr in fractions:
                value, low, high, _ = S.get(fr, model, task, "all", metric)
                if not is_missing(value):
                    recs.append({"model": model, "x": n_train[fr] if use_n else fr, "value": value, "low": low, "high": high})
        if recs:
            panels.append((f"{task}: {label(metric)}", pd.DataFrame(recs)))
    done = {task: set(run.models_for(task)) for task in ("age", "gender")}
    rows = []
    for model in run.models:
        for fr in fractions:
            row = [text_cell(model), Cell(value=fr, text=frac(fr)), Cell(value=n_train.get(fr), text=format_metric("n", n_train.get(fr)))]
            row += [S.cell(fr, model, task, "all", metric) if model in done[task] else Cell() for task, metric in SPECS]
            rows.append(row)
    cols = [Column("model", "Model"), Column("fraction", "Fraction", True), Column("n_train", "Training faces", True)]
    cols += [Column(f"{t}_{m}", f"{t.capitalize()} {label(m)}", True) for t, m in SPECS]
    out["table"] = Table("data_size", "Each model at every training fraction", cols, rows, note=S.interval_note)
    if panels:
        out["figure"] = plots.data_size_figure(panels, colors, "training faces" if use_n else "fraction of the training set")
    out["note"] = S.interval_note.replace("brackets", "bands")
    return out
