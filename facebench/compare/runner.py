"""The benchmark runner: trials x training fractions x models, on one saved split per trial.

``run(config)`` plans every unit (trial x fraction x model), skips the units a
previous run of the same config finished, runs the rest (classical units in
parallel through joblib, locally or on a Dask cluster; CNN units one after the
other, as TensorFlow already uses every core), and gathers the results into the
run directory. Within a trial every model sees the same split and the same
training subset; images are decoded once per size and features computed once
per feature extractor, then shared read-only (memory-mapped) by every unit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from ..data import decode, load_dataset, make_split, subsample, write_split
from ..data.cache import atomic_save_npy, atomic_write_text, default_cache_dir
from ..errors import UserError
from . import rundir
from .config import DEFAULT_PRESET, DEFAULTS, dumps, merge, preset_config, science_digest, validate
from .metrics import unit_metrics

log = logging.getLogger("facebench.run")


class UnitsFailed(RuntimeError):
    """Some units raised; everything else was written. ``.failures``: ``[{"unit", "error"}]``."""

    def __init__(self, failures: list[dict], run_dir: Path):
        self.failures = failures
        self.run_dir = Path(run_dir)
        lines = "; ".join(f"{f['unit']}: {f['error']}" for f in failures[:3])
        more = f" (+{len(failures) - 3} more)" if len(failures) > 3 else ""
        super().__init__(f"{len(failures)} unit(s) failed: {lines}{more}; the other results and the report "
                         f"are in {run_dir}, details in its run.log")


# --------------------------------------------------------------------------- entry point


def run(config: dict, *, force: bool = False, quiet: bool = False, command: str | None = None,
        report: bool = True) -> Path:
    """Run the benchmark described by ``config``; return the run directory.

    Rerunning the same config resumes: finished units are kept. ``force``
    recomputes everything. ``config`` may be partial (e.g. ``{"preset": "quick",
    "data": {"path": "faces/"}}``): it is completed from its preset and validated.
    """
    config = resolve(config)
    if not config["data"]["path"]:
        raise UserError("no dataset: give --data PATH (a folder of UTKFace-named images or a CSV manifest)")
    run_dir = _run_dir(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_resumable(run_dir, config, force)
    if force:
        rundir.clear(run_dir)
    handler = _log_to(run_dir / "run.log")
    started = _now()
    try:
        log.info("run %s: %s", run_dir, command or "facebench.compare.run")
        dataset = load_dataset(config["data"]["path"])
        _say(quiet, f"{dataset.audit['used']} faces used, {len(dataset.audit['skipped'])} skipped "
                    f"(reasons in {run_dir / 'audit.json'})")
        table = _limit(dataset.table, config["data"]["max_images"], config["seed"])
        atomic_write_text(run_dir / "config.toml", dumps(config))
        audit = dict(dataset.audit)
        audit["run"] = {"command": command or "", "started": started, **environment()}
        if len(table) < len(dataset.table):
            audit["run"]["max_images"] = f"{len(table)} of {len(dataset.table)} used images (data.max_images)"
        rundir.write_json(run_dir / "audit.json", audit)
        if len(table) < 20:
            raise UserError(f"--data {config['data']['path']}: only {len(table)} usable image(s); need at least 20")

        splits = {t: make_split(table, seed=config["seed"] + t, test_size=config["test_size"])
                  for t in range(config["trials"])}
        write_split(run_dir / "split.csv", table, splits)
        units = plan_units(config, table, splits)
        todo = [u for u in units if force or not rundir.is_done(run_dir, u["id"])]
        log.info("%d unit(s) planned, %d already finished, %d to run",
                 len(units), len(units) - len(todo), len(todo))
        failures = _execute(todo, table, config, run_dir, quiet=quiet)

        results = rundir.aggregate(run_dir, [u["id"] for u in units], n_boot=config["bootstrap"], seed=config["seed"])
        audit["run"]["finished"] = _now()
        audit["run"]["failed_units"] = failures
        rundir.write_json(run_dir / "audit.json", audit)
        if not quiet:
            print(summary_table(results["metrics"], results["timings"]))
        if report:
            _write_report(run_dir)
        if failures:
            raise UnitsFailed(failures, run_dir)
        return run_dir
    finally:
        logging.getLogger("facebench").removeHandler(handler)
        handler.close()


def resolve(config: dict) -> dict:
    """Complete a (possibly partial) config from the defaults and its preset, then validate it."""
    name = config.get("preset") or DEFAULT_PRESET
    full = merge(merge(DEFAULTS, preset_config(name)), config)
    full["preset"] = name
    return validate(full)


# --------------------------------------------------------------------------- planning


def plan_units(config: dict, table: pd.DataFrame, splits: dict) -> list[dict]:
    """Every (trial, fraction, model) unit with its training and test rows."""
    models = config["models"]
    classical = list(dict.fromkeys(models["gender"] + models["age"]))
    units = []
    for trial, (train, test) in splits.items():
        seed = config["seed"] + trial
        seen_sizes = {}
        for frac in config["fractions"]:
            if isinstance(frac, int) and not isinstance(frac, bool) and frac > 1:
                if frac >= len(train):
                    log.warning("fraction %d images >= the %d training images of trial %d: same as 1.0, skipped",
                                frac, len(train), trial)
                    continue
                share = frac / len(train)
            else:
                share = float(frac)
            rows = subsample(table, train, share, seed=seed)
            if len(rows) in seen_sizes:
                continue
            seen_sizes[len(rows)] = frac
            # a configured fraction is kept as written; an image count becomes its share
            fraction = float(frac) if isinstance(frac, float) else round(len(rows) / len(train), 4)
            for name in classical:
                tasks = tuple(t for t in ("gender", "age") if name in models[t])
                units.append(_unit(trial, fraction, name, "classical", tasks, rows, test, seed))
            for name in models["cnn"]:
                units.append(_unit(trial, fraction, f"cnn-{name}", "cnn", ("gender", "age"), rows, test, seed,
                                   cnn=name))
    return units


def _unit(trial, fraction, model, kind, tasks, train, test, seed, cnn=None):
    return {"id": rundir.unit_id(trial, fraction, model), "trial": trial, "fraction": fraction, "model": model,
            "kind": kind, "tasks": tasks, "train": np.asarray(train), "test": np.asarray(test), "seed": seed,
            "cnn": cnn}


# --------------------------------------------------------------------------- execution


def _execute(units: list[dict], table: pd.DataFrame, config: dict, run_dir: Path, quiet: bool) -> list[dict]:
    """Run the units; return the failed ones as ``{"unit", "error"}`` (the others are written)."""
    failures: list[dict] = []
    if not units:
        return failures
    from tqdm.auto import tqdm

    bar = tqdm(total=len(units), desc="units", unit="unit", disable=quiet, dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}] {postfix}")
    labels = table[["image_id", "path", "age", "gender", "race"]].reset_index(drop=True)
    try:
        classical = [u for u in units if u["kind"] == "classical"]
        if classical:
            bar.set_postfix_str("decoding images and computing features")
            inputs = prepare_features(table, config, classical)
            # longest first, so that two workers do not end with one long fit running alone
            classical = sorted(classical, key=_expected_cost, reverse=True)
            jobs = [joblib.delayed(_guarded)("classical", u, inputs[u["model"]], labels, config, str(run_dir))
                    for u in classical]
            for result in _parallel(jobs, config):
                _tick(bar, result, failures)
        cnn_jobs, stacks = [], {}
        for unit in (u for u in units if u["kind"] == "cnn"):
            if unit["cnn"] not in stacks:
                stack, decode_s = _decoded(table, config, unit["cnn"])
                stacks[unit["cnn"]] = (_shareable(stack), decode_s)
            cnn_jobs.append(joblib.delayed(_guarded)("cnn", unit, *stacks[unit["cnn"]], labels, config, str(run_dir)))
        if cnn_jobs:
            # TensorFlow already uses every core: locally CNN units run one at a time;
            # on a Dask cluster they spread over the workers like the others.
            bar.set_postfix_str("training CNN")
            for result in _parallel(cnn_jobs, {**config, "n_jobs": 1}):
                _tick(bar, result, failures)
    finally:
        bar.close()
    return failures


def _expected_cost(unit: dict) -> float:
    """Rough fit seconds of a classical unit (2-core development machine), for scheduling.

    Kernel models grow about quadratically with the training rows (~120 s at 19k faces
    with flip augmentation), ridge and the linear SVM about linearly (<= ~70 s there):
    benchmarks/RESULTS.md, `standard` at full size.
    """
    from ..baselines.models import MODELS

    n = float(len(unit["train"]))
    return 3.3e-7 * n * n if MODELS[unit["model"]][1] in ("svm", "svr") else 3.5e-3 * n


def _guarded(kind: str, unit: dict, *args) -> str | dict:
    """Run one unit; an exception costs that unit only, reported as ``{"unit", "error"}``.

    Interruptions (Ctrl-C, a killed worker) are not caught: what finished is kept
    on disk and a rerun resumes.
    """
    fn = run_classical_unit if kind == "classical" else run_cnn_unit
    try:
        return fn(unit, *args)
    except Exception as exc:
        logging.getLogger("facebench.run").exception("unit %s failed", unit["id"])
        return {"unit": unit["id"], "error": f"{type(exc).__name__}: {exc}"}


def _tick(bar, result, failures: list) -> None:
    if isinstance(result, dict):
        failures.append(result)
        log.error("unit %s failed: %s", result["unit"], result["error"])
        bar.set_postfix_str(f"{result['unit']} FAILED")
    else:
        bar.set_postfix_str(result)
    bar.update()


def _parallel(jobs, config):
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


def prepare_features(table: pd.DataFrame, config: dict, units: list[dict]) -> dict:
    """Decode once, extract each model's features once for every image; memory-mapped files.

    Returns ``{model name: {"file", "decode_s_per_image", "features_s_per_image"}}``.
    Features of a stateless extractor do not depend on the split, so one pass over
    all images serves every trial, fraction and task.
    """
    from ..baselines import input_color, make_model

    size = config["features"]["image_size"]
    stacks = {}  # colour -> (images, decode seconds per image), decoded on first use

    def stack(color):
        if color not in stacks:
            t = time.perf_counter()
            images = decode(table, size=size, color=color)
            stacks[color] = images, (time.perf_counter() - t) / len(table)
        return stacks[color]

    cache = default_cache_dir() / "features"
    paths = "\n".join(table["path"]).encode()
    out, done = {}, {}
    for name in dict.fromkeys(u["model"] for u in units):
        task = next(u["tasks"][0] for u in units if u["model"] == name)
        extractor = make_model(name, task).named_steps["features"]
        color = input_color(name) or config["features"]["color"]  # colour features need RGB
        key_base = hashlib.sha256(paths + f"{size}{color}".encode()).hexdigest()[:16]
        spec = f"{color}|{extractor!r}"
        if spec not in done:
            images, decode_s = stack(color)
            digest = hashlib.sha256(f"{key_base}|{spec}".encode()).hexdigest()[:24]
            path = cache / f"{digest}.npy"
            feat_s = 0.0
            if not path.exists():
                t = time.perf_counter()
                try:
                    feats = _transform_chunked(extractor, images)
                except ValueError as exc:  # e.g. LBP on colour images, HOG cells larger than the image
                    raise UserError(f"model {name!r} cannot use features.image_size={size}, "
                                    f"features.color={color!r}: {exc}") from None
                feat_s = (time.perf_counter() - t) / len(table)
                atomic_save_npy(path, feats)
                atomic_write_text(path.with_suffix(".json"), f'{{"seconds_per_image": {feat_s}}}')
            else:
                try:
                    feat_s = json.loads(path.with_suffix(".json").read_text())["seconds_per_image"]
                except (OSError, ValueError, KeyError):
                    feat_s = float("nan")
            log.info("features %s: %s (%.2f ms/image)", name, spec, feat_s * 1000)
            done[spec] = {"file": str(path), "decode_s_per_image": decode_s, "features_s_per_image": feat_s}
        out[name] = done[spec]
    return out


def _transform_chunked(extractor, images, chunk: int = 2048) -> np.ndarray:
    parts = [np.asarray(extractor.transform(np.asarray(images[i : i + chunk])), dtype=np.float32)
             for i in range(0, len(images), chunk)]
    return np.concatenate(parts)


def _decoded(table, config, cnn_name):
    from ..cnn import resolve_params

    params = resolve_params(cnn_name, config["cnn"].get(cnn_name, {}))
    t = time.perf_counter()
    stack = decode(table, size=params["image_size"], color=params["color"])
    return stack, (time.perf_counter() - t) / len(table)


# --------------------------------------------------------------------------- units


def run_classical_unit(unit: dict, inputs: dict, labels: pd.DataFrame, config: dict, run_dir: str) -> str:
    """Fit one classical model per task of the unit on shared features; write the unit."""
    import joblib as jl

    from ..baselines import input_color, make_model, predict_outputs

    features = np.load(inputs["file"], mmap_mode="r")
    train, test = unit["train"], unit["test"]
    x_train, x_test = np.asarray(features[train]), np.asarray(features[test])
    pred = _prediction_frame(unit, labels)
    fit_s = predict_s = 0.0
    fitted = {}
    for task in unit["tasks"]:
        target = labels[task].to_numpy()[train]
        model = make_model(unit["model"], task, random_state=unit["seed"], n_jobs=1)
        head = model[1:]
        t = time.perf_counter()
        head.fit(x_train, target)
        fit_s += time.perf_counter() - t
        t = time.perf_counter()
        out = predict_outputs(head, x_test, task)
        predict_s += time.perf_counter() - t
        _fill_predictions(pred, out)
        fitted[task] = model
    model_path = Path(run_dir) / "models" / f"{unit['id']}.joblib"
    model_path.parent.mkdir(parents=True, exist_ok=True)
    # the input the model was trained on, as predict must decode it (colour models take RGB)
    features_used = {**config["features"], "color": input_color(unit["model"]) or config["features"]["color"]}
    jl.dump({"model": unit["model"], "features": features_used, "estimators": fitted}, model_path)
    n = len(train) + len(test)
    timing = _timing(unit, n_train=len(train), n_test=len(test),
                     decode_s=inputs["decode_s_per_image"] * n, features_s=inputs["features_s_per_image"] * n,
                     fit_s=fit_s, predict_s=predict_s, model_bytes=model_path.stat().st_size)
    _finish_unit(unit, pred, timing, config, run_dir)
    return unit["id"]


def _shareable(stack) -> dict:
    """A decoded stack as workers should get it: the cache file's path when there is one."""
    path = getattr(stack, "filename", None)
    return {"file": str(path)} if path else {"array": np.asarray(stack)}


