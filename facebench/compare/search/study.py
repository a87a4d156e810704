"""Hyperparameter sweeps: points of a search space, each measured on a validation part of the training part.

``sweep(config)`` draws the first trial's split exactly as ``facebench run`` does
(same seed, test size and data), keeps its training part only (the test images are
decoded for no model: only the data scan, which checks every file, opens them), carves a stratified validation part from it, and
evaluates points of the space with Optuna (TPE, random or grid samplers; or the
study's "independent variable" design, one parameter at a time around the base). The
study lives in ``study.db`` in the sweep directory: rerunning the same command resumes,
and a killed sweep loses at most the points in flight. CNN points are pruned from
their per-epoch validation loss (Optuna's successive-halving pruner) when the objective is single.

The sweep directory's contract is ``docs/sweep-directory.md``. Confirming the winner on
the test part, with trials and paired tests, is ``facebench run --config best.toml``.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from facebench import __version__
from facebench.console import say
from facebench.errors import UserError
from facebench.io import atomic_write_text, writable_dir
from facebench.machine import cpu_name, usable_cores
from facebench.compare.planning.config import dumps
from facebench.compare.search.sweep_config import (decode_value, encode, grid_points, is_cnn, is_int_range, model_definition,
                           one_at_a_time_points, resolve_sweep, science)
from facebench.rundir.sweepdir import (BEST_FILE, CURVES_FILE, FORMAT, IMPORTANCES_FILE, INFO_FILE, LOG_FILE, POINTS_FILE,
                               REPORT_FILE, STUDY_FILE, SWEEP_FILE)
from facebench.vocab import OBJECTIVES
from facebench.compare.search.sweep_outputs import _write_outputs, best_config, points_table, summary
from facebench.compare.search.sweep_points import EPOCH_LISTENERS, cannot_build, evaluate_point, validation_data

log = logging.getLogger("facebench.sweep")

#: A sampled sweep stops when its failed points reach this many per point of the sweep (base included).
MAX_FAILED_PER_POINT = 3
#: Drawn points that cannot be built cost no training (checked before any image is
#: decoded), so a sampled sweep draws again; it stops after this many per point of the sweep.
MAX_UNBUILDABLE_PER_POINT = 25



# --------------------------------------------------------------------------- entry point


def sweep(config: dict, *, force: bool = False, quiet: bool = False, command: str | None = None) -> Path:
    """Run (or resume) a sweep; return the sweep directory."""
    import optuna

    from facebench.rundir import lock

    config = resolve_sweep(config)
    if not config["data"]["path"]:
        raise UserError("no dataset: give --data PATH (a folder of UTKFace-named images or a CSV manifest)")
    out = sweep_dir_for(config)
    writable_dir(out, "--out")
    with lock.hold(out, command or ""):
        _check_resumable(out, config, force)
        if force:
            for name in (STUDY_FILE, POINTS_FILE, CURVES_FILE, IMPORTANCES_FILE, BEST_FILE, INFO_FILE, REPORT_FILE):
                (out / name).unlink(missing_ok=True)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        from facebench.compare.running.executor import log_to

        handler = log_to(out / LOG_FILE)
        try:
            return _sweep(config, out, quiet=quiet, command=command)
        finally:
            logging.getLogger("facebench").removeHandler(handler)
            handler.close()


def _sweep(config, out, *, quiet, command):
    started = time.perf_counter()
    data = validation_data(config)
    previous = _read_info(out)
    _check_split_rule(out, previous, data["rows"])  # before anything in the directory changes
    atomic_write_text(out / SWEEP_FILE, dumps(config))
    if is_cnn(config):
        from facebench.cnn.device import log_device

        log_device(log)  # the GPU when TensorFlow sees one
    _say(quiet, f"{data['n_fit']} training and {data['n_val']} validation faces from the training part "
                f"({data['n_test_unread']} test faces left out)")
    study = _study(out, config)
    info = {"format": FORMAT, "facebench": __version__, "command": command or "facebench.compare.search.study",
            "started": previous.get("started") or _now(), "finished": None,
            "elapsed_s": float(previous.get("elapsed_s") or 0.0), "base": config["base"],
            "method": config["method"], "objective": config["objective"], "n_requested": config["n"],
            "budget_minutes": config["budget_minutes"], "stopped_by": None,
            "counts": {}, "validation": {"n_train": data["n_fit"], "n_val": data["n_val"], "test_part_read": False,
                                         "split": data["split"], "rows": data["rows"]},
            "cpu": cpu_name(), "cores": usable_cores(), "base_point": None,
            "pruning": _prunes(config) and not config["dask"]}
    spent_before = info["elapsed_s"]
    _recover_interrupted(study)
    total = _plan(study, config)
    base_values = base_point_values(config)

    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=min(_finished(study, trained_only=config["method"] in ("tpe", "random")), total), desc="points", unit="point", disable=quiet,
               dynamic_ncols=True, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}] {postfix}")
    EPOCH_LISTENERS.append(bar.set_postfix_str)
    stopped_by = None
    try:
        while True:
            sampled = config["method"] in ("tpe", "random")
            # a sampled sweep counts the points that trained: one that could not be built costs nothing
            done = _finished(study, trained_only=sampled)
            if done >= total:
                stopped_by = "n" if sampled or config["n"] else "grid exhausted"
                break
            if sampled and _failed(study) >= MAX_FAILED_PER_POINT * total:
                stopped_by = "too many failed points"
                break
            if sampled and _failed(study, unbuildable=True) >= MAX_UNBUILDABLE_PER_POINT * total:
                stopped_by = "too many points that cannot be built"
                break
            spent = spent_before + time.perf_counter() - started
            if spent >= config["budget_minutes"] * 60:
                stopped_by = "budget"
                break
            batch = _batch_size(config, total - done)
            trials = [study.ask() for _ in range(batch)]
            points = [_point_params(t, config, base_values) for t in trials]
            for trial, result in zip(trials, _evaluate(trials, points, config, data), strict=True):
                _tell(study, trial, result, config)
                bar.set_postfix_str(_describe_result(trial.number, result))
                if result["state"] != "failed" or not sampled:
                    bar.update()
            info["elapsed_s"] = round(spent_before + time.perf_counter() - started, 1)
            _write_outputs(out, study, config, base_values, info)
    finally:
        EPOCH_LISTENERS.remove(bar.set_postfix_str)
        bar.close()
    info["elapsed_s"] = round(spent_before + time.perf_counter() - started, 1)
    info["stopped_by"] = stopped_by
    info["finished"] = _now()
    points = _write_outputs(out, study, config, base_values, info)
    if not quiet:
        say(summary(points, config))
    return out


# --------------------------------------------------------------------------- the study


def _prunes(config: dict) -> bool:
    return is_cnn(config) and config["objective"] != "both" and config["prune_after"] > 0


def _study(out: Path, config: dict):
    import optuna

    sampler = _sampler(config)
    storage = f"sqlite:///{(out / STUDY_FILE).resolve()}"
    both = config["objective"] == "both"
    direction = OBJECTIVES[config["objective"]].optuna_direction if not both else None
    # Asynchronous successive halving: at epochs p, 3p, 9p, ... (p = prune_after) a point goes
    # on only while its validation loss is in the best third of the points that reached that
    # epoch. CPU epochs are dear: a median rule would keep half of the weak points training.
    pruner = (optuna.pruners.SuccessiveHalvingPruner(min_resource=config["prune_after"], reduction_factor=3)
              if _prunes(config) else optuna.pruners.NopPruner())
    kwargs = {"directions": [o.optuna_direction for o in OBJECTIVES.values()]} if both else {"direction": direction}
    try:
        return optuna.create_study(storage=storage, study_name="sweep", sampler=sampler, pruner=pruner,
                                   load_if_exists=True, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign study.db
        raise UserError(f"{out / STUDY_FILE}: cannot open the sweep's study ({type(exc).__name__}); "
                        "use --force to start the sweep again") from None


def _sampler(config: dict):
    import optuna

    seed = config["seed"]
    if config["method"] == "tpe":
        startup = min(10, max(4, config["n"] // 3))
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True,
                                          constant_liar=True)
    return optuna.samplers.RandomSampler(seed=seed)  # grid and one-at-a-time points are enqueued


def _plan(study, config: dict) -> int:
    """Enqueue the base point and the listed points not yet in the study; return how many points in all."""
    known = {t.user_attrs.get("key") for t in study.get_trials(deepcopy=False)
             if not t.user_attrs.get("interrupted")}
    if config["method"] == "grid":
        points = grid_points(config)
        if config["n"] and config["n"] < len(points):
            order = np.random.default_rng(config["seed"]).permutation(len(points))[: config["n"]]
            points = [points[i] for i in sorted(order)]
    elif config["method"] == "one-at-a-time":
        points = one_at_a_time_points(config, base_point_values(config))
        points = points[: config["n"]] if config["n"] else points
    else:
        points = None
    base = {}
    if points and config["method"] == "grid":
        values = base_point_values(config)
        same = next((p for p in points if _key(p) == _key(values)), None)
        if same is not None:  # the base is one of the grid's points: evaluate it once
            points.remove(same)
            base = same
    queue = [("base", base)] + [(_key(p), p) for p in points or ()]
    for key, params in queue:
        if key not in known:
            # grid points fix their values in Optuna too (so that it can rank the parameters)
            fixed = {k: encode(v) for k, v in params.items()} if config["method"] == "grid" else {}
            study.enqueue_trial(fixed, user_attrs={"key": key, "point": json.dumps(params), "is_base": key == "base"},
                                skip_if_exists=False)
            known.add(key)
    return 1 + (len(points) if points is not None else config["n"])


def _key(params: dict) -> str:
    return json.dumps({k: encode(v) for k, v in sorted(params.items())}, sort_keys=True)


def _recover_interrupted(study) -> None:
    """Points a killed sweep left running are marked failed (interrupted) and planned again."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
        study._storage.set_trial_user_attr(trial._trial_id, "key", f"interrupted-{trial.number}")
        study.tell(trial.number, state=TrialState.FAIL)


