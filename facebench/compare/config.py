"""The benchmark configuration: defaults, presets, TOML files and ``--set`` overrides.

Everything a user can vary lives here. Resolution order: built-in defaults <
preset (``presets/<name>.toml``) < the user's TOML file (which may name a
``preset`` to start from) < ``--set key=value`` overrides < command-line flags
(``--data``, ``--out``, ``--dask``). The result is validated once; any bad key or
value raises :class:`~facebench.errors.UserError` naming the key, the value and
what is allowed.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import tomllib
from importlib import resources
from pathlib import Path

import tomli_w

from ..errors import UserError

PRESETS = ("quick", "standard", "seed", "full")
DEFAULT_PRESET = "standard"

DEFAULTS: dict = {
    "preset": "",
    "description": "",
    "trials": 1,
    "seed": 0,
    "fractions": [1.0],
    "test_size": 0.2,
    "bootstrap": 1000,
    "n_jobs": -1,
    "dask": "",
    "out": "",
    "data": {"path": "", "max_images": 0},
    "features": {"image_size": 64, "color": "gray"},
    "models": {"gender": ["dummy"], "age": ["dummy"], "cnn": []},
    # per-CNN overrides of facebench.cnn.default_params(name), e.g. [cnn.default] epochs = 8
    "cnn": {},
}

# Keys whose value does not change results: a resumed run may differ in them.
EXECUTION_KEYS = ("n_jobs", "dask", "out", "description", "preset")


def load_config(preset=None, path=None, overrides=(), data=None, out=None, dask=None) -> dict:
    """Resolve and validate a configuration; see the module docstring for the order."""
    user = {}
    if path is not None:
        user = _read_toml(Path(path))
        if preset is None:
            preset = user.get("preset") or None
    name = preset or DEFAULT_PRESET
    config = merge(DEFAULTS, preset_config(name))
    config["preset"] = name
    config = merge(config, user)
    config["preset"] = name
    for item in overrides or ():
        key, value = parse_override(item)
        set_key(config, key, value)
    if data is not None:
        config["data"]["path"] = str(data)
    if out is not None:
        config["out"] = str(out)
    if dask is not None:
        config["dask"] = str(dask)
    return validate(config)


def preset_config(name: str) -> dict:
    if name not in PRESETS:
        raise UserError(f"preset {name!r} is unknown; choose one of: {', '.join(PRESETS)}")
    text = resources.files("facebench.compare").joinpath("presets", f"{name}.toml").read_text()
    return tomllib.loads(text)


def merge(base: dict, extra: dict) -> dict:
    """Deep-merge ``extra`` into a copy of ``base`` (tables merge, values replace)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(item: str):
    """``"key.sub=value"`` -> ``("key.sub", value)``, the value read as TOML when it parses."""
    if "=" not in item:
        raise UserError(f"--set {item!r}: expected KEY=VALUE, e.g. --set trials=3")
    key, raw = item.split("=", 1)
    key, raw = key.strip(), raw.strip()
    if not key:
        raise UserError(f"--set {item!r}: empty key")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word such as a path or a model name
    return key, value


