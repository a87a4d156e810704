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
=============  ===========================================================================

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

ISSUE_COLUMNS = ["trial", "part", "image_id", "path", "task", "given", "suggested", "confidence", "detector"]
LABEL_METRIC_COLUMNS = ["trial", "fraction", "model", "task", "subset", "metric", "value", "ci_low", "ci_high", "n"]

_TEXT = ("part", "image_id", "path", "task", "detector")
_NA = ["", "nan", "NaN", "NA", "<NA>"]


def _write(path: Path, frame: pd.DataFrame, columns: list[str]) -> Path:
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


__all__ = ["ISSUE_COLUMNS", "LABEL_ISSUES_FILE", "LABEL_METRICS_FILE", "LABEL_METRIC_COLUMNS", "read_label_issues",
           "read_label_metrics", "write_label_issues", "write_label_metrics"]