def _finished(study, trained_only: bool = False) -> int:
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED) + (() if trained_only else (TrialState.FAIL,))
    return sum(1 for t in study.get_trials(deepcopy=False, states=states)
               if not t.user_attrs.get("interrupted") and not (trained_only and t.user_attrs.get("unbuildable")))


def _failed(study, unbuildable: bool = False) -> int:
    """Points that failed while training (or, with ``unbuildable``, that could not be built at all)."""
    return sum(1 for t in study.get_trials(deepcopy=False) if t.user_attrs.get("state") == "failed"
               and not t.user_attrs.get("interrupted") and bool(t.user_attrs.get("unbuildable")) == unbuildable)


def _batch_size(config: dict, left: int) -> int:
    if is_cnn(config) and not config["dask"]:
        return 1  # TensorFlow already uses every core
    from facebench.machine import resolve_n_jobs

    return max(1, min(left, resolve_n_jobs(config["n_jobs"]) if not config["dask"] else 8))


def _point_params(trial, config: dict, base_values: dict) -> dict:
    """The point's parameter values: enqueued (base, grid, one-at-a-time) or suggested by the sampler."""
    if "point" in trial.user_attrs:
        params = json.loads(trial.user_attrs["point"])
        if config["method"] == "grid" and params:
            for name, value in params.items():  # so that Optuna knows them (importances)
                trial.suggest_categorical(name, [encode(v) for v in _choices(config["space"][name])])
            return {k: decode_value(_choices(config["space"][k]), encode(v)) for k, v in params.items()}
        return params
    out = {}
    for name, spec in config["space"].items():
        if isinstance(spec, list):
            out[name] = decode_value(spec, trial.suggest_categorical(name, [encode(v) for v in spec]))
        elif is_int_range(spec):
            out[name] = trial.suggest_int(name, spec["low"], spec["high"], step=spec.get("step", 1), log=spec["log"])
        else:
            out[name] = trial.suggest_float(name, spec["low"], spec["high"], step=spec.get("step"), log=spec["log"])
    return out