def set_key(config: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    node = config
    for i, part in enumerate(parts[:-1]):
        if part not in node or not isinstance(node[part], dict):
            if ".".join(parts[: i + 1]).startswith("cnn."):
                node = node.setdefault(part, {})
                continue
            raise UserError(f"--set {dotted}: unknown config key {'.'.join(parts[: i + 1])!r}{_suggest(part, node)}")
        node = node[part]
    node[parts[-1]] = value


def validate(config: dict) -> dict:
    """Check every key and value; return the config with values normalised."""
    _check_keys(config, DEFAULTS, "")
    c = config

    def need(cond, key, value, allowed):
        if not cond:
            raise UserError(f"config key {key!r} = {value!r} is invalid: expected {allowed}")

    for key in ("trials", "seed", "bootstrap", "n_jobs"):
        need(isinstance(c[key], int) and not isinstance(c[key], bool), key, c[key], "an integer")
    need(1 <= c["trials"] <= 100, "trials", c["trials"], "1-100")
    need(c["bootstrap"] == 0 or 100 <= c["bootstrap"] <= 100_000, "bootstrap", c["bootstrap"],
         "0 (no intervals) or 100-100000 resamples")
    need(c["n_jobs"] != 0, "n_jobs", c["n_jobs"], "a positive count of processes or -1 for all cores")
    need(isinstance(c["test_size"], float) and 0.05 <= c["test_size"] <= 0.5, "test_size", c["test_size"],
         "a fraction between 0.05 and 0.5")
    fr = c["fractions"]
    need(isinstance(fr, list) and fr, "fractions", fr, "a non-empty list")
    for f in fr:
        ok = (isinstance(f, float) and 0 < f <= 1) or (isinstance(f, int) and not isinstance(f, bool) and f >= 1)
        need(ok, "fractions", f, "fractions in (0, 1.0] or whole image counts >= 1 (e.g. 5000)")
    c["fractions"] = sorted({float(f) if isinstance(f, float) else int(f) for f in fr}, key=float)
    need(isinstance(c["data"]["path"], str), "data.path", c["data"]["path"], "a path")
    mi = c["data"]["max_images"]
    need(isinstance(mi, int) and mi >= 0, "data.max_images", mi, "0 (all) or a positive count")
    size = c["features"]["image_size"]
    need(isinstance(size, int) and 16 <= size <= 256, "features.image_size", size, "16-256 pixels")
    need(c["features"]["color"] in ("gray", "rgb"), "features.color", c["features"]["color"], "'gray' or 'rgb'")

    from ..baselines import MODEL_TASKS
    from ..cnn import MODEL_NAMES as CNN_NAMES

    for task in ("gender", "age"):
        models = c["models"][task]
        need(isinstance(models, list), f"models.{task}", models, "a list of model names")
        allowed = sorted(n for n, tasks in MODEL_TASKS.items() if task in tasks)
        for m in models:
            need(m in allowed, f"models.{task}", m, "one of " + ", ".join(allowed))
    cnns = c["models"]["cnn"]
    need(isinstance(cnns, list), "models.cnn", cnns, "a list of CNN names")
    for m in cnns:
        need(m in CNN_NAMES, "models.cnn", m, "one of " + ", ".join(CNN_NAMES))
    need(bool(c["models"]["gender"] or c["models"]["age"] or cnns), "models", c["models"], "at least one model")
    for name, params in c["cnn"].items():
        need(name in CNN_NAMES, f"cnn.{name}", params, "a table named after a CNN: " + ", ".join(CNN_NAMES))
        need(isinstance(params, dict), f"cnn.{name}", params, "a table of parameters")
        _check_cnn_params(name, params)
    return c


def _check_cnn_params(name, params):
    """Unknown keys and plainly wrong types here (with a suggestion); the rest by the CNN module."""
    from ..cnn import default_params, resolve_params

    known = default_params(name)
    for key, value in params.items():
        if key not in known:
            raise UserError(f"config key 'cnn.{name}.{key}' is unknown{_suggest(key, known)}; "
                            f"allowed: {', '.join(sorted(known))}")
        default = known[key]
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if numeric and not is_number and str(value).lower() != "none":
            raise UserError(f"config key 'cnn.{name}.{key}' = {value!r} is invalid: expected a number like {default!r}")
    try:
        resolve_params(name, params)
    except ValueError as exc:
        raise UserError(f"config table [cnn.{name}]: {exc}") from None


def _check_keys(node: dict, schema: dict, prefix: str) -> None:
    for key, value in node.items():
        full = f"{prefix}{key}"
        if key not in schema:
            raise UserError(f"config key {full!r} is unknown{_suggest(key, schema)}")
        if isinstance(schema[key], dict) and schema[key] and full != "cnn":
            if not isinstance(value, dict):
                raise UserError(f"config key {full!r} = {value!r} is invalid: expected a table")
            _check_keys(value, schema[key], f"{full}.")


def _suggest(key, options) -> str:
    close = difflib.get_close_matches(str(key), [str(o) for o in options], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"--config {path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"--config {path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise UserError(f"--config {path}: cannot read ({exc.strerror or exc})") from None


def dumps(config: dict) -> str:
    return tomli_w.dumps(config)


def science_digest(config: dict) -> str:
    """Digest of everything that changes results (not execution settings)."""
    science = {k: v for k, v in config.items() if k not in EXECUTION_KEYS}
    return hashlib.sha256(json.dumps(science, sort_keys=True, default=str).encode()).hexdigest()[:16]
