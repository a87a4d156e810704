"""Suspected label errors in the run directory: ``label_issues.csv`` and ``label_metrics.csv``.

Both are optional (a run writes them only when it looks for label errors) and written
whole, atomically. Readers get ``None`` when a file is absent.

``label_issues.csv``, one row per trial x suspected face x task (:data:`ISSUE_COLUMNS`):

=============  ===========================================================================
trial          the trial whose split the suspicion was decided on
part           ``"train"`` (out-of-fold, from cross-validation on the training part) or
               ``"test"`` (judged by models fitted on the training part only)
image_id       the image's id (path relative to the dataset root)
path           the image file
task           ``"gender"`` or ``"age"``
given          the label in the dataset (gender 0 male / 1 female; age in years)
suggested      what the detector suggests instead (the other gender; the predicted age,
               rounded to whole years)
confidence     gender: the detector's calibrated probability of the suggested gender, in
               [0, 1]; age: the robust z-score |given - predicted| / (robust scale of the
               residuals at that predicted age), >= the threshold the run used
detector       a short name of the detector (features, model, rule)
agree          test faces: the run's models (";"-separated) whose prediction sides with the
               detector (gender: they predict the suggested gender; age: they are nearer the
               suggested than the given age); empty for training faces
=============  ===========================================================================

``label_paired.csv``: the run's paired tests (``paired.csv``'s columns) repeated on the
test faces the detector does not doubt, for each task.

``label_metrics.csv``, every model's test metrics with and without the suspected test
faces (:data:`LABEL_METRIC_COLUMNS`): ``subset`` is ``"all"`` or ``"unsuspected"``
(the test faces the detector does not doubt for that task), ``n`` the faces in the
subset, ``ci_low`` / ``ci_high`` a 95 % bootstrap interval.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from facebench.io import atomic_write_text

LABEL_ISSUES_FILE = "label_issues.csv"
LABEL_METRICS_FILE = "label_metrics.csv"
LABEL_PAIRED_FILE = "label_paired.csv"

ISSUE_COLUMNS = ["trial", "part", "image_id", "path", "task", "given", "suggested", "confidence", "detector", "agree"]
#: Columns a writer fills in when the frame lacks them (written before the run's models predicted).
_OPTIONAL = {"agree": ""}
LABEL_METRIC_COLUMNS = ["trial", "fraction", "model", "task", "subset", "metric", "value", "ci_low", "ci_high", "n"]

_TEXT = ("part", "image_id", "path", "task", "detector", "agree")
_NA = ["", "nan", "NaN", "NA", "<NA>"]


def _write(path: Path, frame: pd.DataFrame, columns: list[str]) -> Path:
    frame = frame.assign(**{c: v for c, v in _OPTIONAL.items() if c in columns and c not in frame.columns})
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{path.name}: the frame lacks the columns {', '.join(missing)}")
    return atomic_write_text(path, frame[columns].to_csv(index=False))


def _read(path: Path, columns: list[str], text: tuple[str, ...]) -> pd.DataFrame | None:
    if not path.exists():
        return None
    header = pd.read_csv(path, nrows=0).columns
    frame = pd.read_csv(path, dtype={c: str for c in text if c in header}, keep_default_na=False,
                        na_values={c: _NA for c in header if c not in text})
    for c, v in _OPTIONAL.items():
        if c in columns and c not in frame.columns:
            frame[c] = v
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: lacks the columns {', '.join(missing)}")
    return frame


def write_label_issues(run_dir, frame: pd.DataFrame) -> Path:
    """Write ``RUN_DIR/label_issues.csv`` atomically (columns :data:`ISSUE_COLUMNS`, in that order)."""
    return _write(Path(run_dir) / LABEL_ISSUES_FILE, frame, ISSUE_COLUMNS)


def read_label_issues(run_dir) -> pd.DataFrame | None:
    """``RUN_DIR/label_issues.csv`` as a frame (ids and paths verbatim as text), or None when absent."""
    frame = _read(Path(run_dir) / LABEL_ISSUES_FILE, ISSUE_COLUMNS, _TEXT)
    if frame is not None:
        for col in ("trial", "given", "suggested"):
            frame[col] = frame[col].astype(np.int64)
    return frame


def write_label_metrics(run_dir, frame: pd.DataFrame) -> Path:
    """Write ``RUN_DIR/label_metrics.csv`` atomically (columns :data:`LABEL_METRIC_COLUMNS`)."""
    return _write(Path(run_dir) / LABEL_METRICS_FILE, frame, LABEL_METRIC_COLUMNS)


def read_label_metrics(run_dir) -> pd.DataFrame | None:
    """``RUN_DIR/label_metrics.csv`` as a frame, or None when absent."""
    return _read(Path(run_dir) / LABEL_METRICS_FILE, LABEL_METRIC_COLUMNS, ("model", "task", "subset", "metric"))


def write_label_paired(run_dir, frame: pd.DataFrame) -> Path:
    """Write ``RUN_DIR/label_paired.csv``: the paired tests repeated on the test faces nobody doubts
    (columns of ``paired.csv``, :data:`facebench.rundir.layout.PAIRED_COLUMNS`)."""
    from . import layout

    return _write(Path(run_dir) / LABEL_PAIRED_FILE, frame, layout.PAIRED_COLUMNS)


def read_label_paired(run_dir) -> pd.DataFrame | None:
    from . import layout

    return _read(Path(run_dir) / LABEL_PAIRED_FILE, layout.PAIRED_COLUMNS,
                 ("task", "model_a", "model_b", "test", "effect_name", "better"))


__all__ = ["LABEL_PAIRED_FILE", "read_label_paired", "write_label_paired", "ISSUE_COLUMNS", "LABEL_ISSUES_FILE", "LABEL_METRICS_FILE", "LABEL_METRIC_COLUMNS", "read_label_issues",
           "read_label_metrics", "write_label_issues", "write_label_metrics"]
