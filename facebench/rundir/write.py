"""Writing the run directory's top-level tables: ``split.csv``, the gathered results and the histories.

Every column list is :mod:`facebench.rundir.layout`'s; every file is written whole (atomically),
so a reader never sees half a table. Readers are :mod:`facebench.rundir.read`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from facebench.io import atomic_write
from facebench.rundir import layout


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """One table, atomically (gzip when the name ends in ``.gz``)."""
    compression = "gzip" if path.suffix == ".gz" else None
    atomic_write(path, lambda fh: frame.to_csv(fh, index=False, compression=compression))


def write_split(run_dir, table: pd.DataFrame, splits: dict[int, tuple[np.ndarray, np.ndarray]]) -> Path:
    """``split.csv``: one row per trial x image with its part (``train`` / ``test``)."""
    frames = []
    for trial, (train, test) in sorted(splits.items()):
        for part, idx in (("train", train), ("test", test)):
            sub = table.iloc[idx][layout.SPLIT_COLUMNS[2:]].copy()
            sub.insert(0, "part", part)
            sub.insert(0, "trial", trial)
            frames.append(sub)
    path = Path(run_dir) / layout.SPLIT_FILE
    write_csv(path, pd.concat(frames, ignore_index=True)[layout.SPLIT_COLUMNS])
    return path


def write_results(run_dir, predictions: pd.DataFrame, metrics: pd.DataFrame, timings: pd.DataFrame,
                  paired: pd.DataFrame) -> None:
    """The gathered tables: ``predictions.csv.gz``, ``metrics.csv``, ``timings.csv``, ``paired.csv``."""
    run_dir = Path(run_dir)
    write_csv(run_dir / layout.PREDICTIONS_FILE, predictions[layout.PRED_COLUMNS])
    write_csv(run_dir / layout.METRICS_FILE, metrics[layout.METRIC_COLUMNS])
    write_csv(run_dir / layout.TIMINGS_FILE, timings)
    write_csv(run_dir / layout.PAIRED_FILE, paired)


def clear_histories(run_dir) -> None:
    """Remove ``histories/`` before the finished units' curves are gathered again."""
    shutil.rmtree(layout.histories_dir(Path(run_dir)), ignore_errors=True)


def write_history(run_dir, unit_id: str, history: pd.DataFrame) -> None:
    """One CNN unit's per-epoch curves: ``histories/<unit>.csv``."""
    folder = layout.histories_dir(Path(run_dir))
    folder.mkdir(exist_ok=True)
    write_csv(folder / f"{unit_id}.csv", history)


__all__ = ["clear_histories", "write_csv", "write_history", "write_results", "write_split"]
