"""The run directory's layout: its files, their columns, unit ids and the format check.

Everything that names a file of a run directory, or a column of one of its tables,
is defined here (``docs/run-directory.md`` describes the same, and a test checks the
two against what a real run writes). Readers and writers both use these names.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from facebench.errors import UserError

#: Version of the run-directory layout written by this facebench. Format 1 (facebench
#: 0.1) had no run.json, pickled models under models/ and no models table.
FORMAT = 2

RUN_FILE = "run.json"
CONFIG_FILE = "config.toml"
AUDIT_FILE = "audit.json"
SPLIT_FILE = "split.csv"
MODELS_FILE = "models.csv"
PREDICTIONS_FILE = "predictions.csv.gz"
METRICS_FILE = "metrics.csv"
PAIRED_FILE = "paired.csv"
TIMINGS_FILE = "timings.csv"
LOG_FILE = "run.log"
REPORT_FILE = "report.html"
LOCK_FILE = ".lock"
UNITS_DIR = "units"
HISTORIES_DIR = "histories"
VIEWS_DIR = "views"
TABLES_DIR = "tables"

#: Files of one unit (``units/<unit>/``); the manifest is written last and lists the others.
UNIT_PREDICTIONS = "predictions.csv.gz"
UNIT_METRICS = "metrics.csv"
UNIT_TIMING = "timing.json"
UNIT_HISTORY = "history.csv"
UNIT_MANIFEST = "manifest.json"
CLASSICAL_MODEL = "model.skops"
CNN_MODEL = "model.keras"

PRED_COLUMNS = ["trial", "fraction", "model", "image_id", "path", "age", "gender", "race",
                "age_pred", "p_female", "gender_pred"]
METRIC_COLUMNS = ["trial", "fraction", "model", "task", "group", "metric", "value", "ci_low", "ci_high"]
TIMING_COLUMNS = ["trial", "fraction", "model", "task", "n_train", "n_test", "decode_s", "features_s",
                  "fit_s", "predict_s", "peak_memory_mb", "model_bytes", "svm_backend"]
PAIRED_COLUMNS = ["trial", "fraction", "task", "model_a", "model_b", "test", "statistic", "p_value",
                  "p_holm", "effect", "effect_name", "effect_ci_low", "effect_ci_high", "n", "better"]
MODELS_COLUMNS = ["name", "kind", "tasks", "family", "features", "estimator", "image_size", "color",
                  "params", "summary", "base"]
SPLIT_COLUMNS = ["trial", "part", "image_id", "path", "age", "gender", "race"]


_UNIT = re.compile(r"^t(?P<trial>\d+)_f(?P<fraction>[0-9.eE+-]+)_(?P<safe>[A-Za-z0-9._-]+)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(model: str) -> str:
    """A model name as it appears in file names: every character but ``A-Za-z0-9._-`` -> ``-``."""
    return _UNSAFE.sub("-", str(model))


def fraction_text(fraction) -> str:
    """``1.0`` -> ``"1.0"``, ``0.25`` -> ``"0.25"`` (floats keep a decimal point)."""
    text = f"{fraction:g}" if isinstance(fraction, float) else str(fraction)
    if isinstance(fraction, float) and "." not in text and "e" not in text:
        text += ".0"
    return text


def unit_id(trial: int, fraction, model: str) -> str:
    """``t0_f1.0_hog-svm``: file-safe and unique per trial x fraction x model."""
    return f"t{int(trial)}_f{fraction_text(fraction)}_{safe_name(model)}"


def parse_unit_id(uid: str) -> tuple[int, float, str] | None:
    """``"t0_f1.0_hog-svm"`` -> ``(0, 1.0, "hog-svm")``; None for anything else."""
    m = _UNIT.match(str(uid))
    if m is None:
        return None
    try:
        return int(m["trial"]), float(m["fraction"]), m["safe"]
    except ValueError:
        return None


def units_dir(run_dir) -> Path:
    return Path(run_dir) / UNITS_DIR


def unit_dir(run_dir, uid: str) -> Path:
    return Path(run_dir) / UNITS_DIR / uid


def histories_dir(run_dir) -> Path:
    return Path(run_dir) / HISTORIES_DIR


def views_dir(run_dir) -> Path:
    return Path(run_dir) / VIEWS_DIR


def read_run_info(run_dir) -> dict | None:
    """The parsed ``run.json`` (format, facebench version, environment), or None when absent or unreadable."""
    try:
        info = json.loads((Path(run_dir) / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return info if isinstance(info, dict) else None


def rebuild_command(run_dir) -> str:
    return f"facebench run --config {Path(run_dir) / CONFIG_FILE} --out {run_dir} --force"


def check_run_dir(run_dir, need: tuple[str, ...] = (METRICS_FILE,)) -> Path:
    """``run_dir`` as a Path when it is a run directory of this format holding ``need``.

    Raises
    ------
    UserError
        One line: no such folder; a folder that is not a run directory; a run written
        by an older facebench (its format, and the command that rebuilds it); a run
        that has not finished (rerun the same command to resume).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a run directory (no such folder)")
    info = read_run_info(run_dir)
    if info is None:
        if (run_dir / METRICS_FILE).is_file() or (run_dir / UNITS_DIR).is_dir():
            raise UserError(f"{run_dir}: written by facebench 0.1 (run-directory format 1), which this version "
                            f"({_version()}, format {FORMAT}) does not read; rebuild it with: "
                            f"{rebuild_command(run_dir)}")
        raise UserError(f"{run_dir}: not a run directory (no {RUN_FILE})")
    fmt = info.get("format")
    if fmt != FORMAT:
        by = info.get("facebench", "an unknown version")
        raise UserError(f"{run_dir}: written by facebench {by} (run-directory format {fmt}); this version "
                        f"({_version()}) reads format {FORMAT}; rebuild it with: {rebuild_command(run_dir)}")
    missing = [name for name in need if not (run_dir / name).exists()]
    if missing:
        raise UserError(f"{run_dir}: the run has not finished (no {', '.join(missing)}); rerun the same "
                        "`facebench run` command to resume it")
    return run_dir


def _version() -> str:
    from facebench import __version__

    return __version__
