"""The plan of a run: every model resolved once (:class:`ModelSpec`), every unit with its rows (:class:`Unit`).

A run's configuration names models (registry models, classical variants, CNN presets
and CNN variants); :func:`model_specs` works each of them out once, with everything the
rest of the run asks of a model: its base, its resolved parameters, its tasks, the size
and colour its faces are decoded at, the library of its RBF SVMs, its row of the models
table and the digest of its definition. :func:`make_plan` adds the units (trial x
fraction x model) with their training and test rows. The runner, the workers, the models
table, the unit digests, the progress line and the label detector read these frozen
objects, never the raw configuration.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from facebench.data import subsample
from facebench.errors import UserError
from facebench.rundir import layout
from facebench.vocab import TASKS
from facebench.compare.planning.variants import (build_model, classical_base, classical_params, classical_svm_backend, cnn_base,
                       cnn_overrides, cnn_params)

log = logging.getLogger("facebench.run")


#: CNN parameters added after run directories of this format were first written, with the
#: value that trains as before: left out of a definition at that value, so that a finished
#: run's CNN units are still reused.
LATER_CNN_KEYS = {"precision": "float32", "ema": 0.0, "age_head": "linear", "age_kl_weight": 0.0, "age_sigma": 2.0,
                  "low_res_epochs": 0, "low_res_size": 32}


@dataclass(frozen=True)
class ModelSpec:
    """One model of a run, resolved.

    ``name`` is the model's name in the run's results (a CNN's carries ``cnn-``); ``base``
    the registry model or CNN preset it is built from (itself unless a variant); ``params``
    what a classical variant sets on its base (full scikit-learn names) or a CNN's every
    resolved parameter; ``overrides`` what a CNN changes on its preset.
    """

    name: str
    kind: str  # "classical" | "cnn"
    base: str
    tasks: tuple[str, ...]
    image_size: int
    color: str
    params: dict = field(default_factory=dict, hash=False, compare=False)
    overrides: dict = field(default_factory=dict, hash=False, compare=False)
    svm_backend: str | None = None
    features: dict = field(default_factory=dict, hash=False, compare=False)  # the run's [features]
    row: dict = field(default_factory=dict, hash=False, compare=False)  # its row of the models table
    config_name: str = ""  # the name under [models] (a CNN's without "cnn-")

    @property
    def definition(self) -> dict:
        """What decides this model's results, as unit definitions record it."""
        if self.kind == "cnn":
            params = {k: v for k, v in self.params.items() if LATER_CNN_KEYS.get(k, ()) != v}
            return {"kind": "cnn", "base": self.base, "params": _jsonable(params)}
        definition = {"kind": "classical", "base": self.base, "params": _jsonable(self.params),
                      "tasks": list(self.tasks), "features": dict(self.features)}
        # libsvm fitted every RBF SVM before the backend was chosen: left out at that value, so those units are reused
        if self.svm_backend not in (None, "libsvm"):
            definition["svm_backend"] = self.svm_backend
        return definition

    def build(self, task: str, random_state=None, n_jobs=None):
        """A fresh, unfitted scikit-learn pipeline of this classical model for ``task``."""
        if self.kind != "classical":
            raise TypeError(f"{self.name} is a CNN: it is trained by facebench.cnn.fit, not built here")
        return build_model(self.base, self.params, task, self.svm_backend or "libsvm",
                           random_state=random_state, n_jobs=n_jobs)


@dataclass(frozen=True)
class Unit:
    """One model trained on one trial's rows at one training fraction, and tested on its test part."""

    trial: int
    fraction: float
    seed: int
    spec: ModelSpec
    train: np.ndarray = field(hash=False, compare=False)
    test: np.ndarray = field(hash=False, compare=False)

    @property
    def id(self) -> str:
        return layout.unit_id(self.trial, self.fraction, self.spec.name)

    @property
    def model(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.spec.tasks

    def definition(self, bootstrap: int) -> dict:
        """Everything that decides this unit's results; a finished unit is reused while it is unchanged.

        The split keys (seed, test size, data) are not here: changing them is refused for
        the whole run directory. The training and test rows are, as a digest.
        """
        rows = hashlib.sha256(repr((list(map(int, self.train)), list(map(int, self.test)))).encode()).hexdigest()
        common = {"trial": self.trial, "fraction": self.fraction, "seed": self.seed, "rows": rows[:16],
                  "bootstrap": bootstrap}
        return {**common, **self.spec.definition}

    def digest(self, bootstrap: int) -> str:
        return definition_digest(self.definition(bootstrap))


@dataclass(frozen=True)
class Plan:
    """Every model of the run and every unit, in the order they were planned."""

    specs: dict[str, ModelSpec]
    units: list[Unit]
    bootstrap: int

    def models_table(self) -> list[dict]:
        return [spec.row for spec in self.specs.values()]


def definition_digest(definition: dict) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _jsonable(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))


# --------------------------------------------------------------------------- resolving


def model_specs(config: dict) -> dict[str, ModelSpec]:
    """Every model a (validated) run config names, resolved once, by its name in the results."""
    models = config["models"]
    specs = {}
    for name in dict.fromkeys(models["gender"] + models["age"]):
        tasks = tuple(t for t in ("gender", "age") if name in models[t])
        specs[name] = classical_spec(config, name, tasks)
    for name in models["cnn"]:
        spec = cnn_spec(config, name)
        specs[spec.name] = spec
    return specs


def classical_spec(config: dict, name: str, tasks: tuple[str, ...]) -> ModelSpec:
    """A classical model of ``config`` (a registry model or a ``[classical.NAME]`` variant) for ``tasks``."""
    from facebench.baselines import describe, input_color
    from facebench.baselines.registry import input_size

    base, params = classical_base(config, name), classical_params(config, name)
    color = input_color(base) or config["features"]["color"]  # colour features need RGB
    size = input_size(base) or config["features"]["image_size"]  # a pretrained network its own size
    row = describe(base)
    if base != name:
        row["summary"] = config["classical"][name].get("summary") or f"{base} with {_show_params(params)}"
    row.update(name=name, tasks=tasks, image_size=size, color=color, params=params, base=base)
    return ModelSpec(name=name, kind="classical", base=base, tasks=tuple(tasks), image_size=size, color=color,
                     params=params, svm_backend=classical_svm_backend(config, name, tasks),
                     features=dict(config["features"]), row=row, config_name=name)


def cnn_spec(config: dict, name: str) -> ModelSpec:
    """A CNN of ``config`` (a preset or a ``[cnn.NAME]`` variant); its results are named ``cnn-NAME``."""
    from facebench.cnn import describe

    base, params, overrides = cnn_base(config, name), cnn_params(config, name), cnn_overrides(config, name)
    row = describe(base)
    if base != name:
        row["summary"] = (f"cnn-{base} with {_show_params(overrides)}" if overrides else f"the same as cnn-{base}")
    row.update(name=f"cnn-{name}", tasks=TASKS, image_size=params["image_size"], color=params["color"],
               params=params, base=f"cnn-{base}")
    return ModelSpec(name=f"cnn-{name}", kind="cnn", base=base, tasks=TASKS, image_size=params["image_size"],
                     color=params["color"], params=params, overrides=overrides, row=row, config_name=name)


def _show_params(params: dict) -> str:
    return ", ".join(f"{k.rsplit('__', 1)[-1]}={v!r}" for k, v in params.items()) or "its defaults"


# --------------------------------------------------------------------------- planning


def make_plan(config: dict, table: pd.DataFrame, splits: dict, issues: pd.DataFrame | None = None) -> Plan:
    """Every (trial, fraction, model) unit with its training and test rows.

    With ``data.label_errors = "drop-train"``, the faces suspected in a trial's training
    part (``issues``) leave every fraction's training rows; the test part is never touched.
    """
    specs = model_specs(config)
    _check_file_names(specs)
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
            if config["data"]["label_errors"] == "drop-train":
                rows = drop_suspected(rows, table, issues, trial)
            if len(rows) in seen_sizes:
                continue
            seen_sizes[len(rows)] = frac
            # a configured fraction is kept as written; an image count becomes its share
            fraction = float(frac) if isinstance(frac, float) else round(len(rows) / len(train), 4)
            for spec in specs.values():
                units.append(Unit(trial, fraction, seed, spec, np.asarray(rows), np.asarray(test)))
    return Plan(specs=specs, units=units, bootstrap=config["bootstrap"])


def _check_file_names(specs: dict[str, ModelSpec]) -> None:
    seen: dict[str, str] = {}
    for spec in specs.values():
        safe = layout.safe_name(spec.name)
        if spec.kind == "classical" and safe.startswith("cnn-"):
            raise UserError(f"model {spec.name!r}: classical names may not start with 'cnn-' (the CNNs' file names)")
        if safe in seen and seen[safe] != spec.name:
            raise UserError(f"models {seen[safe]!r} and {spec.name!r} would share the file name {safe!r}; rename one")
        seen[safe] = spec.name


def drop_suspected(train_rows, table: pd.DataFrame, issues: pd.DataFrame | None, trial: int,
                   tasks=("gender", "age")) -> np.ndarray:
    """The training rows without the faces suspected in the training part of ``trial``.

    For ``data.label_errors = "drop-train"``: a face whose gender or age label is
    doubted (``tasks``) leaves the training rows of every model of that trial; the
    test part is never touched.

    Parameters
    ----------
    train_rows : array of int
        Positions into ``table`` (a trial's training part or a fraction of it).
    table : DataFrame with ``image_id``
    issues : DataFrame or None
        :func:`suspect_labels_for_run`'s table (None or empty: nothing dropped).
    trial : int
    tasks : tuple of str

    Returns
    -------
    rows : ndarray of int
        ``train_rows`` in their order, the suspected ones left out.
    """
    rows = np.asarray(train_rows, dtype=np.int64)
    if issues is None or not len(issues):
        return rows
    doubted = issues[(issues["trial"] == trial) & (issues["part"] == "train") & issues["task"].isin(tasks)]
    drop = table["image_id"].to_numpy()[rows]
    return rows[~np.isin(drop, doubted["image_id"].to_numpy())]


__all__ = ["ModelSpec", "Plan", "Unit", "classical_spec", "cnn_spec", "definition_digest", "drop_suspected", "make_plan",
           "model_specs"]
