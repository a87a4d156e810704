"""Figures for the reports, drawn with matplotlib's Agg backend and embedded as data URIs.

Every function takes plain data (DataFrames, arrays, dicts) and returns a
``data:image/png;base64,...`` string, or draws into an ``ax`` it is given. Nothing is
plotted at import time. Figures are kept small (modest size and dpi) so that a report
of a large run stays well under 10 MB.

One function, :func:`plot_history`, draws every training curve (any metric, training
against validation); the other CNN-curve helpers only lay out its axes.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # the reports never open a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

DPI = 80
_PALETTE = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
]
_STYLE = {
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": 9,
    "axes.titlesize": 10,
    "legend.fontsize": 8,
    "legend.frameon": False,
}


def _styled(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run a plotting function inside the report's matplotlib style (fonts, grid, spines)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with plt.rc_context(_STYLE):
            return func(*args, **kwargs)

    return wrapper


def model_colors(models: Sequence[str]) -> dict[str, str]:
    """One fixed colour per model, the same in every figure of a report."""
    return {m: _PALETTE[i % len(_PALETTE)] for i, m in enumerate(models)}


def new_figure(width: float, height: float) -> Figure:
    """A figure not registered with pyplot (so nothing leaks between reports)."""
    with plt.rc_context(_STYLE):
        return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def to_data_uri(fig: Figure, dpi: int = DPI) -> str:
    """Render a figure to a PNG data URI (no metadata, modest dpi)."""
    buf = io.BytesIO()
    with plt.rc_context(_STYLE):
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _styled_axes(fig: Figure, nrows: int, ncols: int, **kw: Any) -> np.ndarray:
    with plt.rc_context(_STYLE):
        axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    for ax in axes.flat:
        ax.grid(True, alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=8)
    return axes


def _grid(n: int, max_cols: int) -> tuple[int, int]:
    ncols = max(1, min(n, max_cols))
    return (n + ncols - 1) // ncols, ncols


# ---- training curves -------------------------------------------------------------


@_styled
def plot_history(
    history: pd.DataFrame | Mapping[str, Sequence[float]],
    metric: str,
    ax: Any = None,
    *,
    color: str = "#1f77b4",
    label: str | None = None,
    title: str | None = None,
) -> Any:
    """Draw one training curve: ``metric`` per epoch, training solid, validation dashed.

    Parameters
    ----------
    history : DataFrame or mapping of str to sequence of float
        A Keras history (``History.history``) or a ``histories/{unit}.csv`` table; an
        ``epoch`` column is used for the x axis when present (1-based epochs are shown).
    metric : str
        The training key, e.g. ``"loss"``, ``"age_mae"``, ``"gender_accuracy"``; its
        validation curve ``"val_" + metric`` is drawn when present.
    ax : matplotlib Axes, optional
        Where to draw. A new small figure is made when omitted.
    color, label, title : optional
        Line colour, a legend prefix (e.g. ``"trial 0"``), the axes title (default: metric).

    Returns
    -------
    The Axes drawn into.

    Raises
    ------
    KeyError
        If neither ``metric`` nor ``"val_" + metric`` is in the history.
    """
    frame = history if isinstance(history, pd.DataFrame) else pd.DataFrame(dict(history))
    keys = [k for k in (metric, f"val_{metric}") if k in frame.columns]
    if not keys:
        raise KeyError(f"metric {metric!r} is not in the history; it has {sorted(frame.columns)}")
    if ax is None:
        ax = _styled_axes(new_figure(3.2, 2.3), 1, 1)[0, 0]
    epochs = frame["epoch"].to_numpy() if "epoch" in frame.columns else np.arange(len(frame))
    if epochs.size and epochs.min() == 0:
        epochs = epochs + 1
    prefix = f"{label} " if label else ""
    for key in keys:
        validation = key.startswith("val_") and key != metric
        ax.plot(
            epochs,
            frame[key].to_numpy(dtype=float),
            color=color,
            linestyle="--" if validation else "-",
            linewidth=1.4,
            marker="o" if len(epochs) <= 12 else None,
            markersize=3,
            label=f"{prefix}{'validation' if validation else 'training'}",
        )
    ax.set_title(title or metric.replace("_", " "))
    ax.set_xlabel("epoch")
    return ax


def history_metrics(history: pd.DataFrame) -> list[str]:
    """The training keys of a history that are worth a curve (validation ones pair up)."""
    skip = {"epoch", "lr", "learning_rate"}
    out = []
    for col in history.columns:
        if col in skip or col.startswith("val_"):
            continue
        out.append(col)
    for col in history.columns:  # a validation curve with no training twin
        if col.startswith("val_") and col[4:] not in history.columns and col[4:] not in skip:
            out.append(col[4:])
    return out


@_styled
def training_curves_figure(histories: Mapping[str, pd.DataFrame], model: str) -> str:
    """Every curve of one CNN: one panel per metric, each trial's run drawn by :func:`plot_history`."""
    metrics: list[str] = []
    for h in histories.values():
        for m in history_metrics(h):
            if m not in metrics:
                metrics.append(m)
    nrows, ncols = _grid(len(metrics), 3)
    fig = new_figure(3.4 * ncols, 2.4 * nrows + 0.4)
    axes = _styled_axes(fig, nrows, ncols)
    colors = model_colors(list(histories))
    for ax, metric in zip(axes.flat, metrics):
        for name, h in histories.items():
            if metric in h.columns or f"val_{metric}" in h.columns:
                plot_history(h, metric, ax, color=colors[name], label=name if len(histories) > 1 else None)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 6), title=model)
    return to_data_uri(fig)