def run_cnn_unit(unit: dict, images: dict, decode_s: float, labels: pd.DataFrame, config: dict, run_dir: str) -> str:
    """Train one CNN (both heads) on the unit's training rows; predict its test rows."""
    from ..cnn import fit

    stack = np.load(images["file"], mmap_mode="r") if "file" in images else images["array"]
    train, test = unit["train"], unit["test"]
    params = dict(config["cnn"].get(unit["cnn"], {}))
    t = time.perf_counter()
    fitted = fit(unit["cnn"], np.asarray(stack[train]), labels["age"].to_numpy()[train],
                 labels["gender"].to_numpy()[train], params=params, seed=unit["seed"])
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    out = fitted.predict(np.asarray(stack[test]))
    predict_s = time.perf_counter() - t
    pred = _prediction_frame(unit, labels)
    _fill_predictions(pred, out)
    model_path = Path(run_dir) / "models" / f"{unit['id']}.keras"
    model_path.parent.mkdir(parents=True, exist_ok=True)
    fitted.save(model_path)
    history = pd.DataFrame(fitted.history)
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    n = len(train) + len(test)
    size = sum(f.stat().st_size for f in model_path.parent.glob(f"{unit['id']}*") if f.is_file())
    timing = _timing(unit, n_train=len(train), n_test=len(test), decode_s=decode_s * n, features_s=0.0,
                     fit_s=fit_s, predict_s=predict_s, model_bytes=size)
    _finish_unit(unit, pred, timing, config, run_dir, history)
    return unit["id"]


