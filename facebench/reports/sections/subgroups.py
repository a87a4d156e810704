"""Who is it wrong for? The headline metric by age band, gender and ethnicity, and the gaps."""

from __future__ import annotations

from typing import Any

import numpy as np

from facebench.reports.summary import MIN_GROUP_N, Summary, best_of, group_label, group_order, label
from facebench.vocab import HEADLINE, lower_is_better
from facebench.reports.tables import Cell, Column, Table, format_metric, is_missing, text_cell

FAMILIES = (("age_band", "age band"), ("gender", "gender"), ("race", "ethnicity"))


def _gap_rows(S: Summary, f: float, task: str, model: str, groups: list[str]) -> list[list[Cell]]:
    metric = HEADLINE[task]
    rows = []
    for family, name in FAMILIES:
        vals = {}
        for g in groups:
            if g.partition(":")[0] != family:
                continue
            value, n = S.value(f, model, task, g, metric), S.value(f, model, task, g, "n")
            if not is_missing(value) and not is_missing(n) and n >= MIN_GROUP_N:
                vals[g] = value
        if len(vals) < 2:
            continue
        best = best_of(vals, metric)
        worst = (max if lower_is_better(metric) else min)(vals, key=vals.get)
        gap = abs(vals[worst] - vals[best])
        rows.append(
            [
                text_cell(model),
                text_cell(task),
                text_cell(name),
                Cell(value=best, text=f"{group_label(best)}: {format_metric(metric, vals[best])}"),
                Cell(value=worst, text=f"{group_label(worst)}: {format_metric(metric, vals[worst])}"),
                Cell(value=gap, text=format_metric(metric, gap)),
            ]
        )
    return rows


def subgroups_section(run, S: Summary) -> dict[str, Any]:
    f = run.main_fraction
    tables, gap_rows = [], []
    m = run.metrics
    for task in ("age", "gender"):
        models = run.models_for(task)
        groups = group_order([g for g in m.loc[m["task"] == task, "group"].unique() if g != "all"])
        if not models or not groups:
            continue
        metric = HEADLINE[task]
        cols = [Column("group", "Group"), Column("n", "Test faces", True)] + [Column(x, x, True) for x in models]
        rows = []
        for g in groups:
            n = np.nanmax([S.value(f, x, task, g, "n") for x in models] + [0])
            small = n < MIN_GROUP_N
            row = [Cell(value=g, text=group_label(g), muted=small), Cell(value=n, text=format_metric("n", n), muted=small)]
            for x in models:
                cell = S.cell(f, x, task, g, metric)
                cell.muted = small
                row.append(cell)
            rows.append(row)
        tables.append(
            Table(
                f"subgroups_{task}",
                f"{task.capitalize()}: {label(metric)} by group",
                cols,
                rows,
                note=S.interval_note + f" Greyed: fewer than {MIN_GROUP_N} test faces, too few to judge (left out of the gaps).",
            )
        )
        for x in models:
            gap_rows += _gap_rows(S, f, task, x, groups)
    out: dict[str, Any] = {"tables": tables}
    if gap_rows:
        out["gap"] = Table(
            "subgroup_gaps",
            "Gap between each model's best and worst group",
            [Column("model", "Model"), Column("task", "Task"), Column("family", "Groups"), Column("best", "Best group"), Column("worst", "Worst group"), Column("gap", "Gap", True)],
            gap_rows,
            note=f"Age: MAE in years; gender: accuracy. Only groups with at least {MIN_GROUP_N} test faces count.",
        )
    if not tables:
        out["message"] = "metrics.csv has no subgroup rows."
    return out