def _choices(spec):
    from facebench.compare.search.sweep_config import listed_values

    return listed_values(spec)


def base_point_values(config: dict) -> dict:
    """The value the base (with ``fixed``) has for each searched parameter."""
    definition = model_definition(config, {})
    if definition["kind"] == "cnn":
        from facebench.cnn import resolve_params

        resolved = resolve_params(definition["base"], definition["params"])
        return {name: _jsonable(resolved.get(name)) for name in config["space"]}
    from facebench.compare.planning.variants import settable_params

    settable = {**settable_params(config["base"]), **definition["params"]}
    out = {}
    for name in config["space"]:
        full = model_definition(config, {name: _first(config["space"][name])})["params"]
        key = next((k for k in full if k.endswith(name)), name)
        out[name] = _jsonable(settable.get(key))
    return out


def _first(spec):
    return spec[0] if isinstance(spec, list) else spec["low"]


def _jsonable(value):
    return json.loads(json.dumps(value, default=lambda v: list(v) if isinstance(v, tuple) else str(v)))


# --------------------------------------------------------------------------- evaluating points


def _evaluate(trials, points, config, data):
    """Each point's result dict, in order (classical points in parallel, CNN points one at a time)."""
    if is_cnn(config) and not config["dask"]:
        return [evaluate_point(p, config, data, trial=t) for t, p in zip(trials, points, strict=True)]
    import joblib

    from facebench.compare.running.executor import parallel

    jobs = [joblib.delayed(_numbered)(i, p, config, data) for i, p in enumerate(points)]
    results = dict(parallel(jobs, config))  # they arrive as they finish: put them back in order
    return [results[i] for i in range(len(points))]


