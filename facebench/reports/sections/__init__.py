"""The report's sections, one module per section (or close group of sections).

Each module has one builder that takes the :class:`~facebench.rundir.read.Run` (and the
:class:`~facebench.reports.summary.Summary` where it shows figures over trials) and
returns a plain dict for ``templates/report.html``; a piece the run lacks becomes a
``message`` saying so. :data:`SECTIONS` is their order in the report.
"""

from __future__ import annotations

import pandas as pd

from facebench.reports.summary import Summary
from facebench.vocab import direction
from facebench.reports.tables import Column, Table, text_cell

SECTIONS = [
    ("answer", "The answer"),
    ("age", "Age"),
    ("gender", "Gender"),
    ("data-size", "Data size"),
    ("training", "Training curves"),
    ("paired", "Is the difference real?"),
    ("subgroups", "Who is it wrong for?"),
    ("cost", "Cost"),
    ("worst", "Worst errors"),
    ("seen", "What each method sees"),
    ("audit", "Data audit"),
    ("reproduce", "Reproduce"),
]


def predictions_at(run, fraction: float) -> pd.DataFrame | None:
    """Predictions of the first trial at ``fraction`` (None when the run has none there)."""
    p = run.predictions
    if p is None or not len(p):
        return None
    p = p[p["fraction"] == fraction]
    if not len(p):
        return None
    return p[p["trial"] == p["trial"].min()]


def task_start(run, task: str) -> dict:
    """``{"models": [...]}`` of a task's section, with a ``message`` when no model does the task."""
    models = run.models_for(task)
    out = {"models": models}
    if not models:
        out["message"] = f"No model in this run predicts {task}."
    return out


def task_table(run, S: Summary, task: str, columns: list[Column], title: str) -> Table:
    """One row per model of ``task``: the metrics named by ``columns`` (after the model column), best marked."""
    f = run.main_fraction
    keys = [c.key for c in columns]
    rows = [[text_cell(m)] + [S.cell(f, m, task, "all", k) for k in keys] for m in run.models_for(task)]
    table = Table(task, title, [Column("model", "Model"), *columns], rows, note=S.interval_note)
    for key in keys:
        if direction(key):
            table.mark_best(key, direction(key))
    return table
