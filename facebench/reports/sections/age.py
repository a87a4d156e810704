"""Age: the error table, predicted against true age, and the error by age band."""

from __future__ import annotations

from typing import Any

import pandas as pd

from facebench.reports import plots
from facebench.reports.sections import predictions_at, task_start, task_table
from facebench.reports.summary import Summary, frac, group_order, label
from facebench.reports.tables import Column
from facebench.vocab import AGE_METRICS


def age_section(run, S: Summary, colors: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = task_start(run, "age")
    if "message" in out:
        return out
    models, f = out["models"], run.main_fraction
    cols = [Column(m, label(m), numeric=True) for m in AGE_METRICS] + [Column("n", "Test faces", numeric=True)]
    out["table"] = task_table(run, S, "age", cols, f"Age: error of every model (training fraction {frac(f)})")

    preds = predictions_at(run, f)
    if preds is not None:
        per_model = {m: g.dropna(subset=["age_pred"]) for m, g in preds.groupby("model", sort=False) if m in models}
        per_model = {m: per_model[m] for m in models if m in per_model and len(per_model[m])}
        if per_model:
            out["scatter"] = plots.predicted_vs_true(per_model, colors)
            out["scatter_note"] = (
                f"Trial {int(preds['trial'].iloc[0])}, {len(next(iter(per_model.values())))} test faces; "
                "dotted line: perfect prediction."
            )
    else:
        out["scatter_message"] = "predictions.csv.gz is missing, so there is no predicted-against-true plot."

    m = run.metrics
    bands = group_order([g for g in m.loc[m["task"] == "age", "group"].unique() if g.startswith("age_band:")])
    if bands:
        band_table = pd.DataFrame(
            {model: [S.value(f, model, "age", b, "mae") for b in bands] for model in models},
            index=[b.partition(":")[2] for b in bands],
        )
        out["bands"] = plots.metric_by_group(band_table, colors, "MAE (years)", "true age band")
        out["bands_note"] = (
            "MAE per true age band" + (", median over trials" if S.max_trials > 1 else "") + "; the table is under “Who is it wrong for?”."
        )
    return out
