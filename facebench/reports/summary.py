"""Figures over trials, and the small vocabulary every section shares.

With one trial a number is shown with its 95% bootstrap interval over test images
(``ci_low``/``ci_high`` of ``metrics.csv``); with several trials it is the median over
trials with the lowest and highest trial (the 2.5th and 97.5th percentiles of the
trials from 10 trials on). :func:`interval_note` says which, in one sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from facebench.data import labels
from facebench.reports.tables import Cell, format_metric, metric_cell
from facebench.vocab import direction, metric_label

RACES = [*labels.RACES.values(), "unknown"]
#: Groups with fewer test faces are shown greyed and left out of the gaps.
MIN_GROUP_N = 10


@dataclass
class Summary:
    """Median over trials with an interval, keyed by (fraction, model, task, group, metric)."""

    values: dict[tuple, tuple[float, float, float, int]]
    max_trials: int

    def get(self, fraction: float, model: str, task: str, group: str, metric: str) -> tuple[float, float, float, int]:
        """``(value, low, high, n_trials)``; NaNs and 0 when the run has no such metric."""
        return self.values.get((fraction, model, task, group, metric), (np.nan, np.nan, np.nan, 0))

    def value(self, fraction: float, model: str, task: str, group: str, metric: str) -> float:
        return self.get(fraction, model, task, group, metric)[0]

    def cell(self, fraction: float, model: str, task: str, group: str, metric: str) -> Cell:
        """A table cell with the value, its interval and a ``data-ref`` naming its source."""
        value, low, high, _ = self.get(fraction, model, task, group, metric)
        cell = metric_cell(metric, value, low, high)
        cell.ref = f"{task}|{metric}|{group}|{model}|{fraction!r}"
        return cell

    @property
    def interval_note(self) -> str:
        return interval_note(self.max_trials)


def interval_note(n_trials: int) -> str:
    """How the numbers and brackets of the tables are made, in one sentence."""
    if n_trials <= 1:
        return "One trial: each number is its value on the test images, with its 95% bootstrap interval over test images in brackets."
    if n_trials < 10:
        return (
            f"Median over {n_trials} trials (each with its own split and seed); "
            "brackets: the lowest and highest trial (the range over trials)."
        )
    return (
        f"Median over {n_trials} trials (each with its own split and seed); "
        "brackets: the 2.5th and 97.5th percentiles over trials (a 95% interval over trials)."
    )


def summarize(metrics: pd.DataFrame) -> Summary:
    """Summarise ``metrics.csv`` over trials (see :func:`interval_note`)."""
    keys = ["fraction", "model", "task", "group", "metric"]
    grouped = metrics.groupby(keys, sort=False)
    value = grouped["value"]
    agg = pd.DataFrame({"value": value.median(), "vmin": value.min(), "vmax": value.max(), "n": value.count()})
    agg[["ci_low", "ci_high"]] = grouped[["ci_low", "ci_high"]].first()
    if agg["n"].max() >= 10:
        q = value.quantile([0.025, 0.975]).unstack()
        agg["q_lo"], agg["q_hi"] = q[0.025], q[0.975]
    else:
        agg["q_lo"] = agg["q_hi"] = np.nan
    one, few = agg["n"] <= 1, agg["n"] < 10
    low = np.where(one, agg["ci_low"], np.where(few, agg["vmin"], agg["q_lo"]))
    high = np.where(one, agg["ci_high"], np.where(few, agg["vmax"], agg["q_hi"]))
    values = {
        (float(k[0]), *k[1:]): (v, lo, hi, int(n))
        for k, v, lo, hi, n in zip(agg.index, agg["value"].to_numpy(), low, high, agg["n"].to_numpy())
    }
    n_trials = int(metrics.groupby(keys[:-1])["trial"].nunique().max()) if len(metrics) else 0
    return Summary(values, n_trials)


def best_of(scores: dict[str, float], metric: str) -> str:
    """The key of the best score for ``metric``."""
    pick = min if direction(metric) == "min" else max
    return pick(scores, key=scores.get)


def label(metric: str) -> str:
    return metric_label(metric)


def frac(f: float) -> str:
    return f"{f:g}"


def phrase(metric: str, value: float) -> str:
    """``MAE 7.49 years`` / ``accuracy 0.853``."""
    if metric == "mae":
        return f"MAE {format_metric(metric, value)} years"
    return f"{label(metric).lower() if metric == 'accuracy' else label(metric)} {format_metric(metric, value)}"


def group_order(groups: list[str]) -> list[str]:
    """``all``, then age bands youngest first, then gender, then ethnicity."""

    def key(g: str) -> tuple:
        if g == "all":
            return (0, 0, "")
        family, _, name = g.partition(":")
        if family == "age_band":
            m = re.match(r"\d+", name)
            return (1, int(m.group()) if m else 999, name)
        if family == "gender":
            return (2, 0 if name == "male" else 1, name)
        if family == "race":
            return (3, RACES.index(name) if name in RACES else 99, name)
        return (4, 0, g)

    return sorted(groups, key=key)


def group_label(group: str) -> str:
    family, _, name = group.partition(":")
    if family == "age_band":
        return f"age {name}"
    return name or family
