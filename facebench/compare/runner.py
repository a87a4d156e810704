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

import dataclasses
import logging
import os
import tomllib
from datetime import datetime, timezone
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from .. import __version__
from ..data import find_near_duplicates, load_dataset, run_splits, subsample, write_split
from ..data.manifest_split import check_manifest_split
from ..console import say
from ..errors import UserError
from ..io import atomic_write_text, writable_dir, write_json
from ..rundir import layout, lock, saved, units
from ..rundir.environment import environment
from .aggregate import aggregate, summary_table
from .config import SPLIT_KEYS, config_diff, dumps, resolve
from .plan import Plan, Unit, make_plan, model_specs
from .unit_bodies import EPOCH_LISTENERS, decoded_for_cnn, guarded, prepare_features, shareable, svm_backend_line

log = logging.getLogger("facebench.run")


class UnitsFailed(RuntimeError):
    """Some units raised; everything else was written. ``.failures``: ``[{"unit", "error"}]``."""

    def __init__(self, failures: list[dict], run_dir: Path):
        self.failures = failures
        self.run_dir = Path(run_dir)
        lines = "; ".join(f"{f['unit']}: {f['error']}" for f in failures[:3])
        more = f" (+{len(failures) - 3} more)" if len(failures) > 3 else ""
        super().__init__(f"{len(failures)} unit(s) failed: {lines}{more}; the other results "
                         f"are in {run_dir}, details in its run.log")


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
        atomic_write_text(run_dir / layout.CONFIG_FILE, dumps(config))
        write_json(run_dir / layout.AUDIT_FILE, dataset.audit)
        write_json(run_dir / layout.RUN_FILE, info)
        if len(table) < 20:
            raise UserError(f"--data {config['data']['path']}: only {len(table)} usable image(s); need at least 20")

        splits, info["split"] = run_splits(table, trials=config["trials"], seed=config["seed"],
                                           test_size=config["test_size"], user_split=dataset.user_split)
        write_split(run_dir / layout.SPLIT_FILE, table, splits)
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
        todo = _units_to_run(run_dir, plan, previous, force)
        message = f"{len(plan.units)} unit(s) planned, {len(plan.units) - len(todo)} reused, {len(todo)} to run"
        log.info(message)
        _say(quiet, message)
        failures = _execute(todo, table, config, run_dir, quiet=quiet)

        failed = {f["unit"] for f in failures}
        whole = [u.id for u in plan.units if u.id not in failed]
        results = aggregate(run_dir, whole, n_boot=config["bootstrap"], seed=config["seed"])
        if issues is not None:
            from .label_metrics import label_metrics_for_run

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


def _units_to_run(run_dir: Path, plan: Plan, previous: dict | None, force: bool) -> list[Unit]:
    """The planned units not already finished with the same definition; damaged and changed ones are discarded."""
    if force:
        return list(plan.units)
    checked = units.finished_units(run_dir, [u.id for u in plan.units])
    todo = []
    for unit in plan.units:
        reason = checked.get(unit.id, "missing")
        if reason is None:
            reason = _changed(run_dir, unit, plan.bootstrap, previous)
            if reason is None:
                continue
            log.info("unit %s: %s; recomputing it", unit.id, reason)
            units.discard_unit(run_dir, unit.id)
        elif reason != "missing":
            log.warning("unit %s is damaged (%s): recomputing it", unit.id, reason)
            units.discard_unit(run_dir, unit.id)
        todo.append(unit)
    return todo


def _changed(run_dir: Path, unit: Unit, bootstrap: int, previous: dict | None) -> str | None:
    """Why a whole unit may not be reused (its definition changed), or None."""
    digest = unit.digest(bootstrap)
    recorded = units.unit_definition(run_dir, unit.id)
    if recorded is None:  # written before definitions were recorded: judge by the previous config
        if previous is None:
            return "no definition recorded and no previous config"
        try:
            recorded = dataclasses.replace(unit, spec=model_specs(previous)[unit.model]).digest(previous["bootstrap"])
        except (KeyError, ValueError, UserError):
            return "its model is not in the previous config"
    return None if recorded == digest else "its definition changed"


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
                                       **rules_from_config(config))
        kept = pd.concat([kept, found], ignore_index=True).sort_values(["trial", "task", "part"], kind="stable")
    write_label_issues(run_dir, kept)
    return kept.reset_index(drop=True)