# ---- age -------------------------------------------------------------------------


@_styled
def predicted_vs_true(preds: Mapping[str, pd.DataFrame], colors: Mapping[str, str]) -> str:
    """Predicted against true age, one panel per model, all on the same axes."""
    models = list(preds)
    nrows, ncols = _grid(len(models), 4)
    fig = new_figure(3.1 * ncols, 3.1 * nrows)
    axes = _styled_axes(fig, nrows, ncols, sharex=True, sharey=True)
    hi = max(float(max(p["age"].max(), p["age_pred"].max())) for p in preds.values())
    lo = min(0.0, min(float(p["age_pred"].min()) for p in preds.values()))
    hi = max(10.0, hi * 1.03)
    for ax, model in zip(axes.flat, models):
        p = preds[model]
        ax.plot([lo, hi], [lo, hi], color="#888", linewidth=0.8, linestyle=":")
        ax.scatter(p["age"], p["age_pred"], s=5, alpha=0.35, color=colors[model], linewidths=0, rasterized=True)
        ax.set_title(model)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
    for ax in axes[-1, :]:
        ax.set_xlabel("true age")
    for ax in axes[:, 0]:
        ax.set_ylabel("predicted age")
    for ax in list(axes.flat)[len(models) :]:
        ax.set_visible(False)
    return to_data_uri(fig)


@_styled
def metric_by_group(
    table: pd.DataFrame, colors: Mapping[str, str], ylabel: str, xlabel: str = ""
) -> str:
    """One line per model (columns) over ordered groups (index), e.g. MAE by age band."""
    fig = new_figure(7.5, 3.0)
    ax = _styled_axes(fig, 1, 1)[0, 0]
    x = np.arange(len(table.index))
    for model in table.columns:
        ax.plot(x, table[model].to_numpy(dtype=float), marker="o", markersize=3.5, color=colors[model], label=model)
    ax.set_xticks(x, [str(i) for i in table.index])
    ax.set_ylabel(ylabel)
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.legend(loc="best", ncols=2)
    return to_data_uri(fig)


# ---- gender ----------------------------------------------------------------------


