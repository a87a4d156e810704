"""The sweep page's "Objective by parameter" section: each parameter's values against the objective.

Points are grouped by parameter value (ranges binned), drawn as a strip per value with
its median, and tested for whether the parameter matters (Kruskal-Wallis); in a
one-at-a-time sweep only the base and the points that change that parameter count.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from facebench.reports.plots import _grid, _styled, _styled_axes, new_figure, to_data_uri
from facebench.reports.tables import Cell, Column, Table, format_plain, is_missing, metric_cell, text_cell
from facebench.rundir.sweepdir import Sweep
from facebench.vocab import Objective

STATE_COLORS = {"complete": "#1f77b4", "pruned": "#ff7f0e", "failed": "#d62728"}


# ---- the objective against each parameter ---------------------------------------------


@dataclass
class Group:
    label: str
    x: float  # where the group is drawn
    y: np.ndarray  # the points' values
    x_lo: float | None = None  # a bin's edges (numeric ranges)
    x_hi: float | None = None
    x_points: np.ndarray | None = None  # the points' own x (numeric axes)

    @property
    def mean(self) -> float:
        return float(np.mean(self.y))

    @property
    def interval(self) -> tuple[float, float] | None:
        """95% t interval of the mean (None for one point)."""
        n = len(self.y)
        if n < 2:
            return None
        half = float(stats.t.ppf(0.975, n - 1) * np.std(self.y, ddof=1) / math.sqrt(n))
        return self.mean - half, self.mean + half


def value_label(v: Any) -> str:
    """How a parameter value is shown (and grouped): lists as JSON, booleans lower-case."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return format_plain(v)

def _is_range(spec: Any) -> bool:
    return isinstance(spec, dict) and "low" in spec and "high" in spec


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def group_points(values: list[Any], y: np.ndarray, spec: Any, exact: bool = False) -> tuple[list[Group], bool, bool]:
    """The points grouped for one parameter: ``(groups, numeric_axis, log_axis)``.

    Choices group by value in the order of the space; a numeric range groups by value
    when it has at most 4 distinct values (or ``exact``), else in 3-4 bins over the range.
    """
    ranged = _is_range(spec) or (spec is None and _numeric(values) and len(set(values)) > 4)
    if not ranged:
        order = [value_label(v) for v in spec] if isinstance(spec, list) else []
        order += sorted({value_label(v) for v in values} - set(order))
        labels = [value_label(v) for v in values]
        groups = [Group(lab, float(i), y[[j for j, l in enumerate(labels) if l == lab]]) for i, lab in enumerate(order)]
        return groups, False, False
    x = np.array([float(v) for v in values])
    log = bool(spec.get("log")) if isinstance(spec, dict) else False
    distinct = sorted(set(x.tolist()))
    if exact or len(distinct) <= 4:
        return [Group(format_plain(v), v, y[x == v], x_points=x[x == v]) for v in distinct], True, log
    lo = float(spec.get("low", x.min())) if isinstance(spec, dict) else float(x.min())
    hi = float(spec.get("high", x.max())) if isinstance(spec, dict) else float(x.max())
    k = 3 if len(x) < 12 else 4
    edges = np.geomspace(lo, hi, k + 1) if log and lo > 0 else np.linspace(lo, hi, k + 1)
    groups = []
    for i in range(k):
        inside = (x >= edges[i]) & ((x < edges[i + 1]) if i < k - 1 else (x <= edges[i + 1]))
        if inside.any():
            centre = math.sqrt(edges[i] * edges[i + 1]) if log and lo > 0 else (edges[i] + edges[i + 1]) / 2
            label = f"{edges[i]:.3g}–{edges[i + 1]:.3g}"
            groups.append(Group(label, centre, y[inside], float(edges[i]), float(edges[i + 1]), x[inside]))
    return groups, True, log and lo > 0


def _one_at_a_time(sweep: Sweep, param: str, frame: pd.DataFrame) -> pd.DataFrame | None:
    """The base and the points that differ from it in ``param`` alone (None without a base)."""
    base = sweep.point(sweep.base_number)
    if base is None:
        return None
    others = [p for p in sweep.params if p != param]
    same = [all(value_label(row[f"param.{o}"]) == value_label(base[f"param.{o}"]) for o in others) for _, row in frame.iterrows()]
    return frame[same]