def _prediction_frame(unit, labels):
    pred = labels.iloc[unit["test"]].reset_index(drop=True).copy()
    pred.insert(0, "model", unit["model"])
    pred.insert(0, "fraction", unit["fraction"])
    pred.insert(0, "trial", unit["trial"])
    pred["age_pred"] = np.nan
    pred["p_female"] = np.nan
    pred["gender_pred"] = pd.array([pd.NA] * len(pred), dtype="Int64")
    return pred


def _fill_predictions(pred, out):
    if "age" in out:
        pred["age_pred"] = np.round(np.asarray(out["age"], float), 3)
    if "p_female" in out:
        pred["p_female"] = np.round(np.asarray(out["p_female"], float), 5)
        pred["gender_pred"] = pd.array(np.asarray(out["gender"], int), dtype="Int64")


def _timing(unit, **values):
    task = "both" if len(unit["tasks"]) == 2 else unit["tasks"][0]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"trial": unit["trial"], "fraction": unit["fraction"], "model": unit["model"], "task": task,
            **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in values.items()},
            "peak_memory_mb": round(peak, 1)}


def _finish_unit(unit, pred, timing, config, run_dir, history=None):
    metrics = pd.DataFrame(unit_metrics(pred, n_boot=config["bootstrap"], seed=unit["seed"]))
    metrics.insert(0, "model", unit["model"])
    metrics.insert(0, "fraction", unit["fraction"])
    metrics.insert(0, "trial", unit["trial"])
    rundir.write_unit(Path(run_dir), unit["id"], pred, metrics, timing, history)
    log.info("unit %s done: fit %.1f s, predict %.1f s", unit["id"], timing["fit_s"], timing["predict_s"])


