"""The sweep configuration: what is searched, how, for how long, and on which data.

A sweep config is TOML (``facebench sweep --config sweep.toml`` or ``--preset NAME``)::

    base = "cnn:default"        # a CNN preset ("cnn:NAME") or a classical model ("hog6+lbp+svr")
    method = "tpe"              # grid | random | tpe | one-at-a-time
    n = 24                      # points searched, besides the base's own (grid: every combination)
    budget_minutes = 60         # no point starts after this; every finished one is kept
    objective = "age_mae"       # age_mae | gender_accuracy | both
    [fixed]                     # parameters every point has, the base's own point included
    image_size = 64
    [space]                     # a list of choices, or a range {low, high, log, step}
    kernel_size = [3, 5]
    learning_rate = { low = 3e-4, high = 3e-3, log = true }

Resolution order as for runs: defaults < preset < file < ``--set`` < flags. Every bad key
or value raises :class:`~facebench.errors.UserError` naming it and what is allowed.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import tomllib
from importlib import resources

from facebench.errors import UserError
from facebench.vocab import OBJECTIVE_CHOICES, OBJECTIVES, TASKS
from facebench.compare.planning.config import EXECUTION_KEYS, assemble, check_shared, merge

SWEEP_PRESETS = ("seed-scope",)
METHODS = ("grid", "random", "tpe", "one-at-a-time")
#: Values a range gives where every value must be listed (grid, one-at-a-time) and it has no step.
RANGE_POINTS = 5

SWEEP_DEFAULTS: dict = {
    "preset": "",
    "description": "",
    "base": "",
    "method": "tpe",
    "n": 0,
    "budget_minutes": 60.0,
    "objective": "age_mae",
    "prune_after": 3,
    "seed": 0,
    "test_size": 0.2,
    "validation": 0.2,
    "bootstrap": 1000,
    "n_jobs": -1,
    "dask": "",
    "out": "",
    "data": {"path": "", "max_images": 0, "exclude": "", "near_duplicate_bits": 2, "near_duplicate_similarity": 0.82,
             "near_duplicate_labels": "keep-all"},
    "features": {"image_size": 64, "color": "gray"},
    "fixed": {},
    "space": {},
}
#: Keys that do not change a sweep's points: a run's, and how long the search goes on.
SWEEP_EXECUTION_KEYS = (*EXECUTION_KEYS, "n", "budget_minutes")


def load_sweep_config(preset=None, path=None, overrides=(), data=None, out=None, dask=None) -> dict:
    """Resolve and validate a sweep config, in the order the module docstring gives."""
    return resolve_sweep(assemble(path, preset, overrides, data, out, dask, _set))


def resolve_sweep(config: dict) -> dict:
    if not isinstance(config, dict):
        raise UserError(f"sweep config = {config!r} is invalid: expected a table of keys")
    name = config.get("preset") or ""
    full = merge(SWEEP_DEFAULTS, sweep_preset(name) if name else {})
    full = merge(full, config)
    return validate_sweep(full)


def sweep_preset(name: str) -> dict:
    if name not in SWEEP_PRESETS:
        raise UserError(f"sweep preset {name!r} is unknown; choose one of: {', '.join(SWEEP_PRESETS)}")
    text = resources.files("facebench.compare").joinpath("presets", f"sweep-{name}.toml").read_text()
    return tomllib.loads(text)


def _set(config: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    if parts[0] not in SWEEP_DEFAULTS:
        raise UserError(f"--set {dotted}: sweep config key {parts[0]!r} is unknown; "
                        f"allowed: {', '.join(SWEEP_DEFAULTS)}")
    node = config
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


# --------------------------------------------------------------------------- validation


def validate_sweep(c: dict) -> dict:
    def need(cond, key, value, allowed):
        if not cond:
            raise UserError(f"sweep config key {key!r} = {value!r} is invalid: expected {allowed}")

    for key, value in c.items():
        if key not in SWEEP_DEFAULTS:
            import difflib

            close = difflib.get_close_matches(key, list(SWEEP_DEFAULTS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(f"sweep config key {key!r} is unknown{hint}; allowed: {', '.join(SWEEP_DEFAULTS)}")
    for key in ("data", "features"):
        need(isinstance(c[key], dict), key, c[key], "a table")
        extra = sorted(set(c[key]) - set(SWEEP_DEFAULTS[key]))
        if extra:
            raise UserError(f"sweep config key '{key}.{extra[0]}' is unknown; allowed: "
                            f"{', '.join(SWEEP_DEFAULTS[key])}")
    need(c["method"] in METHODS, "method", c["method"], " | ".join(METHODS))
    need(c["objective"] in OBJECTIVE_CHOICES, "objective", c["objective"], " | ".join(OBJECTIVE_CHOICES))
    need(_is_int(c["n"]) and 0 <= c["n"] <= 10_000, "n", c["n"], "a count of points (0: every grid combination)")
    if c["method"] in ("tpe", "random"):
        need(c["n"] >= 1, "n", c["n"], f"at least 1 point for method {c['method']!r}")
    need(isinstance(c["budget_minutes"], (int, float)) and not isinstance(c["budget_minutes"], bool)
         and c["budget_minutes"] > 0, "budget_minutes", c["budget_minutes"], "a positive number of minutes")
    c["budget_minutes"] = float(c["budget_minutes"])
    check_shared(c, need)
    need(_is_int(c["prune_after"]) and c["prune_after"] >= 0, "prune_after", c["prune_after"],
         "the epoch of a CNN point's first pruning check (0: no pruning)")
    need(isinstance(c["validation"], float) and 0.05 <= c["validation"] <= 0.5, "validation", c["validation"],
         "a fraction between 0.05 and 0.5")
    need(isinstance(c["fixed"], dict), "fixed", c["fixed"], "a table of parameters")
    need(isinstance(c["space"], dict) and c["space"], "space", c["space"], "a table with at least one parameter")
    _check_base(c, need)
    for name, spec in c["space"].items():
        c["space"][name] = _check_dimension(name, spec, c["method"])
    overlap = sorted(set(c["fixed"]) & set(c["space"]))
    need(not overlap, "fixed", overlap, "parameters not also in [space]")
    _check_points(c)
    return c


def _check_base(c, need) -> None:
    from facebench.baselines import MODEL_TASKS, list_all
    from facebench.compare.planning.variants import cnn_presets

    base = c["base"]
    presets = cnn_presets()
    allowed = [f"cnn:{p}" for p in presets] + list_all()
    need(isinstance(base, str) and base in allowed, "base", base, "one of " + ", ".join(allowed))
    tasks = TASKS if is_cnn(c) else MODEL_TASKS[base]
    wanted = TASKS if c["objective"] == "both" else (OBJECTIVES[c["objective"]].task,)
    need(set(wanted) <= set(tasks), "objective", c["objective"],
         f"an objective {base!r} is trained for (it does {', '.join(tasks)})")


def _check_dimension(name: str, spec, method: str):
    where = f"space.{name}"
    if isinstance(spec, list):
        if not spec:
            raise UserError(f"sweep config key {where!r} = [] is invalid: expected at least one choice")
        encoded = [encode(v) for v in spec]
        if len(set(encoded)) != len(encoded):
            raise UserError(f"sweep config key {where!r} = {spec!r} is invalid: a choice is listed twice")
        return list(spec)
    if not isinstance(spec, dict):
        raise UserError(f"sweep config key {where!r} = {spec!r} is invalid: expected a list of choices or a "
                        "range {low, high, log, step}")
    extra = sorted(set(spec) - {"low", "high", "log", "step"})
    if extra:
        raise UserError(f"sweep config key '{where}.{extra[0]}' is unknown; allowed: low, high, log, step")
    low, high, log, step = spec.get("low"), spec.get("high"), spec.get("log", False), spec.get("step")
    if not (_is_number(low) and _is_number(high) and low < high):
        raise UserError(f"sweep config key {where!r} = {spec!r} is invalid: expected numbers low < high")
    if not isinstance(log, bool):
        raise UserError(f"sweep config key '{where}.log' = {log!r} is invalid: expected true or false")
    if step is not None and not (_is_number(step) and step > 0):
        raise UserError(f"sweep config key '{where}.step' = {step!r} is invalid: expected a positive number")
    if step is not None and log:
        raise UserError(f"sweep config key {where!r}: give log or step, not both")
    if log and low <= 0:
        raise UserError(f"sweep config key '{where}.low' = {low!r} is invalid: a log range needs low > 0")
    return {"low": low, "high": high, "log": log, **({"step": step} if step is not None else {})}


def _check_points(c: dict) -> None:
    """Every value a point may take must build the base: checked now, not an hour in."""
    for name, spec in c["space"].items():
        values = spec if isinstance(spec, list) else [spec["low"], spec["high"]]
        if isinstance(spec, dict) and is_int_range(spec):
            values = [int(v) for v in values]
        for value in values:
            check_point(c, {name: value}, where=f"space.{name}", shapes=False)
    check_point(c, {}, where="fixed")


def check_point(c: dict, params: dict, where: str, shapes: bool = True) -> None:
    """Raise :class:`UserError` when the base with ``fixed`` and ``params`` is not a valid model.

    ``shapes=False`` lets through a CNN too deep for its input: that depends on the other
    parameters of a point, so such a point is recorded as failed when it is drawn.
    """
    if not shapes and is_cnn(c):
        from facebench.cnn import ParamError, resolve_params

        try:
            resolve_params(cnn_name(c), _plain({**c["fixed"], **params}))
            return
        except ParamError as exc:
            if exc.key == "image_size" and "large enough" in str(exc.expected):
                return  # too deep for the input with this value: depends on the point
    try:
        model_definition(c, params)
    except UserError as exc:
        text = str(exc)
        text = text[len("config key "):] if text.startswith("config key ") else text
        raise UserError(f"sweep config key {where!r}: {text}") from None


def model_definition(c: dict, params: dict) -> dict:
    """A point as a run config's model table: ``{"kind", "base", "params"}``, validated.

    CNN: ``params`` are keys of :func:`facebench.cnn.resolve_params`. Classical: full
    scikit-learn names (a unique ending is resolved).
    """
    values = {**c["fixed"], **params}
    if is_cnn(c):
        from facebench.compare.planning import check_cnn_params

        base = cnn_name(c)
        check_cnn_params("sweep-point", base, _plain(values))
        return {"kind": "cnn", "base": base, "params": _plain(values)}
    from facebench.baselines import list_all
    from facebench.compare.planning.variants import check_classical_variant

    variant = check_classical_variant("sweep-point", {"base": c["base"], "params": _plain(values)}, list_all())
    return {"kind": "classical", "base": c["base"], "params": variant["params"]}


def is_cnn(c: dict) -> bool:
    return c["base"].startswith("cnn:")


def cnn_name(c: dict) -> str:
    return c["base"][len("cnn:"):]


# --------------------------------------------------------------------------- points


def encode(value):
    """A choice as Optuna stores it: lists as their JSON text, other values as they are."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def decode_value(spec, value):
    if isinstance(spec, list) and isinstance(value, str):
        for choice in spec:
            if encode(choice) == value:
                return copy.deepcopy(choice)
    return value


