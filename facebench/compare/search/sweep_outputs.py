"""The sweep directory's files, and what the finished points make of them.

:func:`points_table` (``points.csv``), :func:`best_point` and :func:`best_config`
(``best.toml``: the quick preset with the winner beside its base), :func:`importances`
(``importances.json``) and :func:`summary` (the lines the command prints). The search that
fills the study is :mod:`facebench.compare.search.study`; the contract is ``docs/sweep-directory.md``.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from facebench.io import atomic_write, atomic_write_text, write_json
from facebench.rundir.sweepdir import (BEST_FILE, BEST_NAME, CURVES_FILE, FORMAT, IMPORTANCES_FILE, INFO_FILE,  # noqa: F401
                               LOG_FILE, POINT_METRICS, POINTS_FILE, REPORT_FILE, STUDY_FILE, SWEEP_FILE, best_number)
from facebench.vocab import OBJECTIVES
from facebench.compare.planning.config import dumps
from facebench.compare.search.sweep_config import decode_value, model_definition

log = logging.getLogger("facebench.sweep")

METRICS = POINT_METRICS


# --------------------------------------------------------------------------- outputs


def points_table(study, config: dict, base_values: dict) -> pd.DataFrame:
    """One row per finished point (interrupted ones left out); columns as docs/sweep-directory.md."""
    from optuna.trial import TrialState

    rows = []
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    for t in study.get_trials(deepcopy=False, states=states):
        a = t.user_attrs
        if a.get("interrupted") or "state" not in a:
            continue
        params = json.loads(a["point"]) if "point" in a else {
            name: decode_value(config["space"][name], t.params.get(name)) for name in config["space"]}
        m = a.get("metrics") or {}
        row = {"number": t.number, "state": a["state"], "reason": a.get("reason", ""), "seconds": a.get("seconds"),
               "epochs_run": a.get("epochs_run")}
        for key in METRICS:
            row[key] = m.get(key)
            row[f"{key}_low"] = m.get(f"{key}_low")
            row[f"{key}_high"] = m.get(f"{key}_high")
        objective = OBJECTIVES.get(config["objective"])
        row["objective"] = m.get(objective.column) if objective is not None and a["state"] == "complete" else None
        row["is_base"] = bool(a.get("is_base"))
        for name in config["space"]:
            value = params.get(name, base_values.get(name))
            row[f"param.{name}"] = json.dumps(value) if isinstance(value, (list, dict)) else value
        rows.append(row)
    columns = ["number", "state", "reason", "seconds", "epochs_run",
               *[f"{k}{s}" for k in METRICS for s in ("", "_low", "_high")], "objective", "is_base",
               *[f"param.{n}" for n in config["space"]]]
    return pd.DataFrame(rows, columns=columns)


def best_point(points: pd.DataFrame, config: dict) -> pd.Series | None:
    """The winner's row of ``points`` by the sweep directory's one rule (:func:`best_number`)."""
    number = best_number(points, config["objective"])
    return None if number is None else points[points["number"] == number].iloc[0]


def best_config(points: pd.DataFrame, config: dict) -> dict | None:
    """A complete run config: the quick preset with the winner as a named variant beside its base."""
    best = best_point(points, config)
    if best is None:
        return None
    values = {}
    for name in config["space"]:
        raw = best[f"param.{name}"]
        values[name] = json.loads(raw) if isinstance(raw, str) and raw[:1] in "[{" else _plain_number(raw)
    winner = model_definition(config, values)
    base = model_definition(config, {})
    run = {"preset": "quick", "description": f"the best point of the sweep in {config['out'] or 'its directory'} "
                                             f"(point {int(best['number'])}) beside its base, on the test part",
           "seed": config["seed"], "test_size": config["test_size"], "fractions": [1.0],
           "data": dict(config["data"]), "features": dict(config["features"])}
    if winner["kind"] == "cnn":
        from facebench.cnn import resolve_params

        name = base["base"]
        base_params = dict(base["params"])
        base_params.setdefault("epochs", resolve_params(name, base_params)["epochs"])
        winner_params = {**{k: v for k, v in base_params.items()}, **winner["params"]}
        run["models"] = {"gender": [], "age": [], "cnn": [name, BEST_NAME]}
        run["cnn"] = {name: base_params, BEST_NAME: {"base": name, **winner_params}}
    else:
        from facebench.baselines import MODEL_TASKS

        tasks = MODEL_TASKS[config["base"]]
        run["models"] = {"gender": [], "age": [], "cnn": []}
        for task in tasks:
            run["models"][task] = [config["base"], BEST_NAME]
        short = {k: v for k, v in values.items()}
        run["classical"] = {BEST_NAME: {"base": config["base"], "params": {**config["fixed"], **short}}}
    return run


def _plain_number(value):
    """NumPy scalars as TOML can write them."""
    return value.item() if isinstance(value, np.generic) else value


def _write_outputs(out: Path, study, config: dict, base_values: dict, info: dict) -> pd.DataFrame:
    points = points_table(study, config, base_values)
    atomic_write(out / POINTS_FILE, lambda fh: points.to_csv(fh, index=False))
    curves = [{"number": int(t.number), **row} for t in study.get_trials(deepcopy=False)
              for row in (t.user_attrs.get("curve") or []) if not t.user_attrs.get("interrupted")]
    if curves:
        frame = pd.DataFrame(curves)
        atomic_write(out / CURVES_FILE, lambda fh: frame.to_csv(fh, index=False))
    write_json(out / IMPORTANCES_FILE, importances(study, config))
    winner = best_point(points, config)
    info["best_point"] = int(winner["number"]) if winner is not None else None
    best = best_config(points, config)
    if best is not None:
        from facebench.compare.planning.config import resolve

        resolve(best)  # a best.toml that facebench run refuses is a bug here, not the user's
        atomic_write_text(out / BEST_FILE, dumps(best))
    counts = points.state.value_counts().to_dict()
    info["counts"] = {s: int(counts.get(s, 0)) for s in ("complete", "pruned", "failed")}
    base = points[points.is_base]
    info["base_point"] = int(base.number.iloc[0]) if not base.empty else None
    write_json(out / INFO_FILE, info)
    return points


def importances(study, config: dict) -> dict:
    """Optuna's parameter importances per objective (only points whose every parameter was sampled)."""
    import optuna
    from optuna.trial import TrialState

    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.params]
    if len(complete) < 3 or config["method"] == "one-at-a-time":
        return {}
    out = {}
    targets = {"age_mae": 0, "gender_accuracy": 1} if config["objective"] == "both" else {config["objective"]: None}
    for name, index in targets.items():
        try:
            target = (lambda t, i=index: t.values[i]) if index is not None else None
            with warnings.catch_warnings():  # "some regimes have less than 2 trials": small sweeps
                warnings.simplefilter("ignore", UserWarning)
                values = optuna.importance.get_param_importances(study, target=target)
            out[name] = {k: round(float(v), 4) for k, v in values.items()}
        except (RuntimeError, ValueError) as exc:  # e.g. every point has the same value
            log.info("no importances for %s: %s", name, exc)
    return out


def summary(points: pd.DataFrame, config: dict) -> str:
    counts = points.state.value_counts().to_dict()
    lines = [f"{len(points)} point(s): {counts.get('complete', 0)} complete, {counts.get('pruned', 0)} pruned, "
             f"{counts.get('failed', 0)} failed"]
    best = best_point(points, config)
    base = points[points.is_base & (points.state == "complete")]
    for label, row in (("base", base.iloc[0] if not base.empty else None), ("best", best)):
        if row is None:
            continue
        parts = [f"{label} (point {int(row['number'])}):"]
        for key, name in (("val_age_mae", "validation MAE"), ("val_gender_accuracy", "validation accuracy")):
            if pd.notna(row.get(key)):
                parts.append(f"{name} {float(row[key]):.3f} [{float(row[key + '_low']):.3f}, "
                             f"{float(row[key + '_high']):.3f}]")
        lines.append(" ".join(parts))
    return "\n".join(lines)
