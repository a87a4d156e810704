"""Reading a finished run directory: :func:`read_run` -> :class:`Run`.

Everything the report (and anything else that only looks at results) needs from a
run directory, read once: the tables, the configuration, the environment block of
``run.json``, the models table, the per-epoch histories and the stored teaching
views. Nothing here runs code from the run directory: models are not loaded.

Text columns (model names, image ids, paths) are read verbatim, so that an image
called ``NA.jpg`` or a model called ``null`` stays text; other columns treat empty
cells as missing. Predictions are read in chunks and only those of the first trial
at the largest training fraction are kept, so a large ``predictions.csv.gz`` never
sits whole in memory.
"""

from __future__ import annotations

import functools
import json
import os
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facebench.errors import UserError
from facebench.rundir import layout
from facebench.rundir.saved import read_models_table
from facebench.rundir.views import read_views

#: "learned" is learned here (the CNNs), "learned elsewhere" a pretrained network's features.
FAMILIES = ("trivial", "hand-crafted", "learned", "learned elsewhere")
_NA = ["", "nan", "NaN", "NA", "<NA>"]
_CHUNK_ROWS = 250_000


def read_csv(
    path: Path, text_columns: tuple[str, ...] = (), keep: dict[str, float] | None = None,
    columns: tuple[str, ...] | None = None,
) -> pd.DataFrame | None:
    """A CSV of the run directory, or None when absent.

    Parameters
    ----------
    path : Path
        The file (``.gz`` is decompressed).
    text_columns : tuple of str
        Columns read verbatim as text; every other column treats ``""``, ``NA``,
        ``nan`` as missing.
    keep : dict of str to float, optional
        Read in chunks and keep only the rows whose numeric column equals the value.
    columns : tuple of str, optional
        Read only these columns (those the file has).
    """
    if not path.exists():
        return None
    header = pd.read_csv(path, nrows=0).columns
    na = {c: _NA for c in header if c not in text_columns}
    kwargs = {"dtype": {c: str for c in text_columns if c in header}, "keep_default_na": False, "na_values": na}
    if columns is not None:
        kwargs["usecols"] = [c for c in header if c in columns]
    if not keep:
        return pd.read_csv(path, **kwargs)
    parts = []
    for chunk in pd.read_csv(path, chunksize=_CHUNK_ROWS, **kwargs):
        mask = np.ones(len(chunk), bool)
        for col, value in keep.items():
            mask &= np.isclose(chunk[col].to_numpy(dtype=float), value)
        parts.append(chunk[mask])
    return pd.concat(parts, ignore_index=True) if parts else pd.read_csv(path, nrows=0, **kwargs)


def read_split(run_dir: str | os.PathLike[str]) -> pd.DataFrame | None:
    """``split.csv``: one row per trial and image with its part (``train`` / ``test``), or None."""
    return read_csv(Path(run_dir) / layout.SPLIT_FILE, ("part", "image_id", "path"))


def read_test_predictions(run_dir: str | os.PathLike[str]) -> pd.DataFrame | None:
    """The labelled test images of ``predictions.csv.gz`` (trial, image_id, path, age, gender), or None."""
    return read_csv(Path(run_dir) / layout.PREDICTIONS_FILE, ("image_id", "path"),
                    columns=("trial", "image_id", "path", "age", "gender"))


