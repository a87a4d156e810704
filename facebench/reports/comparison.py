"""Several runs side by side on one self-contained page (``facebench report RUN_A RUN_B --out FILE``).

Each run gets the report's headline table. Two runs whose first trial tested the very
same faces (the same ``image_id`` set in ``predictions.csv.gz``) are also compared pair
by pair: for every model both runs have, the difference of MAE (age) and of accuracy
(gender) on those faces, with a paired bootstrap 95% interval over the faces. Runs
with different test faces are said to be not comparable pair by pair.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facebench.errors import UserError
from facebench.io import atomic_write_text
from facebench.reports.render import dataset_name, render, timestamp
from facebench.reports.sections import predictions_at
from facebench.reports.sections.answer import answer_table
from facebench.reports.summary import frac, summarize
from facebench.reports.tables import Cell, Column, Table, text_cell
from facebench.rundir.read import Run, read_run

N_BOOT = 2000
SEED = 0


def _test_faces(run: Run) -> pd.DataFrame | None:
    return predictions_at(run, run.main_fraction)


def _per_face(preds: pd.DataFrame, model: str, task: str) -> pd.Series | None:
    """Absolute age error or correctness per test face (indexed by image_id), None when absent."""
    p = preds[preds["model"] == model]
    if task == "age":
        p = p.dropna(subset=["age_pred"])
        values = (p["age_pred"].astype(float) - p["age"].astype(float)).abs()
    else:
        p = p.dropna(subset=["gender_pred"])
        values = (p["gender_pred"].astype(int) == p["gender"].astype(int)).astype(float)
    if not len(p):
        return None
    return pd.Series(values.to_numpy(), index=p["image_id"].to_numpy())


def paired_difference(a: np.ndarray, b: np.ndarray, n_boot: int = N_BOOT, seed: int = SEED) -> tuple[float, float, float]:
    """Mean of ``b - a`` over the same faces, with its paired bootstrap 95% interval."""
    d = np.asarray(b, float) - np.asarray(a, float)
    rng = np.random.default_rng(seed)
    boot = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return float(d.mean()), float(low), float(high)


def _pair(label_a: str, a: Run, label_b: str, b: Run) -> dict[str, Any]:
    pa, pb = _test_faces(a), _test_faces(b)
    title = f"{label_b} against {label_a}"
    if pa is None or pb is None:
        return {"title": title, "message": "One of the runs has no predictions.csv.gz: not comparable pair by pair."}
    if set(pa["image_id"]) != set(pb["image_id"]):
        return {"title": title, "message": "Different test faces: not comparable pair by pair."}
    rows = []
    for task, what in (("age", "MAE (years)"), ("gender", "accuracy (points)")):
        for model in [m for m in a.models_for(task) if m in b.models_for(task)]:
            ea, eb = _per_face(pa, model, task), _per_face(pb, model, task)
            if ea is None or eb is None or set(ea.index) != set(eb.index):
                continue
            eb = eb.loc[ea.index]
            diff, low, high = paired_difference(ea.to_numpy(), eb.to_numpy())
            scale, fmt = (1.0, "{:+.2f}") if task == "age" else (100.0, "{:+.1f}")
            cell = Cell(value=diff * scale, text=fmt.format(diff * scale), low=low * scale, high=high * scale,
                        low_text=fmt.format(low * scale), high_text=fmt.format(high * scale))
            rows.append([text_cell(model), text_cell(what), Cell(value=len(ea), text=f"{len(ea):,}"), cell])
    cols = [Column("model", "Model"), Column("metric", "Metric"), Column("n", "Test faces", True),
            Column("difference", f"{label_b} minus {label_a}", True)]
    table = Table("pair", title, cols, rows, note=(
        "Same test faces in the first trial: the difference on those faces with its paired bootstrap 95% interval "
        "over faces. Age: negative means the second run makes smaller errors; gender: positive means it is right more often."
    ))
    if not rows:
        return {"title": title, "message": "Same test faces, but no model is in both runs with predictions for the same task."}
    return {"title": title, "table": table}


def write_comparison(run_dirs: list[str | os.PathLike[str]], out: str | os.PathLike[str]) -> Path:
    """Write one page that puts several runs side by side.

    Parameters
    ----------
    run_dirs : list of paths
        Two or more finished run directories.
    out : path
        The HTML file to write (its folder is created).

    Returns
    -------
    Path of the page.

    Raises
    ------
    UserError
        Fewer than two runs, or one of them not a finished run directory.
    """
    if len(run_dirs) < 2:
        raise UserError(f"a comparison needs at least two run directories, got {len(run_dirs)}")
    runs = [read_run(d) for d in run_dirs]
    labels = [f"run {chr(ord('A') + i)}" if i < 26 else f"run {i + 1}" for i in range(len(runs))]
    entries = []
    for i, (name, run) in enumerate(zip(labels, runs)):
        S = summarize(run.metrics)
        entries.append({
            "label": name,
            "dir": str(run.dir),
            "dataset": dataset_name(run.audit, run.config),
            "preset": run.preset,
            "trials": S.max_trials,
            "fractions": ", ".join(frac(f) for f in run.fractions),
            "table": answer_table(run, S, name=f"answer_{i}"),
        })
    pairs = [_pair(labels[i], runs[i], labels[j], runs[j]) for i, j in itertools.combinations(range(len(runs)), 2)]
    from facebench import __version__

    html = render("comparison.html", runs=entries, pairs=pairs, generated=timestamp(), version=__version__)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, html)
    return out
