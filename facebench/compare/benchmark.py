"""The benchmark runner: trials x training fractions x models, on one saved split per trial.

``run(config)`` plans every unit (trial x fraction x model), keeps the units a
previous run of the same config finished (each checked against its manifest),
runs the rest (classical units in parallel through joblib, locally or on a Dask
cluster; CNN units one after the other, as TensorFlow already uses every core),
gathers the results into the run directory and stores what each method sees on a
few test faces. It writes no report: the command line composes run, then report.
Within a trial every model sees the same split and the same training subset;
images are decoded once per size and features computed once per feature
extractor, then shared read-only (memory-mapped) by every unit.
"""

from __future__ import annotations

import logging
import tomllib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..data import run_splits
from ..data.manifest_split import check_manifest_split
from ..console import say
from ..errors import UserError
from ..io import atomic_write_text, writable_dir, write_json
from ..rundir import layout, lock, saved, units, write
from ..rundir.environment import environment
from ..rundir.read import read_split
from .planning import SPLIT_KEYS, config_diff, dumps, make_plan, prepare_table, resolve
from .running import UnitsFailed, aggregate, execute, log_to, summary_table, units_to_run

log = logging.getLogger("facebench.run")


# --------------------------------------------------------------------------- entry point


def run(config: dict, *, force: bool = False, quiet: bool = False, command: str | None = None) -> Path:
    """Run the benchmark described by ``config``; return the run directory.

    Rerunning the same config resumes: whole units are kept, damaged ones recomputed.
    ``force`` recomputes everything. ``config`` may be partial (e.g. ``{"preset":
    "quick", "data": {"path": "faces/"}}``): it is completed from its preset and validated.
    """
    config = resolve(config)
    if not config["data"]["path"]:
        raise UserError("no dataset: give --data PATH (a folder of UTKFace-named images or a CSV manifest)")
    check_manifest_split(config["data"]["path"])  # a bad split column stops before the run directory is made
    run_dir = run_dir_for(config)
    writable_dir(run_dir, "--out")
    with lock.hold(run_dir, command or ""):
        return _run_locked(config, run_dir, force=force, quiet=quiet, command=command)


def _run_locked(config, run_dir, *, force, quiet, command):
    previous = _check_resumable(run_dir, config, force)
    if force:
        units.clear(run_dir)
    units.remove_leftovers(run_dir)
    handler = log_to(run_dir / layout.LOG_FILE)
    info = {"format": layout.FORMAT, "facebench": __version__, "command": command or "facebench.compare.run",
            "started": _now(), "finished": None, "failed_units": [], **environment()}
    try:
        log.info("run %s: %s", run_dir, info["command"])
        dataset, table = prepare_table(config, quiet, audit_path=run_dir / layout.AUDIT_FILE)
        if len(table) < len(dataset.table):
            info["max_images"] = f"{len(table)} of {len(dataset.table)} used images (data.max_images)"
        info["images"] = _images_digest(table)
        previous_info = layout.read_run_info(run_dir) or {}
        _check_same_images(run_dir, info["images"], force)
        _check_split_rule(run_dir, previous_info, force)
        if len(table) < 20:
            raise UserError(f"--data {config['data']['path']}: only {len(table)} usable image(s); need at least 20")
        splits, info["split"] = run_splits(table, trials=config["trials"], seed=config["seed"],
                                           test_size=config["test_size"], user_split=dataset.user_split)
        _check_same_splits(run_dir, table, splits, force)
        atomic_write_text(run_dir / layout.CONFIG_FILE, dumps(config))
        write_json(run_dir / layout.AUDIT_FILE, dataset.audit)
        write_json(run_dir / layout.RUN_FILE, info)

        write.write_split(run_dir, table, splits)
        dataset.audit["split"] = info["split"]
        write_json(run_dir / layout.AUDIT_FILE, dataset.audit)
        write_json(run_dir / layout.RUN_FILE, info)
        issues = _label_issues(run_dir, table, splits, config, previous_info, force, quiet)
        if issues is not None:
            from .label_errors import detector_choice, detector_model, detector_name

            info["label_errors"] = {"mode": config["data"]["label_errors"], "trials": sorted(splits),
                                    "detector": detector_name(config), "model": detector_model(detector_choice(config))}
        plan = make_plan(config, table, splits, issues)
        saved.write_models_table(run_dir, plan.models_table())
        todo = units_to_run(run_dir, plan, previous, force)
        message = f"{len(plan.units)} unit(s) planned, {len(plan.units) - len(todo)} reused, {len(todo)} to run"
        log.info(message)
        _say(quiet, message)
        failures = execute(todo, table, config, run_dir, quiet=quiet)

        failed = {f["unit"] for f in failures}
        whole = [u.id for u in plan.units if u.id not in failed]
        results = aggregate(run_dir, whole, n_boot=config["bootstrap"], seed=config["seed"])
        if issues is not None:
            from .label_errors import label_metrics_for_run

            label_metrics_for_run(run_dir, issues, n_boot=config["bootstrap"], seed=config["seed"])
        _store_views(run_dir, quiet)
        info["finished"] = _now()
        info["failed_units"] = failures
        write_json(run_dir / layout.RUN_FILE, info)
        _say(quiet, summary_table(results["metrics"], results["timings"]))
        if failures:
            raise UnitsFailed(failures, run_dir)
        return run_dir
    finally:
        logging.getLogger("facebench").removeHandler(handler)
        handler.close()