def _store_views(run_dir: Path, quiet: bool) -> None:
    """What each method sees on a few test faces, for the report (which loads no models)."""
    from .explain import compute_run_views

    try:
        compute_run_views(run_dir)
    except UserError:
        raise
    except Exception as exc:  # the benchmark's results stand without the pictures
        log.warning("could not compute the teaching views (%s: %s); the report omits them",
                    type(exc).__name__, exc, exc_info=True)


# --------------------------------------------------------------------------- execution


def _execute(todo: list[Unit], table: pd.DataFrame, config: dict, run_dir: Path, quiet: bool) -> list[dict]:
    """Run the units; return the failed ones as ``{"unit", "error"}`` (the others are written)."""
    failures: list[dict] = []
    if not todo:
        return failures
    from tqdm.auto import tqdm

    from ..baselines import user_models
    from .schedule import longest_first

    bar = tqdm(total=len(todo), desc="units", unit="unit", disable=quiet, dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}] {postfix}")
    labels = table[["image_id", "path", "age", "gender", "race"]].reset_index(drop=True)
    from ..cnn import user_cnns

    main_pid, registered = os.getpid(), {"models": user_models(), "cnns": user_cnns()}
    try:
        classical = [u for u in todo if u.kind == "classical"]
        if classical:
            bar.set_postfix_str("decoding images and computing features")
            specs = [u.spec for u in classical]
            inputs = prepare_features(table, specs, {"n_jobs": config["n_jobs"], "dask": config["dask"]})
            line = svm_backend_line(specs, config["svm_backend"])
            if line:
                log.info(line)
            classical = longest_first(classical)  # two workers do not end with one long fit alone
            jobs = [joblib.delayed(guarded)("classical", u, main_pid, registered, inputs[u.model], labels,
                                            config["bootstrap"], str(run_dir)) for u in classical]
            for result in parallel(jobs, config):
                _tick(bar, result, failures)
        cnn_jobs, stacks = [], {}
        for unit in (u for u in todo if u.kind == "cnn"):
            if unit.model not in stacks:
                stack, decode_s = decoded_for_cnn(table, unit.spec)
                stacks[unit.model] = (shareable(stack), decode_s)
            cnn_jobs.append(joblib.delayed(guarded)("cnn", unit, main_pid, registered, *stacks[unit.model], labels,
                                                    config["bootstrap"], str(run_dir)))
        if cnn_jobs:
            # TensorFlow already uses every core: locally CNN units run one at a time;
            # on a Dask cluster they spread over the workers like the others.
            bar.set_postfix_str("training CNN")
            EPOCH_LISTENERS.append(bar.set_postfix_str)
            for result in parallel(cnn_jobs, {**config, "n_jobs": 1}):
                _tick(bar, result, failures)
    finally:
        if bar.set_postfix_str in EPOCH_LISTENERS:
            EPOCH_LISTENERS.remove(bar.set_postfix_str)
        bar.close()
    return failures


def _tick(bar, result, failures: list) -> None:
    if isinstance(result, dict):
        failures.append(result)
        log.error("unit %s failed: %s", result["unit"], result["error"])
        bar.set_postfix_str(f"{result['unit']} FAILED")
    else:
        bar.set_postfix_str(result)
    bar.update()


