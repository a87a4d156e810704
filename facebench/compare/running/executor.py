"""Running a plan: the units a run directory still needs, executed locally (joblib) or on Dask.

:func:`units_to_run` keeps the finished units whose definition is unchanged (each checked
against its manifest); :func:`execute` runs the rest (classical units in parallel, the
longest first; CNN units one after the other, as TensorFlow already uses every core) and
returns the failed ones; each unit writes itself (:mod:`.unit_bodies`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import joblib
import pandas as pd

from facebench.console import say
from facebench.errors import UserError
from facebench.rundir import units
from facebench.compare.planning.plan import Plan, Unit, model_specs
from facebench.compare.running.feature_workers import feature_workers
from facebench.compare.running.unit_bodies import (EPOCH_LISTENERS, decoded_for_cnn, guarded, prepare_features,
                                                   shareable, svm_backend_line)

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


def units_to_run(run_dir: Path, plan: Plan, previous: dict | None, force: bool) -> list[Unit]:
    """The planned units not already finished with the same definition; damaged and changed ones are discarded."""
    if force:
        return list(plan.units)
    checked = units.finished_units(run_dir, [u.id for u in plan.units])
    todo = []
    previous_specs: dict = {}  # the previous config's models, resolved once, when a unit needs them
    for unit in plan.units:
        reason = checked.get(unit.id, "missing")
        if reason is None:
            reason = _changed(run_dir, unit, plan.bootstrap, previous, previous_specs)
            if reason is None:
                continue
            log.info("unit %s: %s; recomputing it", unit.id, reason)
            units.discard_unit(run_dir, unit.id)
        elif reason != "missing":
            log.warning("unit %s is damaged (%s): recomputing it", unit.id, reason)
            units.discard_unit(run_dir, unit.id)
        todo.append(unit)
    return todo


def _changed(run_dir: Path, unit: Unit, bootstrap: int, previous: dict | None, previous_specs: dict) -> str | None:
    """Why a whole unit may not be reused (its definition changed), or None.

    ``previous_specs`` caches :func:`model_specs` of ``previous`` across the units of one check.
    """
    digest = unit.digest(bootstrap)
    recorded = units.unit_definition(run_dir, unit.id)
    if recorded is None:  # written before definitions were recorded: judge by the previous config
        if previous is None:
            return "no definition recorded and no previous config"
        try:
            if not previous_specs:
                previous_specs.update(model_specs(previous))
            recorded = dataclasses.replace(unit, spec=previous_specs[unit.model]).digest(previous["bootstrap"])
        except (KeyError, ValueError, UserError):
            return "its model is not in the previous config"
    return None if recorded == digest else "its definition changed"


def execute(todo: list[Unit], table: pd.DataFrame, config: dict, run_dir: Path, quiet: bool) -> list[dict]:
    """Run the units; return the failed ones as ``{"unit", "error"}`` (the others are written)."""
    failures: list[dict] = []
    if not todo:
        return failures
    from tqdm.auto import tqdm

    from facebench.baselines import user_models
    from facebench.compare.running.schedule import longest_first

    bar = tqdm(total=len(todo), desc="units", unit="unit", disable=quiet, dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}] {postfix}")
    labels = table[["image_id", "path", "age", "gender", "race"]].reset_index(drop=True)
    from facebench.cnn import user_cnns

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
            from facebench.cnn.device import log_device

            log_device(log)  # the GPU when TensorFlow sees one
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
    if not config["dask"] and (config["n_jobs"] == 1 or len(jobs) == 1):
        for job in jobs:
            fn, args, kwargs = job
            yield fn(*args, **kwargs)
        return
    with feature_workers(config):  # the run's local workers, or its Dask cluster
        yield from joblib.Parallel(return_as="generator_unordered")(jobs)


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


__all__ = ["UnitsFailed", "execute", "log_to", "parallel", "units_to_run"]