def _label_issues(run_dir: Path, table: pd.DataFrame, splits: dict, config: dict, previous: dict, force: bool,
                  quiet: bool) -> pd.DataFrame | None:
    """Suspected label errors of every trial (``label_issues.csv``): reused for the trials a
    previous run of the same images already judged, computed for the others; None when off."""
    if config["data"]["label_errors"] == "off":
        return None
    from ..rundir.label_files import read_label_issues, write_label_issues
    from .label_errors import detector_features, detector_name, empty_issues, rules_from_config, suspect_labels_for_run

    before = previous.get("label_errors") or {}
    old = None if force or before.get("detector") != detector_name(config) else read_label_issues(run_dir)
    done = set(before.get("trials") or ()) if old is not None else set()
    todo = {t: s for t, s in splits.items() if t not in done}
    kept = old[old["trial"].isin(list(splits))] if old is not None else empty_issues()
    if todo:
        _say(quiet, f"looking for suspected label errors in {len(todo)} trial(s)")
        features = detector_features(table, config)
        found = suspect_labels_for_run(features, table, todo, seed=config["seed"], log=log.info,
                                       n_jobs=config["n_jobs"], **rules_from_config(config))
        kept = pd.concat([kept, found], ignore_index=True).sort_values(["trial", "task", "part"], kind="stable")
    write_label_issues(run_dir, kept)
    return kept.reset_index(drop=True)


def _store_views(run_dir: Path, quiet: bool) -> None:
    """What each method sees on a few test faces, for the report (which loads no models)."""
    from .inference import compute_run_views

    try:
        compute_run_views(run_dir)
    except UserError:
        raise
    except Exception as exc:  # the benchmark's results stand without the pictures
        log.warning("could not compute the teaching views (%s: %s); the report omits them",
                    type(exc).__name__, exc, exc_info=True)


# --------------------------------------------------------------------------- execution


# --------------------------------------------------------------------------- helpers


def run_dir_for(config) -> Path:
    """``--out``, else ``runs/<preset>-<dataset folder name>``."""
    if config["out"]:
        return Path(config["out"]).expanduser()
    name = Path(config["data"]["path"].rstrip("/")).stem or "data"
    return Path("runs") / f"{config['preset']}-{name}"


