"""The trained models of a run directory, loaded without running code from it.

Classical models are skops files checked against :data:`facebench.baselines.TRUSTED_TYPES`
before anything is built; CNNs load with Keras' safe mode. A unit is used only when
its manifest proves it whole. ``facebench predict`` and ``facebench explain`` load
through here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from facebench.errors import UserError
from facebench.rundir import layout, saved, units
from facebench.rundir.read import read_csv
from facebench.vocab import HEADLINE, best_index


@dataclass
class LoadedModel:
    """One trained model of a run, ready to predict.

    Attributes
    ----------
    name : the model's name in the run (``hog+svm``, ``cnn-default``); unit : its unit id;
    kind : ``"classical"`` or ``"cnn"``; trial, fraction : which unit it is;
    image_size, color : what its input images look like;
    estimators : classical models, task -> fitted pipeline on image stacks;
    cnn : CNNs, the loaded :class:`facebench.cnn.FittedCNN`.
    """

    name: str
    unit: str
    kind: str
    trial: int
    fraction: float
    image_size: int
    color: str
    estimators: dict | None = None
    cnn: object | None = None
    fraction_note: bool = False

    def outputs(self, faces_rgb: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Raw per-face outputs ``{"age", "p_female", "gender"}`` (keys as the model predicts)."""
        from facebench.data import to_face_array

        X = np.stack([to_face_array(f, self.image_size, self.color) for f in faces_rgb])
        if self.cnn is not None:
            return self.cnn.predict(X)
        from facebench.baselines import predict_outputs

        out: dict[str, np.ndarray] = {}
        for task, estimator in self.estimators.items():
            out.update(predict_outputs(estimator, X, task))
        return out

    def predict(self, faces_rgb: list[np.ndarray]) -> list[dict]:
        """Age / P(female) / gender for RGB face crops, one dict per crop."""
        if not faces_rgb:
            return []
        out = self.outputs(faces_rgb)
        rows = []
        for i in range(len(faces_rgb)):
            row = {}
            if "age" in out:
                row["age"] = round(float(out["age"][i]), 1)
            if "p_female" in out:
                p = float(out["p_female"][i])
                row["p_female"] = round(p, 4) if math.isfinite(p) else None
                row["gender"] = "female" if int(out["gender"][i]) == 1 else "male"
            rows.append(row)
        return rows


def _training_sizes(run_dir: Path) -> dict[float, float]:
    """fraction -> mean training images per unit (timings.csv), to rank fractions and counts alike."""
    try:
        t = read_csv(run_dir / layout.TIMINGS_FILE, ("model", "task"))
        if t is None:
            return {}
        return {float(f): float(n) for f, n in t.groupby("fraction")["n_train"].mean().items()}
    except (OSError, KeyError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return {}


def available_models(run_dir) -> dict[str, dict]:
    """The whole saved models of a run by name: ``{name: {"path", "unit", "trial", "fraction", "kind",
    "largest"}}``, each the unit on the largest training set of the lowest trial.

    ``largest`` is False when that unit is not on the run's largest training set (the
    model's units there are missing or damaged).
    """
    run_dir = layout.check_run_dir(run_dir, need=(layout.METRICS_FILE, layout.MODELS_FILE))
    table = saved.read_models_table(run_dir)
    by_safe = {layout.safe_name(n): (n, k) for n, k in zip(table["name"], table["kind"])}
    sizes = _training_sizes(run_dir)
    top = max(sizes.values()) if sizes else None
    found: dict[str, dict] = {}
    folder = layout.units_dir(run_dir)
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        parsed = layout.parse_unit_id(path.name)
        if parsed is None or parsed[2] not in by_safe:
            continue
        trial, fraction, safe = parsed
        name, kind = by_safe[safe]
        model = saved.model_file(run_dir, path.name)
        if model is None or units.check_unit(run_dir, path.name) is not None:
            continue
        size = sizes.get(fraction, fraction)
        entry = {"path": model, "unit": path.name, "trial": trial, "fraction": fraction, "kind": kind,
                 "largest": top is None or size >= top}
        rank = (-size, trial)
        old = found.get(name)
        if old is None or rank < (-sizes.get(old["fraction"], old["fraction"]), old["trial"]):
            found[name] = entry
    return found


def default_models(run_dir, available: dict | None = None) -> list[str]:
    """The best gender model (accuracy), the best age model (MAE) on the largest training set
    (median over trials), and every CNN."""
    run_dir = layout.check_run_dir(run_dir)
    available = available_models(run_dir) if available is None else available
    if not available:
        return []
    metrics = read_csv(run_dir / layout.METRICS_FILE, ("model", "task", "group", "metric"))
    if metrics is None:
        return [name for name, info in available.items() if info["kind"] == "cnn"]
    metrics = metrics[(metrics["group"] == "all") & metrics["model"].isin(list(available))]
    chosen = []
    if len(metrics):
        sizes = _training_sizes(run_dir)
        fractions = sorted({float(f) for f in metrics["fraction"]}, key=lambda f: sizes.get(f, f))
        at = metrics[metrics["fraction"].astype(float) == fractions[-1]]
        for task in ("gender", "age"):
            metric = HEADLINE[task]
            scores = at[(at["task"] == task) & (at["metric"] == metric)].groupby("model", sort=False)["value"].median()
            scores = scores.dropna()
            if len(scores):
                chosen.append(best_index(scores, metric))
    chosen += [name for name, info in available.items() if info["kind"] == "cnn"]
    return list(dict.fromkeys(chosen))


def choose_models(run_dir, names=None) -> tuple[dict, list[str]]:
    """``(available_models(run_dir), the names to load)``: ``names``, or :func:`default_models`.

    Raises
    ------
    UserError
        A run directory without whole models, or an unknown model name (the message
        lists the available ones).
    """
    run_dir = layout.check_run_dir(run_dir)
    available = available_models(run_dir)
    if not available:
        raise UserError(f"{run_dir}: the run has no whole saved models (units/*/model.*)")
    if not names:
        return available, default_models(run_dir, available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise UserError(f"unknown model {', '.join(map(repr, unknown))}; this run has: {', '.join(available)}")
    return available, list(dict.fromkeys(names))


def load_models(run_dir, names=None) -> list[LoadedModel]:
    """Load the named models of a run (default: :func:`default_models`).

    Raises
    ------
    UserError
        As :func:`choose_models`, or for a model file that is refused or damaged.
    """
    available, names = choose_models(run_dir, names)
    return [load_model(name, available[name]) for name in names]


def load_model(name: str, info: dict) -> LoadedModel:
    """Load one entry of :func:`available_models`."""
    common = {"name": name, "unit": info["unit"], "kind": info["kind"], "trial": info["trial"],
              "fraction": info["fraction"]}
    if info["kind"] == "cnn":
        from facebench.cnn import load

        try:
            fitted = load(info["path"])
        except Exception as exc:  # noqa: BLE001 - Keras raises many kinds; safe mode refusals included
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"{info['path']}: the CNN could not be loaded safely ({first[:200]})") from None
        shape = tuple(fitted.model.input_shape[1:])
        color = fitted.params.get("color") or ("rgb" if len(shape) == 3 and shape[-1] == 3 else "gray")
        return LoadedModel(**common, image_size=int(shape[0]), color=color, cnn=fitted)
    from facebench.baselines import TRUSTED_TYPES

    meta, estimators = saved.load_classical(info["path"], TRUSTED_TYPES)
    features = meta.get("features", {})
    return LoadedModel(**common, image_size=int(features.get("image_size", 64)),
                       color=str(features.get("color", "gray")), estimators=estimators)