def read_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``config.toml`` as a dict; empty when absent or not valid TOML."""
    path = Path(run_dir) / layout.CONFIG_FILE
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


@dataclass
class Run:
    """Everything read from one run directory (see :func:`read_run`)."""

    dir: Path
    metrics: pd.DataFrame
    audit: dict[str, Any] = field(default_factory=dict)
    config_text: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    predictions: pd.DataFrame | None = None  # only the first trial at the largest fraction
    paired: pd.DataFrame | None = None
    timings: pd.DataFrame | None = None
    histories: dict[tuple[int, float, str], pd.DataFrame] = field(default_factory=dict)
    models_table: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=layout.MODELS_COLUMNS))
    environment: dict[str, Any] = field(default_factory=dict)
    views: Any = None  # facebench.rundir.views.Views, or None when the run stored none

    @functools.cached_property
    def models(self) -> list[str]:
        """Model names in the order of ``metrics.csv``."""
        return list(pd.unique(self.metrics["model"]))

    @functools.cached_property
    def trials(self) -> list[int]:
        return sorted(int(t) for t in self.metrics["trial"].unique())

    @functools.cached_property
    def fractions(self) -> list[float]:
        return sorted(float(f) for f in self.metrics["fraction"].unique())

    @property
    def main_fraction(self) -> float:
        """The largest training fraction: the one the tables show."""
        return self.fractions[-1]

    @functools.cached_property
    def _task_models(self) -> dict[str, set[str]]:
        pairs = self.metrics[["task", "model"]].drop_duplicates()
        return {task: set(g["model"]) for task, g in pairs.groupby("task")}

    def models_for(self, task: str) -> list[str]:
        """The models with metrics for ``task`` (``"age"`` or ``"gender"``), in run order."""
        done = self._task_models.get(task, set())
        return [m for m in self.models if m in done]

    @functools.cached_property
    def _model_rows(self) -> dict[str, dict[str, Any]]:
        return {str(r["name"]): r for r in self.models_table.to_dict("records")}

    def model_info(self, model: str) -> dict[str, Any]:
        """The models-table row of ``model`` (``params`` a dict, ``tasks`` a tuple); ``{}`` when absent."""
        row = dict(self._model_rows.get(model, {}))
        if row and not isinstance(row.get("params"), dict):
            row["params"] = {}
        return row

    def family(self, model: str) -> str | None:
        """``"trivial"``, ``"hand-crafted"`` or ``"learned"``, from the models table (None when not listed)."""
        family = self._model_rows.get(model, {}).get("family")
        return family if family in FAMILIES else None

    def kind(self, model: str) -> str | None:
        """``"classical"`` or ``"cnn"``, from the models table (None when not listed)."""
        kind = self._model_rows.get(model, {}).get("kind")
        return kind or None

    @property
    def preset(self) -> str | None:
        return self.config.get("preset") or None


def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        warnings.warn(f"{path.name} does not parse ({exc}); the report leaves it out", stacklevel=3)
        return {}
    return doc if isinstance(doc, dict) else {}


def _read_histories(run_dir: Path, models: list[str]) -> dict[tuple[int, float, str], pd.DataFrame]:
    by_safe = {layout.safe_name(m): m for m in models}
    out = {}
    folder = layout.histories_dir(run_dir)
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.csv")):
        parsed = layout.parse_unit_id(path.stem)
        if parsed is None:
            continue
        trial, fraction, safe = parsed
        out[(trial, fraction, by_safe.get(safe, safe))] = pd.read_csv(path)
    return out


def read_run(run_dir: str | os.PathLike[str]) -> Run:
    """Read a finished run directory.

    Parameters
    ----------
    run_dir : path
        A run directory of this facebench's format; only ``run.json`` and
        ``metrics.csv`` are required, every other missing file is left empty.

    Returns
    -------
    Run

    Raises
    ------
    UserError
        No such folder, not a run directory, a run written by an older facebench, or
        a ``metrics.csv`` without its columns.
    """
    run_dir = layout.check_run_dir(run_dir)
    metrics_path = run_dir / layout.METRICS_FILE
    metrics = read_csv(metrics_path, ("model", "task", "group", "metric"))
    missing = set(layout.METRIC_COLUMNS) - {"ci_low", "ci_high"} - set(metrics.columns)
    if missing:
        raise UserError(f"{metrics_path}: lacks the columns {', '.join(sorted(missing))}")
    if not len(metrics):
        raise UserError(f"{metrics_path}: has no rows; the run produced no results")
    for col in ("ci_low", "ci_high"):
        if col not in metrics.columns:
            metrics[col] = np.nan
    run = Run(dir=run_dir, metrics=metrics)
    run.audit = _read_json(run_dir / layout.AUDIT_FILE)
    run.environment = layout.read_run_info(run_dir) or {}
    config_path = run_dir / layout.CONFIG_FILE
    if config_path.exists():
        run.config_text = config_path.read_text(encoding="utf-8")
        try:
            run.config = tomllib.loads(run.config_text)
        except tomllib.TOMLDecodeError as exc:
            warnings.warn(f"config.toml does not parse ({exc}); the report shows it as text only", stacklevel=2)
    largest = float(metrics["fraction"].max())
    first = float(metrics.loc[np.isclose(metrics["fraction"], largest), "trial"].min())
    run.predictions = read_csv(
        run_dir / layout.PREDICTIONS_FILE, ("model", "image_id", "path"), keep={"fraction": largest, "trial": first}
    )
    run.paired = read_csv(run_dir / layout.PAIRED_FILE, ("task", "model_a", "model_b", "test", "effect_name", "better"))
    run.timings = read_csv(run_dir / layout.TIMINGS_FILE, ("model", "task"))
    run.models_table = read_models_table(run_dir)
    run.histories = _read_histories(run_dir, run.models)
    run.views = read_views(run_dir)
    return run


__all__ = ["FAMILIES", "Run", "read_config", "read_csv", "read_run", "read_split", "read_test_predictions"]