def _check_resumable(run_dir: Path, config: dict, force: bool) -> dict | None:
    """Refuse a config that would change the splits of the units already there; return the previous config.

    Everything else may change: units whose own definition is unchanged are reused and
    the others recomputed (:func:`facebench.compare.running.executor.units_to_run`).
    """
    previous = run_dir / layout.CONFIG_FILE
    has_units = layout.units_dir(run_dir).is_dir() and any(
        p for p in layout.units_dir(run_dir).iterdir() if not p.name.startswith("."))
    if force:
        return None
    if not previous.exists():
        if has_units:
            raise UserError(f"{run_dir} holds finished units but no config.toml, so they cannot be checked against "
                            "this configuration; use --force to recompute them or --out for a new run directory")
        return None
    try:
        old = tomllib.loads(previous.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{previous}: unreadable ({type(exc).__name__}); use --force to recompute the run or "
                        "--out for a new run directory") from None
    try:
        old = resolve(old)  # an older spelling of the same configuration (e.g. a relative data path)
    except UserError:
        old = None
    if has_units and old is None:
        raise UserError(f"{previous} no longer resolves in this facebench; use --force to recompute the run or "
                        "--out for a new run directory")
    if old is None:
        return None
    split = [line for line in config_diff(old, config) if line.split(":", 1)[0] in SPLIT_KEYS]
    if split and has_units:
        raise UserError(f"{run_dir} holds a run on other splits ({'; '.join(split)}); "
                        "use --out for a new run directory (or --force to replace this one)")
    if has_units and layout.read_run_info(run_dir) is None:
        raise UserError(f"{run_dir}: written by facebench 0.1 (run-directory format 1); use --force to rebuild it "
                        "in this format or --out for a new run directory")
    return old


def _images_digest(table: pd.DataFrame) -> str:
    import hashlib

    return hashlib.sha256("\n".join(table["image_id"].astype(str)).encode()).hexdigest()[:16]


def _check_split_rule(run_dir: Path, previous_info: dict, force: bool) -> None:
    """Units split before the split's rule was recorded may hold near-duplicates on both sides: not grown."""
    older = "split" not in previous_info or (previous_info["split"] or {}).get("rule") == "grouped"
    if not force and previous_info and older and layout.units_dir(run_dir).is_dir() and any(
            p for p in layout.units_dir(run_dir).iterdir() if not p.name.startswith(".")):
        raise UserError(f"{run_dir} holds a run split by an older rule (near-duplicate photos may straddle its "
                        f"training and test parts); use --out {run_dir}-grouped for a new run directory "
                        "(or --force to replace this one)")


def _check_same_splits(run_dir: Path, table: pd.DataFrame, splits: dict, force: bool) -> None:
    """A trial's faces stay on their side for the life of a run directory.

    The same data, seed and keys draw the same split, unless facebench itself now draws it
    otherwise (the near-duplicate detection found other groups, say): the finished units
    are then left as they are and the run is not grown."""
    if force or not layout.units_dir(run_dir).is_dir() or not any(
            not p.name.startswith(".") for p in layout.units_dir(run_dir).iterdir()):
        return
    before = read_split(run_dir)
    if before is None:
        return
    ids = table["image_id"].astype(str).to_numpy()
    for trial, (train, test) in splits.items():
        old = before[before["trial"] == trial] if "trial" in before else before.iloc[0:0]
        if old.empty:
            continue
        old_test = set(old.loc[old["part"] == "test", "image_id"].astype(str))
        old_train = set(old.loc[old["part"] == "train", "image_id"].astype(str))
        if old_test != set(ids[np.asarray(test)]) or old_train != set(ids[np.asarray(train)]):
            raise UserError(f"{run_dir} holds a run whose trial {trial} has other faces in its training and test "
                            f"parts than this version of facebench draws (its near-duplicate groups changed); use "
                            f"--out {run_dir}-resplit for a new run directory (or --force to replace this one)")


def _check_same_images(run_dir: Path, digest: str, force: bool) -> None:
    """The splits are drawn from the images used: a dataset that changed under a run would change them."""
    info = layout.read_run_info(run_dir) or {}
    before = info.get("images")
    if not force and before and before != digest and layout.units_dir(run_dir).is_dir():
        raise UserError(f"{run_dir} holds a run on another set of images (the data folder changed since); "
                        "use --out for a new run directory (or --force to replace this one)")


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        say(message)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
