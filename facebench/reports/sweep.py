"""The sweep page: a sweep directory in (docs/sweep-directory.md), one self-contained HTML page out.

:func:`facebench.rundir.sweepdir.read_sweep` reads the directory (never ``study.db``,
never any code) into a :class:`Sweep`; :func:`write_sweep_report` draws the page from it with
``templates/sweep.html``. Every number on the page is a validation figure from the
training part; the page says so and gives the command that measures the winner on the
test part. A sweep with no complete point, only failed points, no curves (a classical
model) or still running gives a page that says what is missing.

The objective against each parameter is a marginal view: the complete points grouped
by the parameter's value (choices) or in a few bins (numeric ranges), each group's
mean with a 95% t interval, every point a dot. In a ``one-at-a-time`` sweep each panel
holds only the base and the points that changed that one parameter.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facebench.io import atomic_write_text
from facebench.reports.plots import _styled, _styled_axes, new_figure, to_data_uri
from facebench.reports.render import render, timestamp
from facebench.reports.tables import Cell, Column, Table, format_metric, format_seconds, is_missing, metric_cell, text_cell
from facebench.rundir.sweepdir import BEST_FILE, REPORT_FILE, Sweep, pareto, read_sweep
from facebench.reports.sweep_parameters import STATE_COLORS, parameters_section, value_label
from facebench.vocab import OBJECTIVES, Objective

SECTIONS = [
    ("headline", "The result"),
    ("parameters", "Objective by parameter"),
    ("importances", "Parameter importances"),
    ("best", "Best points"),
    ("curves", "Training curves"),
    ("time", "Time"),
    ("config", "Sweep config"),
]
TOP = 10  # rows of the best-points table
CURVES_SHOWN = 5  # best complete points drawn in the training curves


# ---- importances, best points, curves, time --------------------------------------------


@_styled
def _importance_figure(importances: dict[str, dict[str, float]]) -> str:
    n = max(len(v) for v in importances.values())
    fig = new_figure(3.8 * len(importances), 0.35 * n + 1.0)
    axes = _styled_axes(fig, 1, len(importances))
    for ax, (key, imp) in zip(axes.flat, importances.items()):
        names = sorted(imp, key=lambda p: -imp[p])
        vals = [imp[p] for p in names]
        ax.barh(range(len(names)), vals, color="#3182bd", height=0.6)
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()
        for i, v in enumerate(vals):
            ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
        ax.set_xlim(0, max(vals + [0.01]) * 1.25)
        ax.set_title(OBJECTIVES[key].label if key in OBJECTIVES else key)
        ax.set_xlabel("importance")
    return to_data_uri(fig)


def importances_section(sweep: Sweep) -> dict[str, Any]:
    imp = {k: v for k, v in sweep.importances.items() if v}
    if not imp:
        return {"message": "No importances: importances.json is absent or empty (Optuna needs at least 3 complete points)."}
    return {"figure": _importance_figure(imp), "caption": (
        "Optuna's parameter importance (its default evaluator, PED-ANOVA in Optuna 5) of each parameter for the validation value of each task, over the complete "
        "points: the share of the variance of the objective that the parameter explains. Few points make it rough.")}


def _point_label(sweep: Sweep, number: int) -> str:
    tags = [t for t, on in (("base", number == sweep.base_number), ("best", number == sweep.best_number)) if on]
    return f"#{number}" + (f" ({', '.join(tags)})" if tags else "")


def _metric_cell(row: pd.Series, task: Objective) -> Cell:
    cell = metric_cell(task.metric, row[task.column], row[f"{task.column}_low"], row[f"{task.column}_high"])
    cell.ref = f"{int(row['number'])}|{task.column}"
    return cell


def best_section(sweep: Sweep) -> dict[str, Any]:
    if not len(sweep.complete):
        return {"message": "No complete point yet."}
    front = pareto(sweep.complete) if sweep.objective == "both" else set()
    if sweep.objective == "both":
        c = sweep.complete.dropna(subset=["val_age_mae"])
        ranked = c.assign(_f=~c["number"].isin(front)).sort_values(["_f", "val_age_mae", "number"])
        order_note = "Points on the Pareto front first (no other point has both a lower MAE and a higher accuracy), then by age MAE."
    else:
        ranked = sweep.ranked(sweep.tasks[0])
        order_note = f"Complete points ordered by validation {sweep.tasks[0].label}, best first."
    shown = ranked.head(TOP)
    base = sweep.base_number
    if base is not None and base not in set(shown["number"]) and base in set(sweep.complete["number"]):
        shown = pd.concat([shown, sweep.complete[sweep.complete["number"] == base]])
    tasks = sweep.measured
    has_epochs = sweep.points["epochs_run"].notna().any()
    cols = [Column("point", "Point")] + [Column(t.column, f"Validation {t.label}", True) for t in tasks]
    if front:
        cols.append(Column("pareto", "Pareto front"))
    cols.append(Column("seconds", "Seconds", True))
    if has_epochs:
        cols.append(Column("epochs_run", "Epochs", True))
    cols += [Column(f"param.{p}", p) for p in sweep.params]
    rows = []
    for _, r in shown.iterrows():
        row = [text_cell(_point_label(sweep, int(r["number"])))] + [_metric_cell(r, t) for t in tasks]
        if front:
            row.append(text_cell("yes" if int(r["number"]) in front else "no"))
        row.append(Cell(value=r["seconds"], text=format_seconds(r["seconds"])))
        if has_epochs:
            row.append(Cell(value=r["epochs_run"], text=format_metric("n", r["epochs_run"])))
        row += [text_cell(value_label(r[f"param.{p}"])) for p in sweep.params]
        rows.append(row)
    table = Table("best_points", f"The best {min(TOP, len(ranked))} of {len(sweep.complete)} complete points", cols, rows,
                  note=order_note + " Validation metrics with their 95% bootstrap interval over the validation faces"
                  + ("; the base is added at the end when it is not among them." if base is not None else "."))
    for t in tasks:
        table.mark_best(t.column, t.direction)
    return {"table": table}


@_styled
def _curves_figure(sweep: Sweep, numbers: list[int], pruned: list[int]) -> str:
    curves = sweep.curves
    keys = [k for k in ("val_loss", "val_age_mae", "val_gender_accuracy") if k in curves and curves[k].notna().any()]
    fig = new_figure(3.6 * len(keys), 2.9)
    axes = _styled_axes(fig, 1, len(keys))
    palette = ["#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#8c564b"]
    base = sweep.base_number
    for ax, key in zip(axes.flat, keys):
        for n in pruned:
            c = curves[curves["number"] == n].sort_values("epoch")
            ax.plot(c["epoch"], c[key], color="#ff7f0e", alpha=0.35, linewidth=1.0, label="pruned")
            ax.scatter(c["epoch"].iloc[-1:], c[key].iloc[-1:], marker="x", color="#ff7f0e", alpha=0.6, s=18)
        for i, n in enumerate(numbers):
            c = curves[curves["number"] == n].sort_values("epoch")
            style = {"color": "#333", "linestyle": "--"} if n == base else {"color": palette[i % len(palette)]}
            ax.plot(c["epoch"], c[key], linewidth=1.5, marker="o", markersize=2.5, label=_point_label(sweep, n), **style)
        ax.set_title(key.replace("_", " "))
        ax.set_xlabel("epoch")
    seen: dict[str, Any] = {}
    for h, lab in zip(*axes.flat[0].get_legend_handles_labels()):
        seen.setdefault(lab, h)
    fig.legend(list(seen.values()), list(seen), loc="outside upper center", ncols=min(len(seen), 6))
    return to_data_uri(fig)


def curves_section(sweep: Sweep) -> dict[str, Any]:
    if sweep.curves is None or not len(sweep.curves):
        base = str(sweep.info.get("base", sweep.config.get("base", "")))
        classical = not base.startswith("cnn") if base else sweep.points["epochs_run"].isna().all()
        return {"message": "A classical model: it has no training curves." if classical
                else "No curves.csv yet: no point has finished an epoch."}
    have = set(sweep.curves["number"].astype(int))
    ranked = sweep.ranked(sweep.tasks[0]) if sweep.tasks[0] in sweep.measured else sweep.complete
    numbers = [int(n) for n in ranked["number"] if int(n) in have][:CURVES_SHOWN]
    base = sweep.base_number
    if base is not None and base in have and base not in numbers and base in set(sweep.complete["number"]):
        numbers.append(base)
    pruned = [int(n) for n in sweep.points.loc[sweep.points["state"] == "pruned", "number"] if int(n) in have]
    if not numbers and not pruned:
        return {"message": "No complete or pruned point has a training curve yet."}
    return {"figure": _curves_figure(sweep, numbers, pruned), "caption": (
        f"Validation curves per epoch of the best {len(numbers)} complete points (the base dashed) and, faded, the "
        f"{len(pruned)} pruned point{'' if len(pruned) == 1 else 's'}: each stops (×) at the epoch it was pruned.")}


@_styled
def _time_figure(points: pd.DataFrame, budget_s: float | None) -> str:
    fig = new_figure(9.0, 2.8)
    ax1, ax2 = _styled_axes(fig, 1, 2)[0]
    seconds = points["seconds"].fillna(0).to_numpy(dtype=float)
    for state, color in STATE_COLORS.items():
        sel = (points["state"] == state).to_numpy()
        if sel.any():
            ax1.bar(points["number"].to_numpy()[sel], seconds[sel], color=color, label=state)
    ax1.set_xlabel("point")
    ax1.set_ylabel("seconds")
    ax1.legend()
    ax2.plot(points["number"], np.cumsum(seconds) / 60, marker="o", markersize=3, color="#17324f", label="spent")
    if budget_s:
        ax2.axhline(budget_s / 60, color="#d62728", linestyle="--", linewidth=1, label="budget")
    ax2.set_xlabel("point")
    ax2.set_ylabel("cumulative minutes")
    ax2.legend()
    return to_data_uri(fig)


def _minutes(s: Any) -> str:
    return "—" if is_missing(s) else f"{float(s) / 60:.1f} min"


def time_section(sweep: Sweep) -> dict[str, Any]:
    p = sweep.points
    budget = sweep.info.get("budget_minutes", sweep.config.get("budget_minutes"))
    budget_s = float(budget) * 60 if isinstance(budget, (int, float)) and budget > 0 else None
    out: dict[str, Any] = {"facts": [
        ("Points", str(len(p))),
        ("Spent", _minutes(sweep.info.get("elapsed_s", p["seconds"].sum()))),
        ("Budget", _minutes(budget_s) if budget_s else "none"),
        ("Median per complete point", format_seconds(sweep.complete["seconds"].median()) + " s" if len(sweep.complete) else "—"),
        ("Pruned", str(int((p["state"] == "pruned").sum()))),
        ("Failed", str(int((p["state"] == "failed").sum()))),
    ]}
    if len(p):
        out["figure"] = _time_figure(p, budget_s)
    for state in ("failed", "pruned"):
        sel = p[p["state"] == state]
        rows = [[text_cell(f"#{int(r['number'])}"), Cell(value=r["seconds"], text=format_seconds(r["seconds"])),
                 text_cell(r["reason"] or "no reason recorded")] for _, r in sel.iterrows()]
        out[state] = Table(state, f"{state.capitalize()} points", [Column("point", "Point"), Column("seconds", "Seconds", True),
                           Column("reason", "Reason")], rows, wrap=True) if rows else None
    return out


# ---- the headline ------------------------------------------------------------------------


def _comparison(sweep: Sweep, task: Objective, best: int | None) -> dict[str, Any]:
    """The best point against the base point on one task."""
    out: dict[str, Any] = {"label": task.label}
    b, base = sweep.point(best), sweep.point(sweep.base_number)
    if b is None or is_missing(b[task.column]):
        out["message"] = f"No complete point has a validation {task.label} yet."
        return out
    out["best"] = {"label": _point_label(sweep, best), "cell": _metric_cell(b, task)}
    if base is None:
        out["message"] = "No point has the base's own parameters: nothing to compare the best point with."
    elif base["state"] != "complete" or is_missing(base[task.column]):
        out["message"] = f"The base point #{int(base['number'])} is {base['state']}: nothing to compare the best point with."
    elif int(base["number"]) == best:
        out["message"] = "The base's own parameters are the best point found."
    else:
        diff = float(b[task.column]) - float(base[task.column])
        better = diff < 0 if task.direction == "min" else diff > 0
        fmt = "{:+.2f}" if task.metric == "mae" else "{:+.3f}"
        overlap = not (b[f"{task.column}_high"] < base[f"{task.column}_low"] or b[f"{task.column}_low"] > base[f"{task.column}_high"])
        out["base"] = {"label": _point_label(sweep, int(base["number"])), "cell": _metric_cell(base, task)}
        out["difference"] = fmt.format(diff)
        out["verdict"] = ("better" if better else "worse" if diff else "the same") + (
            "; the two intervals overlap, so the gain may be noise of the validation part" if overlap and diff else "")
    return out


def headline(sweep: Sweep) -> dict[str, Any]:
    info, cfg, p = sweep.info, sweep.config, sweep.points
    counts = {s: int((p["state"] == s).sum()) for s in ("complete", "pruned", "failed")}
    budget = info.get("budget_minutes", cfg.get("budget_minutes"))
    elapsed = info.get("elapsed_s")
    spent = _minutes(elapsed)
    if isinstance(budget, (int, float)) and budget > 0 and not is_missing(elapsed):
        spent += f" of {budget:g} min ({100 * float(elapsed) / (budget * 60):.0f} %)"
    val = info.get("validation") if isinstance(info.get("validation"), dict) else {}
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    best = sweep.best_number
    comparisons = [_comparison(sweep, t, best) for t in sweep.tasks]
    command = None
    if sweep.best_toml is not None:
        command = f"facebench run --data {shlex.quote(str(data.get('path') or 'D'))} --config {shlex.quote(str(sweep.dir / BEST_FILE))}"
    n_val, n_train = val.get("n_val"), val.get("n_train")
    fraction = cfg.get("validation")
    where = f"{n_val:,} faces" if isinstance(n_val, int) else "faces"
    if isinstance(n_train, int):
        where += f" held out of the training part ({n_train:,} left to train on"
        where += f", validation fraction {fraction:g})" if isinstance(fraction, (int, float)) else ")"
    else:
        where += " held out of the training part"
    return {
        "base": info.get("base", cfg.get("base", "?")),
        "method": info.get("method", cfg.get("method", "?")),
        "objective": sweep.objective,
        "counts": counts,
        "requested": info.get("n_requested", cfg.get("n")),
        "spent": spent,
        "stopped_by": info.get("stopped_by"),
        "running": info.get("finished") is None,
        "started": info.get("started"),
        "finished": info.get("finished"),
        "test_read": bool(val.get("test_part_read")),
        "validation": where,
        "comparisons": comparisons,
        "best_number": best,
        "command": command,
        "best_toml": sweep.best_toml,
        "machine": ", ".join(str(x) for x in (info.get("cpu"), f"{info['cores']} cores" if info.get("cores") else None) if x),
    }


def write_sweep_report(sweep_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Write the sweep page from the sweep directory alone.

    Parameters
    ----------
    sweep_dir : path
        A sweep directory (docs/sweep-directory.md), finished or still running; only
        ``sweep.json`` is required.
    out : path, optional
        The HTML file to write; default ``sweep_dir/report.html``.

    Returns
    -------
    Path of the page.

    Raises
    ------
    UserError
        If ``sweep_dir`` is not a sweep directory of this facebench's format.
    """
    sweep = read_sweep(sweep_dir)
    from facebench import __version__

    html = render(
        "sweep.html",
        sections=SECTIONS,
        name=sweep.dir.resolve().name,
        h=headline(sweep),
        parameters=parameters_section(sweep),
        importances=importances_section(sweep),
        best=best_section(sweep),
        curves=curves_section(sweep),
        time=time_section(sweep),
        config_text=sweep.config_text,
        generated=timestamp(),
        version=__version__,
    )
    out = Path(out) if out is not None else sweep.dir / REPORT_FILE
    atomic_write_text(out, html)
    return out


__all__ = ["Sweep", "read_sweep", "write_sweep_report"]
