"""The comparison report: a run directory in, one self-contained ``report.html`` out.

:func:`write_report` reads only the run directory (docs/run-directory.md), builds the
sections in the order a reader needs them, writes every table to ``RUN_DIR/tables/``
(CSV, JSON, Markdown) and renders ``templates/report.html`` with Jinja2, autoescape on.
Figures are PNG data URIs and the CSS is inline, so the file opens offline and makes
no request.

Figures over trials: with one trial a number is shown with its 95% bootstrap interval
over test images (``ci_low``/``ci_high`` of ``metrics.csv``); with several trials it is
the median over trials with the lowest and highest trial (the 2.5th and 97.5th
percentiles of the trials from 10 trials on). The report says which.

Hook for "what each method sees" (issue 5): if a module ``facebench.reports.explain``
exists and defines ``explain_section(run_dir, run)``, the report calls it and shows the
result as its own section after the worst errors. It returns ``None`` (nothing to show)
or ``{"intro": str, "figures": [{"title": str, "image": "data:image/...", "caption": str}]}``.
Every string is escaped; images must be ``data:image/`` URIs.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import hashlib
import importlib
import importlib.util
import io
import json
import os
import re
import shlex
import sys
import time
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from facebench.errors import UserError
from facebench.reports import plots
from facebench.reports.tables import (
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    METRIC_LABELS,
    MISSING,
    Cell,
    Column,
    Table,
    atomic_write_text,
    format_bytes,
    format_metric,
    format_p,
    format_seconds,
    is_missing,
    metric_cell,
    text_cell,
    write_tables,
)

from ..compare.metrics import AGE_METRICS, GENDER_METRICS
from ..data import labels
ANSWER_COLUMNS = [("age", "mae"), ("age", "rmse"), ("age", "r2"), ("gender", "accuracy"), ("gender", "f1_macro"), ("gender", "roc_auc")]
HEADLINE = {"age": "mae", "gender": "accuracy"}
RACES = [*labels.RACES.values(), "unknown"]
MIN_GROUP_N = 10  # groups with fewer test faces are shown greyed and left out of the gaps
WORST_K = 6
THUMB_PX = 64
MAX_AUDIT_ROWS = 200
TRIVIAL = ("dummy", "mean", "majority", "constant")

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


# ---- reading the run directory ------------------------------------------------------


def _read_csv(
    path: Path, text_columns: tuple[str, ...] = (), keep: dict[str, float] | None = None
) -> pd.DataFrame | None:
    """A CSV of the run directory, or None when absent.

    Text columns (model and file names) are read verbatim: an image called ``NA.jpg``
    or a model called ``null`` stays text. Other columns treat empty cells as missing.
    ``keep`` (column -> value) reads the file in chunks and keeps only matching rows,
    so that a large ``predictions.csv.gz`` never sits whole in memory.
    """
    if not path.exists():
        return None
    header = pd.read_csv(path, nrows=0).columns
    na = {c: ["", "nan", "NaN", "NA", "<NA>"] for c in header if c not in text_columns}
    kwargs = {"dtype": {c: str for c in text_columns if c in header}, "keep_default_na": False, "na_values": na}
    if not keep:
        return pd.read_csv(path, **kwargs)
    parts = []
    for chunk in pd.read_csv(path, chunksize=250_000, **kwargs):
        mask = np.ones(len(chunk), bool)
        for col, value in keep.items():
            mask &= np.isclose(chunk[col].to_numpy(dtype=float), value)
        parts.append(chunk[mask])
    return pd.concat(parts, ignore_index=True)


@dataclass
class Run:
    """Everything the report reads from a run directory."""

    dir: Path
    metrics: pd.DataFrame
    audit: dict[str, Any] = field(default_factory=dict)
    config_text: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    predictions: pd.DataFrame | None = None  # only the first trial at the largest fraction
    paired: pd.DataFrame | None = None
    timings: pd.DataFrame | None = None
    histories: dict[tuple[int, float, str], pd.DataFrame] = field(default_factory=dict)

    @functools.cached_property
    def models(self) -> list[str]:
        return list(pd.unique(self.metrics["model"]))

    @functools.cached_property
    def trials(self) -> list[int]:
        return sorted(int(t) for t in self.metrics["trial"].unique())

    @functools.cached_property
    def fractions(self) -> list[float]:
        return sorted(float(f) for f in self.metrics["fraction"].unique())

    @property
    def main_fraction(self) -> float:
        return self.fractions[-1]

    @functools.cached_property
    def _task_models(self) -> dict[str, set[str]]:
        pairs = self.metrics[["task", "model"]].drop_duplicates()
        return {task: set(g["model"]) for task, g in pairs.groupby("task")}

    def models_for(self, task: str) -> list[str]:
        done = self._task_models.get(task, set())
        return [m for m in self.models if m in done]


def safe_name(model: str) -> str:
    """A model name as used in unit file names (``+`` and other odd characters -> ``-``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", model)


def load_run(run_dir: str | os.PathLike[str]) -> Run:
    """Read a run directory; only ``metrics.csv`` is required."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {str(run_dir)!r} does not exist")
    metrics = _read_csv(run_dir / "metrics.csv", ("model", "task", "group", "metric"))
    if metrics is None:
        raise UserError(f"{str(run_dir)!r} has no metrics.csv: is it a finished facebench run directory?")
    missing = {"trial", "fraction", "model", "task", "group", "metric", "value"} - set(metrics.columns)
    if missing:
        raise UserError(f"{str(run_dir / 'metrics.csv')!r} lacks the columns {sorted(missing)}")
    for col in ("ci_low", "ci_high"):
        if col not in metrics.columns:
            metrics[col] = np.nan
    run = Run(dir=run_dir, metrics=metrics)
    if (run_dir / "audit.json").exists():
        run.audit = json.loads((run_dir / "audit.json").read_text(encoding="utf-8"))
    if (run_dir / "config.toml").exists():
        run.config_text = (run_dir / "config.toml").read_text(encoding="utf-8")
        try:
            run.config = tomllib.loads(run.config_text)
        except tomllib.TOMLDecodeError as exc:
            warnings.warn(f"config.toml does not parse ({exc}); the report shows it as text only", stacklevel=2)
    # the report shows predictions of one trial at the largest fraction: read only those
    main = metrics[np.isclose(metrics["fraction"], metrics["fraction"].max())]
    keep = {"fraction": float(metrics["fraction"].max()), "trial": float(main["trial"].min())}
    run.predictions = _read_csv(run_dir / "predictions.csv.gz", ("model", "image_id", "path"), keep=keep)
    run.paired = _read_csv(run_dir / "paired.csv", ("task", "model_a", "model_b", "test", "effect_name", "better"))
    run.timings = _read_csv(run_dir / "timings.csv", ("model", "task"))
    by_safe = {safe_name(m): m for m in run.models}
    hist_dir = run_dir / "histories"
    if hist_dir.is_dir():
        for path in sorted(hist_dir.glob("*.csv")):
            m = re.fullmatch(r"t(\d+)_f([0-9.eE+-]+)_(.+)", path.stem)
            if not m:
                continue
            model = by_safe.get(m.group(3), m.group(3))
            run.histories[(int(m.group(1)), float(m.group(2)), model)] = pd.read_csv(path)
    return run


# ---- figures over trials ------------------------------------------------------------


@dataclass
class Summary:
    """Median over trials with an interval, keyed by (fraction, model, task, group, metric)."""

    values: dict[tuple, tuple[float, float, float, int]]
    max_trials: int

    def get(self, fraction: float, model: str, task: str, group: str, metric: str) -> tuple[float, float, float, int]:
        return self.values.get((fraction, model, task, group, metric), (np.nan, np.nan, np.nan, 0))

    def cell(self, fraction: float, model: str, task: str, group: str, metric: str) -> Cell:
        value, low, high, n = self.get(fraction, model, task, group, metric)
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


# ---- small helpers ------------------------------------------------------------------


def _is_trivial(model: str) -> bool:
    return model.lower().startswith(TRIVIAL)


def _is_cnn(model: str) -> bool:
    return model.lower().startswith("cnn")


def _is_handcrafted(model: str) -> bool:
    name = model.lower()
    return ("hog" in name or "lbp" in name) and not _is_cnn(model)


def _direction(metric: str) -> str | None:
    if metric in LOWER_IS_BETTER:
        return "min"
    if metric in HIGHER_IS_BETTER:
        return "max"
    return None


def _label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def _frac(f: float) -> str:
    return f"{f:g}"


def _group_order(groups: list[str]) -> list[str]:
    def key(g: str) -> tuple:
        if g == "all":
            return (0, 0, "")
        family, _, name = g.partition(":")
        if family == "age_band":
            return (1, int(re.match(r"\d+", name).group()) if re.match(r"\d+", name) else 999, name)
        if family == "gender":
            return (2, 0 if name == "male" else 1, name)
        if family == "race":
            return (3, RACES.index(name) if name in RACES else 99, name)
        return (4, 0, g)

    return sorted(groups, key=key)


def _group_label(group: str) -> str:
    family, _, name = group.partition(":")
    if family == "age_band":
        return f"age {name}"
    return name or family


def thumbnail_uri(path: Any, cache: dict[str, str | None]) -> str | None:
    """A ~64 px JPEG data URI of an image file, or None when it cannot be read."""
    if not isinstance(path, str) or not path:
        return None
    if path in cache:
        return cache[path]
    from PIL import Image

    uri = None
    try:
        with Image.open(path) as img:
            img.draft("RGB", (THUMB_PX * 2, THUMB_PX * 2))
            img = img.convert("RGB")
            img.thumbnail((THUMB_PX, THUMB_PX))
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=75)
        uri = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    except (OSError, ValueError, Image.DecompressionBombError):
        uri = None  # a moved or broken file: the gallery shows a placeholder instead
    cache[path] = uri
    return uri


# ---- sections -----------------------------------------------------------------------


def _phrase(metric: str, value: float) -> str:
    """``MAE 7.49 years`` / ``accuracy 0.853``."""
    if metric == "mae":
        return f"MAE {format_metric(metric, value)} years"
    return f"{_label(metric).lower() if metric == 'accuracy' else _label(metric)} {format_metric(metric, value)}"


def _answer(run: Run, S: Summary) -> dict[str, Any]:
    f = run.main_fraction
    cols = [Column("model", "Model")]
    for task, metric in ANSWER_COLUMNS:
        cols.append(Column(f"{task}_{metric}", _label(metric), numeric=True, group=task.capitalize()))
    age_models, gender_models = set(run.models_for("age")), set(run.models_for("gender"))
    rows = []
    for model in run.models:
        row = [text_cell(model)]
        for task, metric in ANSWER_COLUMNS:
            done = model in (age_models if task == "age" else gender_models)
            row.append(S.cell(f, model, task, "all", metric) if done else Cell())
        rows.append(row)
    table = Table(
        "answer",
        f"Every model side by side (training fraction {_frac(f)}; ★ best in its column)",
        cols,
        rows,
        note=S.interval_note + " A dash: the model does not do that task.",
    )
    for task, metric in ANSWER_COLUMNS:
        table.mark_best(f"{task}_{metric}", _direction(metric))

    verdict = []
    for task in ("age", "gender"):
        metric = HEADLINE[task]
        models = run.models_for(task)
        if not models:
            continue
        direction = _direction(metric)
        score = {m: S.get(f, m, task, "all", metric)[0] for m in models}
        score = {m: v for m, v in score.items() if not is_missing(v)}
        if not score:
            continue
        pick = min if direction == "min" else max
        best = pick(score, key=score.get)
        what = "age" if task == "age" else "gender"
        text = f"Best for {what}: {best}, {_phrase(metric, score[best])}"
        trivial = [m for m in score if _is_trivial(m)]
        if trivial and best not in trivial:
            text += f" (the trivial baseline {trivial[0]}: {_phrase(metric, score[trivial[0]])})"
        verdict.append(text + ".")
        cnn = {m: v for m, v in score.items() if _is_cnn(m)}
        hand = {m: v for m, v in score.items() if _is_handcrafted(m)}
        if cnn and hand:
            c, h = pick(cnn, key=cnn.get), pick(hand, key=hand.get)
            diff = cnn[c] - hand[h]
            if task == "age":
                how = f"{abs(diff):.2f} years {'lower' if diff < 0 else 'higher'} MAE"
                wins = diff < 0
            else:
                how = f"{abs(diff) * 100:.1f} percentage points {'higher' if diff > 0 else 'lower'} accuracy"
                wins = diff > 0
            verdict.append(
                f"{what.capitalize()}: the learned features ({c}) {'beat' if wins else 'do not beat'} "
                f"the best hand-crafted ones ({h}): {how}."
            )
    return {"table": table, "verdict": verdict}


def _age(run: Run, S: Summary, colors: dict[str, str]) -> dict[str, Any]:
    models = run.models_for("age")
    out: dict[str, Any] = {"models": models}
    if not models:
        out["message"] = "No model in this run predicts age."
        return out
    f = run.main_fraction
    cols = [Column("model", "Model")] + [Column(m, _label(m), numeric=True) for m in AGE_METRICS] + [Column("n", "Test faces", numeric=True)]
    rows = [[text_cell(m)] + [S.cell(f, m, "age", "all", x) for x in AGE_METRICS + ["n"]] for m in models]
    table = Table("age", f"Age: error of every model (training fraction {_frac(f)})", cols, rows, note=S.interval_note)
    for metric in AGE_METRICS:
        table.mark_best(metric, _direction(metric))
    out["table"] = table

    preds = _predictions_at(run, f)
    if preds is not None:
        per_model = {m: g.dropna(subset=["age_pred"]) for m, g in preds.groupby("model", sort=False) if m in models}
        per_model = {m: per_model[m] for m in models if m in per_model and len(per_model[m])}
        if per_model:
            out["scatter"] = plots.predicted_vs_true(per_model, colors)
            out["scatter_note"] = f"Trial {int(preds['trial'].iloc[0])}, {len(next(iter(per_model.values())))} test faces; dotted line: perfect prediction."
    else:
        out["scatter_message"] = "predictions.csv.gz is missing, so there is no predicted-against-true plot."

    bands = _group_order([g for g in run.metrics.loc[run.metrics["task"] == "age", "group"].unique() if g.startswith("age_band:")])
    if bands:
        band_table = pd.DataFrame(
            {m: [S.get(f, m, "age", b, "mae")[0] for b in bands] for m in models},
            index=[b.partition(":")[2] for b in bands],
        )
        out["bands"] = plots.metric_by_group(band_table, colors, "MAE (years)", "true age band")
        out["bands_note"] = "MAE per true age band" + (", median over trials" if S.max_trials > 1 else "") + "; the table is under “Who is it wrong for?”."
    return out


def _confusion(run: Run, model: str, f: float) -> dict[str, Any] | None:
    m = run.metrics
    sel = m[(m["model"] == model) & (m["task"] == "gender") & (m["group"] == "all") & (m["fraction"] == f)]
    counts = sel.groupby("metric")["value"].sum()
    if not {"tn", "fp", "fn", "tp"} <= set(counts.index):
        return None
    grid = [[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]]
    rows = []
    for label, (a, b) in zip(("male", "female"), grid):
        total = a + b
        cells = []
        for j, c in enumerate((a, b)):
            share = c / total if total else 0.0
            dark = share > 0.55
            cells.append(
                {
                    "count": f"{int(c):,}",
                    "share": f"{share:.0%}" if total else MISSING,
                    "correct": (label == "male") == (j == 0),
                    "style": f"background: rgba(49, 130, 189, {0.08 + 0.85 * share:.2f}); color: {'#fff' if dark else '#111'}",
                }
            )
        rows.append({"label": label, "cells": cells})
    return {"model": model, "rows": rows, "trials": int(sel["trial"].nunique())}


def _gender(run: Run, S: Summary, colors: dict[str, str]) -> dict[str, Any]:
    models = run.models_for("gender")
    out: dict[str, Any] = {"models": models}
    if not models:
        out["message"] = "No model in this run predicts gender."
        return out
    f = run.main_fraction
    cols = [Column("model", "Model")]
    for metric in GENDER_METRICS:
        kind, _, cls = metric.partition("_")
        if cls in ("male", "female", "macro"):
            cols.append(Column(metric, "F1" if kind == "f1" else kind.capitalize(), True, group=cls.capitalize()))
        else:
            cols.append(Column(metric, _label(metric), True))
    rows = [[text_cell(m)] + [S.cell(f, m, "gender", "all", x) for x in GENDER_METRICS] for m in models]
    table = Table("gender", f"Gender: every model (female is the positive class; training fraction {_frac(f)})", cols, rows, note=S.interval_note)
    for metric in GENDER_METRICS:
        table.mark_best(metric, _direction(metric))
    out["table"] = table
    out["confusions"] = [c for c in (_confusion(run, m, f) for m in models) if c]
    n_trials = max((c["trials"] for c in out["confusions"]), default=1)
    out["confusion_note"] = (
        "Counts of test faces" + (f", added up over {n_trials} trials" if n_trials > 1 else "") + "; the percentage is the share of its row (of the true class)."
    )

    preds = _predictions_at(run, f)
    if preds is None:
        out["roc_message"] = "predictions.csv.gz is missing, so there are no ROC curves."
        return out
    from sklearn.metrics import roc_auc_score, roc_curve

    curves = {}
    for model in models:
        p = preds[preds["model"] == model].dropna(subset=["p_female"])
        if len(p) and p["gender"].nunique() == 2:
            fpr, tpr, _ = roc_curve(p["gender"].astype(int), p["p_female"].astype(float))
            curves[model] = (fpr, tpr, roc_auc_score(p["gender"].astype(int), p["p_female"].astype(float)))
    if curves:
        out["roc"] = plots.roc_curves(curves, colors)
        out["roc_note"] = f"Trial {int(preds['trial'].iloc[0])} at training fraction {_frac(f)}, from P(female) of every test face."
    else:
        out["roc_message"] = "No model has scores for both genders, so there are no ROC curves."
    return out


def _predictions_at(run: Run, fraction: float) -> pd.DataFrame | None:
    """Predictions of the first trial at a fraction (None without predictions)."""
    p = run.predictions
    if p is None or not len(p):
        return None
    p = p[p["fraction"] == fraction]
    if not len(p):
        return None
    return p[p["trial"] == p["trial"].min()]


def _data_size(run: Run, S: Summary, colors: dict[str, str]) -> dict[str, Any]:
    fractions = run.fractions
    out: dict[str, Any] = {}
    if len(fractions) < 2:
        out["message"] = (
            f"This run trained on one training fraction only ({_frac(fractions[0])}); "
            "the data-size curve needs several fractions (set run.fractions in the config, or use the full preset)."
        )
        return out
    n_train: dict[float, float] = {}
    if run.timings is not None and "n_train" in run.timings.columns:
        n_train = run.timings.groupby("fraction")["n_train"].median().to_dict()
    use_n = len(n_train) == len(fractions) and all(f in n_train for f in fractions)
    panels = []
    specs = [("age", "mae"), ("age", "r2"), ("gender", "accuracy"), ("gender", "roc_auc")]
    rows = []
    for task, metric in specs:
        models = run.models_for(task)
        recs = []
        for model in models:
            for fr in fractions:
                value, low, high, _ = S.get(fr, model, task, "all", metric)
                if not is_missing(value):
                    recs.append({"model": model, "x": n_train[fr] if use_n else fr, "value": value, "low": low, "high": high})
        if recs:
            panels.append((f"{task}: {_label(metric)}", pd.DataFrame(recs)))
    for model in run.models:
        for fr in fractions:
            row = [text_cell(model), Cell(value=fr, text=_frac(fr)), Cell(value=n_train.get(fr), text=format_metric("n", n_train.get(fr)))]
            for task, metric in specs:
                row.append(S.cell(fr, model, task, "all", metric) if model in run.models_for(task) else Cell())
            rows.append(row)
    cols = [Column("model", "Model"), Column("fraction", "Fraction", True), Column("n_train", "Training faces", True)]
    cols += [Column(f"{t}_{m}", f"{t.capitalize()} {_label(m)}", True) for t, m in specs]
    out["table"] = Table("data_size", "Each model at every training fraction", cols, rows, note=S.interval_note)
    if panels:
        out["figure"] = plots.data_size_figure(panels, colors, "training faces" if use_n else "fraction of the training set")
    out["note"] = S.interval_note.replace("brackets", "bands")
    return out


def _training(run: Run) -> dict[str, Any]:
    out: dict[str, Any] = {"figures": []}
    if not run.histories:
        cnns = [m for m in run.models if _is_cnn(m)]
        out["message"] = (
            "This run has no CNN, so there are no training curves."
            if not cnns
            else f"No training history was saved for {', '.join(cnns)} (histories/ is empty)."
        )
        return out
    models = list(dict.fromkeys(model for (_, _, model) in run.histories))
    for model in models:
        units = {k: h for k, h in run.histories.items() if k[2] == model}
        fractions = sorted({k[1] for k in units})
        f = run.main_fraction if run.main_fraction in fractions else fractions[-1]
        chosen = {f"trial {t}": h for (t, fr, _), h in sorted(units.items()) if fr == f}
        notes = []
        for name, h in chosen.items():
            if "val_loss" in h.columns and len(h):
                best = int(h["val_loss"].to_numpy().argmin())
                epoch = h["epoch"].iloc[best] if "epoch" in h.columns else best
                epoch = int(epoch) + (1 if "epoch" in h.columns and h["epoch"].min() == 0 else 0)
                notes.append(f"{name}: lowest validation loss at epoch {epoch} of {len(h)}")
        out["figures"].append(
            {"model": model, "fraction": _frac(f), "uri": plots.training_curves_figure(chosen, model), "note": "; ".join(notes)}
        )
    return out


def _paired(run: Run, S: Summary) -> dict[str, Any]:
    out: dict[str, Any] = {"tasks": []}
    p = run.paired
    if p is None or not len(p):
        out["message"] = "paired.csv is missing or empty: this run has no paired tests."
        return out
    f = run.main_fraction
    p = p[p["fraction"] == f]
    # Significance is judged on Holm-adjusted p-values (over every pair of one task in one
    # trial) where the run has them; runs written before the column existed use the raw ones.
    adjusted = "p_holm" in p.columns and p["p_holm"].notna().any()
    p_sig = "p_holm" if adjusted else "p_value"
    for task in ("age", "gender"):
        pt = p[p["task"] == task]
        if not len(pt):
            continue
        models = [m for m in run.models_for(task) if m in set(pt["model_a"]) | set(pt["model_b"])]
        pairs: dict[tuple[str, str], dict[str, Any]] = {}
        for (a, b), g in pt.groupby(["model_a", "model_b"], sort=False):
            eff = g["effect"].astype(float)
            if len(g) == 1 and {"effect_ci_low", "effect_ci_high"} <= set(g.columns):
                lo, hi = g["effect_ci_low"].iloc[0], g["effect_ci_high"].iloc[0]
            elif len(g) > 1:
                lo, hi = eff.min(), eff.max()
            else:
                lo = hi = np.nan
            pairs[(a, b)] = {
                "effect": float(eff.median()),
                "low": lo,
                "high": hi,
                "p": float(g["p_value"].median()),
                "p_adj": float(g[p_sig].median()) if adjusted else None,
                "significant": int((g[p_sig] < 0.05).sum()),
                "trials": len(g),
                "test": str(g["test"].iloc[0]) if "test" in g.columns else "",
            }
        unit = "years" if task == "age" else "accuracy"

        def fmt_effect(e: float) -> str:
            return MISSING if is_missing(e) else (f"{e:+.2f}" if task == "age" else f"{e * 100:+.1f} pt")

        cols = [Column("model", "Model A \u2193 vs B \u2192")] + [Column(m, m, True, detail_key="p_value") for m in models]
        rows = []
        for a in models:
            row = [text_cell(a)]
            for b in models:
                if a == b:
                    row.append(Cell(muted=True))
                    continue
                sign, info = (1, pairs.get((a, b))) if (a, b) in pairs else (-1, pairs.get((b, a)))
                if info is None:
                    row.append(Cell())
                    continue
                e = sign * info["effect"] + 0.0
                e = 0.0 if abs(e) < 1e-12 else e
                better = (e < 0) if task == "age" else (e > 0)
                detail = _p_phrase(info["p"]) + (f"; Holm {format_p(info['p_adj'])}" if info["p_adj"] is not None else "")
                cell = Cell(value=e, text=fmt_effect(e), detail=detail, detail_value=info["p"])
                cell.best = better and info["significant"] * 2 > info["trials"]
                cell.muted = info["significant"] * 2 <= info["trials"]
                row.append(cell)
            rows.append(row)
        what = "MAE of A minus MAE of B, in years (negative: A makes smaller errors)" if task == "age" else "accuracy of A minus accuracy of B, in percentage points (positive: A is right more often)"
        trials = max(i["trials"] for i in pairs.values())
        matrix = Table(
            f"paired_{task}",
            f"{task.capitalize()}: paired tests, every pair of models on the same test faces",
            cols,
            rows,
            note=f"Each cell: {what}"
            + (f", median over {trials} trials, and the median p-value" if trials > 1 else ", and its p-value")
            + (" (Wilcoxon signed-rank test on absolute errors)." if task == "age" else " (McNemar's exact test).")
            + (
                f"; under it, Holm's adjusted p-value, which accounts for all {len(pairs)} pairs compared."
                " Highlighted: A is better and the adjusted p < 0.05"
                if adjusted
                else ". Highlighted: A is better and p < 0.05"
            )
            + (" in most trials." if trials > 1 else "."),
        )
        # sentences: the best model against every other one
        metric = HEADLINE[task]
        score = {m: S.get(f, m, task, "all", metric)[0] for m in models}
        score = {m: v for m, v in score.items() if not is_missing(v)}
        sentences = []
        if score:
            best = (min if task == "age" else max)(score, key=score.get)
            for other in models:
                if other == best:
                    continue
                sign, info = (1, pairs.get((best, other))) if (best, other) in pairs else (-1, pairs.get((other, best)))
                if info is None:
                    continue
                sentences.append(_sentence(task, best, other, sign * info["effect"], info, S.get(f, best, task, "all", metric)[0], S.get(f, other, task, "all", metric)[0]))
        n_pairs = len(pairs)
        caution = (
            f"{n_pairs} pairs were tested; even if no model differed, about {n_pairs * 0.05:.1f} of them would reach p < 0.05 by chance. "
            + (
                "Holm's adjustment corrects for that, so the highlighted cells and the verdicts below use the adjusted p-values; "
                "a raw p < 0.05 that does not survive it is weak evidence."
                if adjusted
                else "Trust large differences that hold in every trial more than a single small p-value."
            )
            if n_pairs >= 3
            else ""
        )
        out["tasks"].append({"task": task, "table": matrix, "sentences": sentences, "caution": caution, "unit": unit})
    if not out["tasks"]:
        out["message"] = f"paired.csv has no tests at training fraction {_frac(f)}."
    return out


def _p_phrase(p: float) -> str:
    """``p = 0.012`` or ``p < 0.001``."""
    text = format_p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _sentence(task: str, a: str, b: str, effect: float, info: dict[str, Any], va: float, vb: float) -> str:
    trials, sig = info["trials"], info["significant"]
    if task == "age":
        size = f"{abs(effect):.2f} years"
        head = (
            f"{a} misses the true age by {size} less than {b} on average (MAE {format_metric('mae', va)} against {format_metric('mae', vb)})."
            if effect < 0
            else f"{a} and {b} have about the same age error (difference {effect:+.2f} years)."
        )
        test = "Wilcoxon signed-rank test on the two models' errors for the same faces"
    else:
        size = f"{abs(effect) * 100:.1f} percentage points"
        head = (
            f"{a} gets the gender right {size} more often than {b} (accuracy {format_metric('accuracy', va)} against {format_metric('accuracy', vb)})."
            if effect > 0
            else f"{a} and {b} are about equally accurate (difference {effect * 100:+.1f} percentage points)."
        )
        test = "McNemar's exact test on the faces where only one of the two is right"
    if info.get("p_adj") is not None:
        p_text = f"{_p_phrase(info['p'])} ({_p_phrase(info['p_adj'])} after Holm's correction for all the pairs compared)"
        if trials > 1:
            verdict = (
                f"The {test} gives an adjusted p < 0.05 in {sig} of {trials} trials (median {p_text}): "
                + ("the difference is real, not luck of the test set." if sig == trials else "the evidence is mixed." if sig else "the test set cannot tell them apart.")
            )
        elif sig:
            verdict = f"The {test} gives {p_text}: a difference this large would seldom appear by chance if the two models were equally good, so it is probably real."
        elif info["p"] < 0.05:
            verdict = f"The {test} gives {p_text}: small on its own but not once every comparison is counted, so this is weak evidence of a difference."
        else:
            verdict = f"The {test} gives {p_text}: a difference like this could easily be chance, so these test faces cannot tell the two apart."
    elif trials > 1:
        verdict = (
            f"The {test} gives p < 0.05 in {sig} of {trials} trials (median {_p_phrase(info['p'])}): "
            + ("the difference is real, not luck of the test set." if sig == trials else "the evidence is mixed." if sig else "the test set cannot tell them apart.")
        )
    elif info["p"] < 0.05:
        verdict = f"The {test} gives {_p_phrase(info['p'])}: a difference this large would seldom appear by chance if the two models were equally good, so it is probably real."
    else:
        verdict = f"The {test} gives {_p_phrase(info['p'])}: a difference like this could easily be chance, so these test faces cannot tell the two apart."
    return f"{head} {verdict}"


def _subgroups(run: Run, S: Summary) -> dict[str, Any]:
    f = run.main_fraction
    tables, gap_rows = [], []
    for task in ("age", "gender"):
        models = run.models_for(task)
        if not models:
            continue
        metric = HEADLINE[task]
        m = run.metrics
        groups = _group_order([g for g in m.loc[m["task"] == task, "group"].unique() if g != "all"])
        if not groups:
            continue
        cols = [Column("group", "Group"), Column("n", "Test faces", True)] + [Column(x, x, True) for x in models]
        rows = []
        for g in groups:
            n = np.nanmax([S.get(f, x, task, g, "n")[0] for x in models] + [0])
            small = n < MIN_GROUP_N
            row = [Cell(value=g, text=_group_label(g), muted=small), Cell(value=n, text=format_metric("n", n), muted=small)]
            for x in models:
                cell = S.cell(f, x, task, g, metric)
                cell.muted = small
                row.append(cell)
            rows.append(row)
        tables.append(
            Table(
                f"subgroups_{task}",
                f"{task.capitalize()}: {_label(metric)} by group",
                cols,
                rows,
                note=S.interval_note + f" Greyed: fewer than {MIN_GROUP_N} test faces, too few to judge (left out of the gaps).",
            )
        )
        for x in models:
            for family, label in (("age_band", "age band"), ("gender", "gender"), ("race", "ethnicity")):
                vals = {}
                for g in groups:
                    if g.partition(":")[0] != family:
                        continue
                    value, _, _, _ = S.get(f, x, task, g, metric)
                    n = S.get(f, x, task, g, "n")[0]
                    if not is_missing(value) and not is_missing(n) and n >= MIN_GROUP_N:
                        vals[g] = value
                if len(vals) < 2:
                    continue
                lo_better = task == "age"
                best = (min if lo_better else max)(vals, key=vals.get)
                worst = (max if lo_better else min)(vals, key=vals.get)
                gap = abs(vals[worst] - vals[best])
                gap_rows.append(
                    [
                        text_cell(x),
                        text_cell(task),
                        text_cell(label),
                        Cell(value=best, text=f"{_group_label(best)}: {format_metric(metric, vals[best])}"),
                        Cell(value=worst, text=f"{_group_label(worst)}: {format_metric(metric, vals[worst])}"),
                        Cell(value=gap, text=format_metric(metric, gap)),
                    ]
                )
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


def _cost(run: Run) -> dict[str, Any]:
    t = run.timings
    if t is None or not len(t):
        return {"message": "timings.csv is missing, so the cost of each model is unknown."}
    f = run.main_fraction
    t = t[t["fraction"] == f] if (t["fraction"] == f).any() else t
    stages = [c for c in ("decode_s", "features_s", "fit_s", "predict_s") if c in t.columns]
    numeric = [c for c in ["n_train", "n_test", *stages, "peak_memory_mb", "model_bytes"] if c in t.columns]
    med = t.groupby("model", sort=False)[numeric].median()
    order = [m for m in run.models if m in med.index] + [m for m in med.index if m not in run.models]
    med = med.loc[order]
    med["total_s"] = med[stages].sum(axis=1, min_count=1)
    labels = {"decode_s": "Decode", "features_s": "Features", "fit_s": "Fit", "predict_s": "Predict"}
    cols = [Column("model", "Model")]
    cols += [Column(c, {"n_train": "Train", "n_test": "Test"}[c], True, group="Faces") for c in ("n_train", "n_test") if c in med.columns]
    cols += [Column(c, labels[c], True, group="Seconds") for c in stages] + [Column("total_s", "Total", True, group="Seconds")]
    if "predict_s" in med.columns and "n_test" in med.columns:
        med["predict_ms_per_face"] = 1000 * med["predict_s"] / med["n_test"].replace(0, np.nan)
        cols.append(Column("predict_ms_per_face", "Predict ms / face", True))
    if "peak_memory_mb" in med.columns:
        cols.append(Column("peak_memory_mb", "Peak memory (MB)", True))
    if "model_bytes" in med.columns:
        cols.append(Column("model_bytes", "Model size", True))
    rows = []
    for model, r in med.iterrows():
        row = [text_cell(model)]
        for c in cols[1:]:
            v = r[c.key]
            if c.key in ("n_train", "n_test"):
                row.append(Cell(value=v, text=format_metric("n", v)))
            elif c.key == "model_bytes":
                row.append(Cell(value=v, text=format_bytes(v)))
            elif c.key == "peak_memory_mb":
                row.append(Cell(value=v, text=MISSING if is_missing(v) else f"{v:,.0f}"))
            elif c.key == "predict_ms_per_face":
                row.append(Cell(value=v, text=MISSING if is_missing(v) else f"{v:.3g}"))
            else:
                row.append(Cell(value=v, text=format_seconds(v)))
        rows.append(row)
    n_trials = int(t["trial"].nunique()) if "trial" in t.columns else 1
    table = Table(
        "cost",
        f"What each model costs (training fraction {_frac(f)})",
        cols,
        rows,
        note=(f"Median over {n_trials} trials. " if n_trials > 1 else "")
        + "Decoding is shared by the models of a trial where the run caches images; ★ cheapest (trivial baselines left out).",
    )
    real = [i for i, model in enumerate(med.index) if not _is_trivial(str(model))]
    for key in ("total_s", "predict_ms_per_face", "peak_memory_mb", "model_bytes"):
        if any(c.key == key for c in cols):
            table.mark_best(key, "min", rows=real)
    figure = plots.cost_figure(med[stages].rename(columns=labels)) if stages else None
    return {"table": table, "figure": figure}


def _worst(run: Run) -> dict[str, Any]:
    preds = _predictions_at(run, run.main_fraction)
    if preds is None:
        return {"message": "predictions.csv.gz is missing, so there is no gallery of errors.", "models": []}
    cache: dict[str, str | None] = {}
    out_models = []
    for model in run.models:
        p = preds[preds["model"] == model]
        if not len(p):
            continue
        entry: dict[str, Any] = {"model": model, "age": [], "gender": []}
        pa = p.dropna(subset=["age_pred"])
        if len(pa):
            err = (pa["age_pred"] - pa["age"]).abs()
            for i in err.sort_values(ascending=False, kind="stable").index[:WORST_K]:
                r = pa.loc[i]
                entry["age"].append(
                    {
                        "thumb": thumbnail_uri(r["path"], cache),
                        "name": r["image_id"],
                        "line1": f"true {int(r['age'])}, predicted {r['age_pred']:.1f}",
                        "line2": f"off by {err[i]:.1f} years",
                    }
                )
        pg = p.dropna(subset=["p_female", "gender_pred"])
        wrong = pg[pg["gender_pred"].astype(int) != pg["gender"].astype(int)]
        if len(wrong):
            conf = (wrong["p_female"].astype(float) - 0.5).abs() + 0.5
            for i in conf.sort_values(ascending=False, kind="stable").index[:WORST_K]:
                r = wrong.loc[i]
                entry["gender"].append(
                    {
                        "thumb": thumbnail_uri(r["path"], cache),
                        "name": r["image_id"],
                        "line1": f"true {'female' if int(r['gender']) else 'male'}, called {'female' if int(r['gender_pred']) else 'male'}",
                        "line2": f"P(female) = {float(r['p_female']):.2f}",
                    }
                )
        if entry["age"] or entry["gender"]:
            out_models.append(entry)
    missing = sum(1 for v in cache.values() if v is None)
    return {
        "models": out_models,
        "note": f"Trial {int(preds['trial'].iloc[0])} at training fraction {_frac(run.main_fraction)}: the {WORST_K} largest age errors "
        f"and the {WORST_K} most confident wrong gender calls per model.",
        "missing": missing,
    }


def audit_section(a: dict[str, Any]) -> dict[str, Any]:
    """The data-audit section (shared by the report and the explore page) from an audit dict."""
    if not a:
        return {"message": "audit.json is missing: this run directory does not say what was found and skipped."}
    skipped = list(a.get("skipped") or [])
    reasons = pd.Series([str(s.get("reason", "")) for s in skipped], dtype=object).value_counts()
    out: dict[str, Any] = {
        "counts": [
            ("found", a.get("found", MISSING)),
            ("used", a.get("used", MISSING)),
            ("skipped", len(skipped)),
            ("duplicate groups", len(a.get("duplicates") or [])),
        ],
        "source": a.get("source"),
        "root": a.get("root"),
        "synthetic": bool(a.get("synthetic")),
    }
    not_used = []
    for entry in a.get("not_used") or []:
        if isinstance(entry, dict):
            not_used.append([text_cell(str(entry.get("file", entry.get("path", "")))), text_cell(str(entry.get("reason", "")))])
        else:
            not_used.append([text_cell(str(entry)), text_cell("")])
    out["not_used"] = Table(
        "audit_not_used", "Not scanned", [Column("file", "Entry"), Column("reason", "Why")], not_used, wrap=True
    )
    out["reasons"] = Table(
        "audit_reasons",
        "Why files were skipped",
        [Column("reason", "Reason"), Column("files", "Files", True)],
        [[text_cell(r), Cell(value=int(n), text=f"{int(n):,}")] for r, n in reasons.items()],
        wrap=True,
    )
    out["skipped"] = Table(
        "audit_skipped",
        "Skipped files",
        [Column("file", "File"), Column("reason", "Reason")],
        [[text_cell(str(s.get("file", ""))), text_cell(str(s.get("reason", "")))] for s in skipped],
    )
    out["skipped_shown"] = MAX_AUDIT_ROWS
    dups = list(a.get("duplicates") or [])
    out["duplicates"] = Table(
        "audit_duplicates",
        "Exact duplicates (same pixels under different names)",
        [Column("files", "Files"), Column("action", "Action")],
        [[text_cell(" = ".join(str(x) for x in d.get("files", []))), text_cell(str(d.get("action", "")))] for d in dups],
        wrap=True,
    )
    known = {"found", "used", "skipped", "duplicates", "not_used", "source", "root", "synthetic", "run"}
    extra = {k: v for k, v in a.items() if k not in known}
    out["extra"] = json.dumps(extra, indent=1, ensure_ascii=False, default=str) if extra else ""
    return out


def _reproduce(run: Run) -> dict[str, Any]:
    info = run.audit.get("run") or {}
    command = info.get("command")
    if isinstance(command, (list, tuple)):
        command = shlex.join(str(c) for c in command)

    def kv(d: Any) -> list[tuple[str, str]]:
        if isinstance(d, dict):
            return [(str(k), str(v)) for k, v in d.items()]
        return [("", str(d))] if d else []

    return {
        "command": command,
        "started": info.get("started"),
        "finished": info.get("finished"),
        "config": run.config_text,
        "versions": kv(info.get("versions")),
        "machine": kv(info.get("machine")),
        "run_dir": str(run.dir),
    }


def _seen(run: Run) -> dict[str, Any] | None:
    """Call the optional ``facebench.reports.explain.explain_section`` hook (issue 5)."""
    name = "facebench.reports.explain"
    module = sys.modules.get(name)
    if module is None:
        if importlib.util.find_spec(name) is None:
            return None
        module = importlib.import_module(name)
    hook = getattr(module, "explain_section", None)
    if hook is None:
        return None
    try:
        result = hook(run.dir, run)
    except UserError as exc:  # a piece the section needs is not in this run directory
        return {"intro": "", "figures": [], "message": f"Not shown for this run: {exc}"}
    except Exception as exc:  # a broken optional section must not cost the user the whole report
        warnings.warn(f"the 'what each method sees' section failed: {exc!r}", stacklevel=2)
        return {"intro": "", "figures": [], "message": f"This section could not be built: {exc}"}
    if not result:
        return None
    figures = [
        {"title": str(f.get("title") or ""), "image": str(f["image"]), "caption": str(f.get("caption") or "")}
        for f in result.get("figures", [])
        if str(f.get("image", "")).startswith("data:image/")
    ]
    return {"intro": str(result.get("intro") or ""), "figures": figures, "message": ""}


# ---- assembling -----------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def render(template: str, **context: Any) -> str:
    """Render one of the report templates (autoescape on)."""
    return _environment().get_template(template).render(**context)


def _header(run: Run, S: Summary) -> dict[str, Any]:
    a = run.audit
    cfg = run.config
    data_cfg = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    run_cfg = cfg.get("run") if isinstance(cfg.get("run"), dict) else {}
    root = a.get("root") or data_cfg.get("path")
    name = Path(str(root)).name if root else "unknown dataset"
    preset = cfg.get("preset") or run_cfg.get("preset")
    digest = hashlib.sha256(run.config_text.encode("utf-8")).hexdigest()[:12] if run.config_text else None
    return {
        "dataset": name,
        "found": a.get("found"),
        "used": a.get("used"),
        "skipped": len(a.get("skipped") or []) if a else None,
        "synthetic": bool(a.get("synthetic")),
        "preset": preset,
        "digest": digest,
        "trials": S.max_trials,
        "fractions": ", ".join(_frac(f) for f in run.fractions),
        "main_fraction": _frac(run.main_fraction),
        "models": run.models,
        "interval_note": S.interval_note,
    }


def build_context(run: Run) -> tuple[dict[str, Any], list[Table]]:
    """Everything the template needs, and every table (for ``tables/``)."""
    S = summarize(run.metrics)
    colors = plots.model_colors(run.models)
    ctx: dict[str, Any] = {
        "header": _header(run, S),
        "answer": _answer(run, S),
        "age": _age(run, S, colors),
        "gender": _gender(run, S, colors),
        "data_size": _data_size(run, S, colors),
        "training": _training(run),
        "paired": _paired(run, S),
        "subgroups": _subgroups(run, S),
        "cost": _cost(run),
        "worst": _worst(run),
        "seen": _seen(run),
        "audit": audit_section(run.audit),
        "reproduce": _reproduce(run),
    }
    ctx["sections"] = [(sid, title) for sid, title in SECTIONS if sid != "seen" or ctx["seen"] is not None]
    tables = [ctx["answer"]["table"]]
    for key in ("age", "gender", "data_size", "cost"):
        if ctx[key].get("table") is not None:
            tables.append(ctx[key]["table"])
    tables += [t["table"] for t in ctx["paired"]["tasks"]]
    tables += ctx["subgroups"]["tables"]
    if "gap" in ctx["subgroups"]:
        tables.append(ctx["subgroups"]["gap"])
    for key in ("reasons", "skipped", "duplicates", "not_used"):
        if key in ctx["audit"]:
            tables.append(ctx["audit"][key])
    return ctx, tables


def write_report(run_dir: str | os.PathLike[str]) -> Path:
    """Write ``RUN_DIR/report.html`` (and ``RUN_DIR/tables/``) from the run directory alone.

    Parameters
    ----------
    run_dir : path
        A run directory as described in docs/run-directory.md; only ``metrics.csv`` is
        required, every other missing piece is said so in its section.

    Returns
    -------
    Path of the report.

    Raises
    ------
    UserError
        If ``run_dir`` is not a run directory (no folder, no ``metrics.csv``).
    """
    started = time.perf_counter()
    run = load_run(run_dir)
    ctx, tables = build_context(run)
    ctx["links"] = write_tables(tables, run.dir / "tables")
    ctx["generated"] = _dt.datetime.now(_dt.timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    from facebench import __version__

    ctx["version"] = __version__
    ctx["build_seconds"] = f"{time.perf_counter() - started:.1f}"
    html = render("report.html", **ctx)
    out = run.dir / "report.html"
    atomic_write_text(out, html)
    return out


__all__ = ["Run", "SECTIONS", "audit_section", "load_run", "render", "summarize", "thumbnail_uri", "write_report"]