# --------------------------------------------------------------------------- helpers


def _run_dir(config) -> Path:
    if config["out"]:
        return Path(config["out"]).expanduser()
    name = Path(config["data"]["path"].rstrip("/")).stem or "data"
    return Path("runs") / f"{config['preset']}-{name}"


def _check_resumable(run_dir: Path, config: dict, force: bool) -> None:
    previous = run_dir / "config.toml"
    if force or not previous.exists():
        return
    import tomllib

    try:
        old = tomllib.loads(previous.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return
    if science_digest(old) != science_digest(config):
        raise UserError(f"{run_dir} holds a run with a different configuration; "
                        "use --force to replace it or --out for a new run directory")


def _limit(table: pd.DataFrame, max_images: int, seed: int) -> pd.DataFrame:
    """A stratified subset of ``max_images`` images (all when 0 or more than there are)."""
    if not max_images or max_images >= len(table):
        return table
    keep = subsample(table, np.arange(len(table)), max_images / len(table), seed=seed)
    return table.iloc[keep].reset_index(drop=True)


def _log_to(path: Path) -> logging.Handler:
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
        print(message, file=sys.stderr, flush=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def environment() -> dict:
    """Python and library versions, and the machine."""
    from importlib.metadata import PackageNotFoundError, version

    libs = {}
    for name in ("facebench", "numpy", "pandas", "scikit-learn", "scikit-image", "opencv-python-headless",
                 "tensorflow-cpu", "tensorflow", "keras", "scipy", "joblib"):
        try:
            libs[name] = version(name)
        except PackageNotFoundError:
            pass
    mem = None
    try:
        mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpu": cpu,
            "cores": os.cpu_count(), "memory_gb": mem, "versions": libs}


def summary_table(metrics: pd.DataFrame, timings: pd.DataFrame) -> str:
    """The terminal summary: per model at the largest fraction, median over trials."""
    if metrics.empty:
        return "no finished units"
    top = metrics["fraction"].max()
    m = metrics[(metrics["fraction"] == top) & (metrics["group"] == "all")]
    wide = m[m["metric"].isin(["accuracy", "roc_auc", "mae", "r2"])].pivot_table(
        index="model", columns="metric", values="value", aggfunc="median")
    fit = timings[timings["fraction"] == top].groupby("model")["fit_s"].median()
    wide["fit_s"] = fit
    wide = wide.reindex(columns=[c for c in ("accuracy", "roc_auc", "mae", "r2", "fit_s") if c in wide])
    sort = "accuracy" if "accuracy" in wide else wide.columns[0]
    wide = wide.sort_values(sort, ascending=False)
    n_trials = metrics["trial"].nunique()
    head = f"Results at training fraction {top:g} (median over {n_trials} trial(s), full test part):"
    return head + "\n" + wide.to_string(float_format=lambda v: f"{v:.3f}", na_rep="-")


def _write_report(run_dir: Path) -> None:
    try:
        from ..reports import write_report
    except ImportError:  # pragma: no cover - the reports package is part of facebench
        log.warning("facebench.reports is not available; no report written")
        return
    write_report(run_dir)
