"""Units: one trial x fraction x model each, written whole or not at all, and proved whole on resume.

A unit's files (predictions, metrics, timing, history, fitted model) are written into
a temporary folder beside ``units/<unit>/``; ``manifest.json``, written last, lists
every file with its size and SHA-256; then one rename makes the unit visible. On
resume :func:`check_unit` re-reads the manifest and the files: a unit that fails is
recomputed, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from facebench.io import json_default, make_temp_dir, share_tree

from . import layout

MANIFEST_VERSION = 1


def write_unit(run_dir, uid: str, predictions: pd.DataFrame, metrics: pd.DataFrame, timing: dict,
               history: pd.DataFrame | None = None,
               write_model: Callable[[Path], None] | None = None, definition: str | None = None) -> Path:
    """Write one unit atomically; ``write_model(folder)`` saves the fitted model into the unit's folder.

    ``definition``: a digest of everything that decided the unit's results, kept in its
    manifest so that a later run reuses the unit only while its definition is unchanged.
    """
    units = layout.units_dir(run_dir)
    tmp = make_temp_dir(units, prefix=f".{uid}.")
    try:
        if write_model is not None:
            write_model(tmp)
        predictions.to_csv(tmp / layout.UNIT_PREDICTIONS, index=False)
        metrics.to_csv(tmp / layout.UNIT_METRICS, index=False)
        if history is not None:
            history.to_csv(tmp / layout.UNIT_HISTORY, index=False)
        (tmp / layout.UNIT_TIMING).write_text(json.dumps(timing, default=json_default))
        files = {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
                 for p in sorted(tmp.iterdir()) if p.is_file()}
        for p in tmp.iterdir():
            if p.is_file():
                with open(p, "rb+") as fh:
                    os.fsync(fh.fileno())
        manifest = {"manifest": MANIFEST_VERSION, "unit": uid, "files": files,
                    **({"definition": definition} if definition else {})}
        (tmp / layout.UNIT_MANIFEST).write_text(json.dumps(manifest, indent=1))
        share_tree(tmp)
        final = layout.unit_dir(run_dir, uid)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def check_unit(run_dir, uid: str) -> str | None:
    """None when ``units/<uid>/`` is whole; else the reason, in a few words."""
    folder = layout.unit_dir(run_dir, uid)
    if not folder.is_dir():
        return "missing"
    try:
        manifest = json.loads((folder / layout.UNIT_MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("unit") != uid or not isinstance(files, dict):
            return "its manifest does not describe it"
    except FileNotFoundError:
        return "no manifest (unfinished or written by an older facebench)"
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "unreadable manifest"
    for name in (layout.UNIT_PREDICTIONS, layout.UNIT_METRICS, layout.UNIT_TIMING):
        if name not in files:
            return f"its manifest lacks {name}"
    for name, expect in files.items():
        path = folder / name
        try:
            if path.stat().st_size != expect["bytes"]:
                return f"{name} has {path.stat().st_size} bytes, not {expect['bytes']}"
            if _sha256(path) != expect["sha256"]:
                return f"{name} does not match its checksum"
        except FileNotFoundError:
            return f"{name} is missing"
        except (OSError, KeyError, TypeError):
            return f"{name} cannot be checked"
    return None


def finished_units(run_dir, uids) -> dict[str, str | None]:
    """``{uid: None (whole) | reason}`` for each unit whose folder exists."""
    return {uid: check_unit(run_dir, uid) for uid in uids if layout.unit_dir(run_dir, uid).is_dir()}


def unit_definition(run_dir, uid: str) -> str | None:
    """The definition digest a whole unit was written with (None: none recorded, or unreadable)."""
    try:
        manifest = json.loads((layout.unit_dir(run_dir, uid) / layout.UNIT_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    value = manifest.get("definition") if isinstance(manifest, dict) else None
    return value if isinstance(value, str) else None


def read_unit(run_dir, uid: str) -> dict:
    """A whole unit's tables: ``{"predictions", "metrics", "timing", "history" (or None)}``."""
    folder = layout.unit_dir(run_dir, uid)
    history = folder / layout.UNIT_HISTORY
    return {
        "predictions": pd.read_csv(folder / layout.UNIT_PREDICTIONS, dtype={"image_id": str, "path": str,
                                                                           "model": str}),
        "metrics": pd.read_csv(folder / layout.UNIT_METRICS, dtype={"model": str, "task": str, "group": str,
                                                                   "metric": str}),
        "timing": json.loads((folder / layout.UNIT_TIMING).read_text(encoding="utf-8")),
        "history": pd.read_csv(history) if history.is_file() else None,
    }


def discard_unit(run_dir, uid: str) -> None:
    shutil.rmtree(layout.unit_dir(run_dir, uid), ignore_errors=True)


def remove_leftovers(run_dir) -> int:
    """Delete temporary unit folders a killed run left behind (call with the run's lock held)."""
    units = layout.units_dir(run_dir)
    if not units.is_dir():
        return 0
    stale = [p for p in units.iterdir() if p.name.startswith(".") and p.is_dir()]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return len(stale)


def clear(run_dir) -> None:
    """Forget every result of a run directory (``--force``)."""
    run_dir = Path(run_dir)
    for name in (layout.UNITS_DIR, layout.HISTORIES_DIR, layout.VIEWS_DIR, layout.TABLES_DIR, "models"):
        shutil.rmtree(run_dir / name, ignore_errors=True)
    from .label_files import LABEL_ISSUES_FILE, LABEL_METRICS_FILE

    for name in (layout.PREDICTIONS_FILE, layout.METRICS_FILE, layout.PAIRED_FILE, layout.TIMINGS_FILE,
                 layout.MODELS_FILE, layout.REPORT_FILE, layout.RUN_FILE, LABEL_ISSUES_FILE, LABEL_METRICS_FILE):
        (run_dir / name).unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