@_styled
def _marginal_figure(panels: list[dict[str, Any]], task: Objective, base_value: float | None) -> str:
    nrows, ncols = _grid(len(panels), 3)
    fig = new_figure(3.4 * ncols, 2.7 * nrows + 0.2)
    axes = _styled_axes(fig, nrows, ncols, sharey=True)
    rng = np.random.default_rng(0)
    for ax, panel in zip(axes.flat, panels):
        groups, numeric, log = panel["groups"], panel["numeric"], panel["log"]
        if log:
            ax.set_xscale("log")
        for g in (g for g in groups if len(g.y)):
            xs = g.x_points if numeric else g.x + rng.uniform(-0.12, 0.12, len(g.y))
            ax.scatter(xs, g.y, s=14, color="#1f77b4", alpha=0.45, linewidths=0, zorder=2)
            ci = g.interval
            yerr = None if ci is None else [[g.mean - ci[0]], [ci[1] - g.mean]]
            xerr = None
            if g.x_lo is not None:
                xerr = [[g.x - g.x_lo], [g.x_hi - g.x]]
            ax.errorbar([g.x], [g.mean], yerr=yerr, xerr=xerr, fmt="s", color="#17324f", markersize=5, capsize=3, linewidth=1.2, zorder=3)
        if panel["connect"] and len(groups) > 1:
            ax.plot([g.x for g in groups if len(g.y)], [g.mean for g in groups if len(g.y)], color="#17324f", linewidth=0.8, zorder=2)
        if panel["base_x"] is not None and base_value is not None:
            ax.scatter([panel["base_x"]], [base_value], marker="*", s=90, color="#e6550d", zorder=4, label="base")
        if base_value is not None:
            ax.axhline(base_value, color="#e6550d", linewidth=0.8, linestyle=":", zorder=1)
        if not numeric:
            ax.set_xticks([g.x for g in groups], [g.label for g in groups], rotation=20 if max((len(g.label) for g in groups), default=0) > 6 else 0, ha="right" if max((len(g.label) for g in groups), default=0) > 6 else "center")
            ax.set_xlim(-0.5, len(groups) - 0.5)
        ax.set_title(panel["param"])
    ys = np.concatenate([g.y for panel in panels for g in panel["groups"]] + [np.array([base_value] if base_value is not None else [])])
    if ys.size:  # the points set the scale; a wide interval of few points is cut at the edge
        pad = max(0.15 * float(ys.max() - ys.min()), 0.02 * max(abs(float(ys.max())), 1e-3))
        axes.flat[0].set_ylim(float(ys.min()) - pad, float(ys.max()) + pad)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"validation {task.label}")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    return to_data_uri(fig)


def parameters_section(sweep: Sweep) -> dict[str, Any]:
    """Per task of the objective: one figure (a panel per parameter) and the group means table."""
    one_at_a_time = sweep.info.get("method", sweep.config.get("method")) == "one-at-a-time"
    if not sweep.params:
        return {"message": "points.csv has no point yet: nothing to plot.", "tasks": [], "one_at_a_time": one_at_a_time}
    out: list[dict[str, Any]] = []
    base = sweep.point(sweep.base_number)
    for task in [t for t in sweep.tasks if t in sweep.measured]:
        frame = sweep.complete.dropna(subset=[task.column])
        if not len(frame):
            continue
        panels, rows = [], []
        base_value = None if base is None or base["state"] != "complete" or is_missing(base[task.column]) else float(base[task.column])
        for param in sweep.params:
            sub = frame
            if one_at_a_time:
                sub = _one_at_a_time(sweep, param, frame)
                sub = frame if sub is None else sub
            values = list(sub[f"param.{param}"])
            y = sub[task.column].to_numpy(dtype=float)
            spec = sweep.space.get(param)
            groups, numeric, log = group_points(values, y, spec, exact=one_at_a_time)
            base_x = None
            if base is not None:
                bv = base[f"param.{param}"]
                if numeric and not is_missing(bv):
                    base_x = float(bv)
                elif not numeric:
                    base_x = next((g.x for g in groups if g.label == value_label(bv)), None)
            panels.append({"param": param, "groups": groups, "numeric": numeric, "log": log, "base_x": base_x,
                           "connect": one_at_a_time and numeric})
            for g in groups:
                if not len(g.y):
                    continue
                ci = g.interval
                cell = metric_cell(task.metric, g.mean, *(ci or (None, None)))
                rows.append([text_cell(param), text_cell(g.label), Cell(value=len(g.y), text=str(len(g.y))), cell])
        table = Table(f"groups_{task.key}", f"Validation {task.label} by parameter value", [
            Column("param", "Parameter"), Column("value", "Value or bin"), Column("n", "Points", True),
            Column("mean", f"Mean {task.label}", True),
        ], rows, note="Mean over the complete points in each group with its 95% t interval (none for a single point).")
        if one_at_a_time:
            caption = ("One at a time (the study's independent-variable design): each panel is the base and the points "
                       "that changed only that parameter, every other parameter at the base's value. ")
        else:
            caption = ("Every other parameter marginalised: all complete points, grouped by this parameter's value "
                       "(or in bins over its range). ")
        caption += (f"Squares: each group's mean validation {task.label} with its 95% t interval (a bar across a bin "
                    f"spans the bin; an interval wider than the points is cut at the panel's edge); dots: single points; "
                    f"star and dotted line: the base point.")
        out.append({"label": task.label, "figure": _marginal_figure(panels, task, base_value), "caption": caption, "table": table})
    if not out:
        return {"message": "No complete point with a validation value yet: nothing to plot.", "tasks": [], "one_at_a_time": one_at_a_time}
    return {"tasks": out, "one_at_a_time": one_at_a_time}