def is_int_range(spec: dict) -> bool:
    return all(_is_int(spec.get(k, 1)) for k in ("low", "high", "step"))


def listed_values(spec) -> list:
    """Every value of a dimension, where a method must list them (grid, one-at-a-time)."""
    if isinstance(spec, list):
        return list(spec)
    low, high, step = spec["low"], spec["high"], spec.get("step")
    if step is not None:
        count = int(math.floor((high - low) / step + 1e-9)) + 1
        values = [low + i * step for i in range(count)]
    elif spec["log"]:
        values = [low * (high / low) ** (i / (RANGE_POINTS - 1)) for i in range(RANGE_POINTS)]
    else:
        values = [low + (high - low) * i / (RANGE_POINTS - 1) for i in range(RANGE_POINTS)]
    if is_int_range(spec):
        return sorted({int(round(v)) for v in values})
    return [float(f"{v:.6g}") for v in values]


def grid_points(c: dict) -> list[dict]:
    names = list(c["space"])
    return [dict(zip(names, combo)) for combo in itertools.product(*(listed_values(c["space"][n]) for n in names))]


def one_at_a_time_points(c: dict, base_values: dict) -> list[dict]:
    """Each parameter varied over its values with every other at the base's value."""
    points = []
    for name, spec in c["space"].items():
        for value in listed_values(spec):
            if encode(value) != encode(base_values.get(name)):
                points.append({name: value})
    return points


def _plain(values: dict) -> dict:
    return {k: copy.deepcopy(v) for k, v in values.items()}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def science(c: dict) -> dict:
    """The keys that decide the points' results (a resumed sweep must match them)."""
    return {k: v for k, v in c.items() if k not in SWEEP_EXECUTION_KEYS}