def _numbered(i: int, params: dict, config: dict, data: dict) -> tuple[int, dict]:
    return i, evaluate_point(params, config, data)



def _tell(study, trial, result: dict, config: dict) -> None:
    from optuna.trial import TrialState

    attrs = {"state": result["state"], "reason": result["reason"], "seconds": result["seconds"],
             "epochs_run": result["epochs_run"], "metrics": result["metrics"], "curve": result["curve"]}
    if result.get("unbuildable"):
        attrs["unbuildable"] = True
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    m = result["metrics"]
    if result.get("unbuildable") and config["objective"] != "both":
        # Told to Optuna as pruned before its first epoch: TPE ranks such points below every
        # trained one, so it learns to draw fewer of them (a failed trial teaches it nothing).
        study.tell(trial, state=TrialState.PRUNED)
        return
    if result["state"] == "failed":
        study.tell(trial, state=TrialState.FAIL)
        return
    values = {key: m.get(o.column) for key, o in OBJECTIVES.items()}
    objective = list(values.values()) if config["objective"] == "both" else values[config["objective"]]
    if result["state"] == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, objective)


def _describe_result(number, result) -> str:
    m = result["metrics"]
    parts = [f"point {number} {result['state']}"]
    if "val_age_mae" in m:
        parts.append(f"val MAE {m['val_age_mae']:.2f}")
    if "val_gender_accuracy" in m:
        parts.append(f"val acc {m['val_gender_accuracy']:.3f}")
    return ", ".join(parts) + f" ({result['seconds']:.0f} s)"


# --------------------------------------------------------------------------- helpers


def sweep_dir_for(config: dict) -> Path:
    if config["out"]:
        return Path(config["out"]).expanduser()
    name = Path(config["data"]["path"].rstrip("/")).stem or "data"
    label = config["preset"] or config["base"].replace("cnn:", "cnn-").replace("+", "-")
    return Path("sweeps") / f"{label}-{name}"


def _check_resumable(out: Path, config: dict, force: bool) -> None:
    previous = out / SWEEP_FILE
    if force or not previous.exists() or not (out / STUDY_FILE).exists():
        return
    import tomllib

    try:
        old = resolve_sweep(tomllib.loads(previous.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, UserError):
        raise UserError(f"{previous}: unreadable or no longer valid; use --force to start the sweep again or "
                        "--out for a new sweep directory") from None
    a, b = science(old), science(config)
    if json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True, default=str):
        changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        raise UserError(f"{out} holds a sweep with a different configuration ({', '.join(changed)}); "
                        "use --out for a new sweep directory or --force to start this one again")


def _check_split_rule(out: Path, previous: dict, rows: str) -> None:
    """A sweep whose validation part was cut before near-duplicate groups were kept whole, or whose fit and
    validation faces this version would draw otherwise (other near-duplicate groups), is not grown."""
    if not previous or not (out / STUDY_FILE).exists():
        return
    validation = previous.get("validation") or {}
    if validation.get("split") in (None, "grouped"):
        raise UserError(f"{out} holds a sweep whose parts were cut by an older rule (near-duplicate photos may "
                        f"straddle them); use --out {out}-grouped for a new sweep directory (or --force to start "
                        "this one again)")
    if validation.get("rows") != rows:
        raise UserError(f"{out} holds a sweep whose fit and validation faces differ from the ones this version of "
                        f"facebench draws (its near-duplicate groups changed); use --out {out}-resplit for a new "
                        "sweep directory (or --force to start this one again)")


def _read_info(out: Path) -> dict:
    try:
        value = json.loads((out / INFO_FILE).read_text(encoding="utf-8"))
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError, UnicodeDecodeError):
        return {}


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        say(message)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


__all__ = ["sweep", "cannot_build", "evaluate_point", "validation_data", "points_table", "best_config", "sweep_dir_for"]