@_styled
def roc_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], colors: Mapping[str, str]) -> str:
    """ROC curves of every gender model on one plot; ``curves[model] = (fpr, tpr, auc)``."""
    fig = new_figure(5.0, 4.4)
    ax = _styled_axes(fig, 1, 1)[0, 0]
    ax.plot([0, 1], [0, 1], color="#888", linewidth=0.8, linestyle=":", label="chance")
    for model, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, color=colors[model], linewidth=1.5, label=f"{model} (AUC {auc:.3f})")
    ax.set_xlabel("false positive rate (male called female)")
    ax.set_ylabel("true positive rate (female found)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.legend(loc="lower right")
    return to_data_uri(fig)


# ---- data size -------------------------------------------------------------------


@_styled
def data_size_figure(
    panels: Sequence[tuple[str, pd.DataFrame]], colors: Mapping[str, str], xlabel: str
) -> str:
    """Metric against training-set size, one panel per metric.

    Each panel is ``(title, frame)`` with columns ``model, x, value, low, high``; the
    interval is drawn as a band.
    """
    nrows, ncols = _grid(len(panels), 4)
    fig = new_figure(3.2 * ncols, 2.7 * nrows + 0.3)
    axes = _styled_axes(fig, nrows, ncols)
    for ax, (title, frame) in zip(axes.flat, panels):
        for model, g in frame.groupby("model", sort=False):
            g = g.sort_values("x")
            ax.plot(g["x"], g["value"], marker="o", markersize=3.5, color=colors[model], label=model)
            if g["low"].notna().any():
                ax.fill_between(g["x"], g["low"], g["high"], color=colors[model], alpha=0.15, linewidth=0)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    seen: dict[str, Any] = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    order = [m for m in colors if m in seen] + [m for m in seen if m not in colors]
    fig.legend([seen[m] for m in order], order, loc="outside upper center", ncols=min(len(order), 6))
    return to_data_uri(fig)


# ---- cost ------------------------------------------------------------------------


@_styled
def cost_figure(seconds: pd.DataFrame) -> str:
    """Stacked horizontal bars: seconds per stage (columns) for each model (index)."""
    fig = new_figure(7.5, 0.42 * len(seconds) + 1.2)
    ax = _styled_axes(fig, 1, 1)[0, 0]
    left = np.zeros(len(seconds))
    y = np.arange(len(seconds))
    stage_colors = ["#c6dbef", "#6baed6", "#2171b5", "#f16913"]
    for color, stage in zip(stage_colors, seconds.columns):
        vals = seconds[stage].fillna(0).to_numpy(dtype=float)
        ax.barh(y, vals, left=left, color=color, label=stage, height=0.6)
        left += vals
    ax.set_yticks(y, [str(i) for i in seconds.index])
    ax.invert_yaxis()
    ax.set_xlabel("seconds (median over trials)")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside upper center", ncols=len(seconds.columns))
    return to_data_uri(fig)


# ---- explore ---------------------------------------------------------------------


@_styled
def age_histogram(ages: np.ndarray, by_gender: Mapping[str, np.ndarray] | None = None) -> str:
    """Histogram of ages in 2-year bins, stacked by gender when given."""
    fig = new_figure(6.4, 2.6)
    ax = _styled_axes(fig, 1, 1)[0, 0]
    top = int(np.nanmax(ages)) if len(ages) else 1
    bins = np.arange(0, max(top, 1) + 3, 2)
    if by_gender:
        ax.hist(
            list(by_gender.values()),
            bins=bins,
            stacked=True,
            label=list(by_gender),
            color=["#1f77b4", "#d62728"][: len(by_gender)],
        )
        ax.legend()
    else:
        ax.hist(ages, bins=bins, color="#1f77b4")
    ax.set_xlabel("age (years)")
    ax.set_ylabel("images")
    return to_data_uri(fig)


@_styled
def bar_counts(counts: Mapping[str, int], title: str) -> str:
    """A small bar chart of counts per category."""
    fig = new_figure(3.2, 2.4)
    ax = _styled_axes(fig, 1, 1)[0, 0]
    labels = list(counts)
    ax.bar(range(len(labels)), [counts[k] for k in labels], color="#3182bd")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_title(title)
    return to_data_uri(fig)