def parallel(jobs, config):
    """Run joblib ``jobs`` with ``n_jobs`` workers, or on the Dask cluster of ``config["dask"]``;
    results as they finish."""
    n_jobs = config["n_jobs"]
    if config["dask"]:
        try:
            from dask.distributed import Client
        except ImportError:
            raise UserError("--dask needs the dask extra: pip install 'facebench[dask]'") from None
        try:
            client = Client(config["dask"], timeout="10s")
        except OSError as exc:
            raise UserError(f"--dask {config['dask']}: cannot reach the scheduler ({exc})") from None
        try:
            with joblib.parallel_config(backend="dask", wait_for_workers_timeout=30):
                yield from joblib.Parallel(return_as="generator_unordered")(jobs)
        finally:
            client.close()
        return
    if n_jobs == 1 or len(jobs) == 1:
        for job in jobs:
            fn, args, kwargs = job
            yield fn(*args, **kwargs)
        return
    yield from joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs)


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
    the others recomputed (:func:`_units_to_run`).
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
    if not force and previous_info and "split" not in previous_info and layout.units_dir(run_dir).is_dir() and any(
            p for p in layout.units_dir(run_dir).iterdir() if not p.name.startswith(".")):
        raise UserError(f"{run_dir} holds a run split by an older rule (near-duplicate photos may straddle its "
                        f"training and test parts); use --out {run_dir}-grouped for a new run directory "
                        "(or --force to replace this one)")


def _check_same_images(run_dir: Path, digest: str, force: bool) -> None:
    """The splits are drawn from the images used: a dataset that changed under a run would change them."""
    info = layout.read_run_info(run_dir) or {}
    before = info.get("images")
    if not force and before and before != digest and layout.units_dir(run_dir).is_dir():
        raise UserError(f"{run_dir} holds a run on another set of images (the data folder changed since); "
                        "use --out for a new run directory (or --force to replace this one)")


def prepare_table(config: dict, quiet: bool = True, audit_path: Path | None = None):
    """``(dataset, table)``: the images a run (or a sweep) of ``config`` draws its splits from.

    The dataset as scanned and audited, without the files ``data.exclude`` lists, cut to a
    stratified ``data.max_images``. A run and a sweep of the same data keys see the same table.
    """
    dataset = find_near_duplicates(load_dataset(config["data"]["path"]), max_bits=config["data"]["near_duplicate_bits"],
                                   labels=config["data"]["near_duplicate_labels"])
    where = f" (reasons in {audit_path})" if audit_path is not None else ""
    _say(quiet, f"{dataset.audit['used']} faces used, {len(dataset.audit['skipped'])} skipped{where}")
    table = _exclude(dataset, config["data"]["exclude"], quiet)
    return dataset, _limit(table, config["data"]["max_images"], config["seed"])


def _exclude(dataset, path: str, quiet: bool) -> pd.DataFrame:
    """The dataset's table without the files a reviewed list names (``data.exclude``).

    The list is any CSV with an ``image_id`` column (a run's ``label_issues.csv``, edited
    or not) or a ``path`` column; each file left out is added to the audit's skipped list.
    """
    table = dataset.table
    if not path:
        return table
    try:
        listed = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise UserError(f"data.exclude {path}: no such file") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"data.exclude {path}: not a readable CSV ({type(exc).__name__})") from None
    if "image_id" in listed:
        drop = table["image_id"].isin(set(listed["image_id"]))
    elif "path" in listed:
        wanted = {str(Path(p).resolve()) for p in listed["path"] if p}
        drop = table["path"].map(lambda p: str(Path(p).resolve()) in wanted)
    else:
        raise UserError(f"data.exclude {path}: expected an image_id (or path) column; "
                        f"found {', '.join(listed.columns) or 'none'}")
    dataset.audit.setdefault("skipped", []).extend(
        {"file": f, "reason": f"listed in {Path(path).name} (data.exclude)"} for f in table.loc[drop, "image_id"])
    dataset.audit["used"] = int((~drop).sum())
    _say(quiet, f"{int(drop.sum())} face(s) left out as listed in {path}")
    return table[~drop.to_numpy()].reset_index(drop=True)


def _limit(table: pd.DataFrame, max_images: int, seed: int) -> pd.DataFrame:
    """A stratified subset of ``max_images`` images (all when 0 or more than there are)."""
    if not max_images or max_images >= len(table):
        return table
    keep = subsample(table, np.arange(len(table)), max_images / len(table), seed=seed)
    return table.iloc[keep].reset_index(drop=True)


def log_to(path: Path) -> logging.Handler:
    """Send facebench's log (INFO and up) to ``path`` too; remove the handler when done."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger("facebench")
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    return handler


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        say(message)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
