"""The benchmark configuration: defaults, presets, TOML files and ``--set`` overrides.

Everything a user can vary lives here. Resolution order: built-in defaults <
preset (``presets/<name>.toml``) < the user's TOML file (which may name a
``preset`` to start from) < ``--set key=value`` overrides < command-line flags
(``--data``, ``--out``, ``--dask``). :func:`load_config` applies the file, the
overrides and the flags to a partial config; :func:`resolve` completes any partial
config from the defaults and its preset and validates it, once. Any bad key or value
raises :class:`~facebench.errors.UserError` naming the key, the value and what is
allowed.
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

from facebench.errors import UserError
from facebench.machine import usable_cores

PRESETS = ("quick", "standard", "seed", "full")
#: ``data.label_detector`` -> the registry model whose features the label detector uses
#: ("auto": dlib128 where the pretrained extra is installed, else hog+lbp+color).
DETECTOR_MODELS = {"hog+lbp+color": "hog+lbp+color+svm", "dlib128": "dlib128+svm"}
LABEL_DETECTORS = ("auto", *DETECTOR_MODELS)
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
    # svm_backend: the library of the RBF SVC / SVR heads: "auto" (oneDAL where scikit-learn-intelex
    # is installed, else libsvm), "onedal" or "libsvm"; part of each such unit's definition
    "svm_backend": "auto",
    # label_errors: "keep" (look for suspected label errors and report them), "drop-train" (also
    # leave the suspected training faces out of every model's training rows) or "off"
    # label_gender_threshold: a gender label is suspected when the detector's out-of-fold
    # probability of it is below this; an age label when |given - predicted| exceeds both
    # label_age_k robust standard deviations (at that predicted age) and label_age_min_years
    # label_detector: the detector's features: "hog+lbp+color", "dlib128" (dlib's pretrained
    # descriptor, the pretrained extra) or "auto" (dlib128 where the extra is installed)
    # exclude: a CSV (e.g. a reviewed label_issues.csv) whose image_id column lists files to leave out
    # near_duplicate_bits: faces whose perceptual hashes (mirror included) differ by at most this many
    # of 64 bits are candidates, besides each face's nearest by thumbnail; -1: not looked for
    # near_duplicate_similarity: a candidate pair whose aligned correlation of detail reaches this is
    # one photo, kept whole on one side of every split
    # near_duplicate_labels: a near-duplicate group whose labels disagree is kept ("keep-all") or
    # left out ("keep-none"), as exact duplicates with disagreeing labels are
    "data": {"path": "", "max_images": 0, "label_errors": "keep", "label_gender_threshold": 0.4,
             "label_age_k": 3.0, "label_age_min_years": 5.0, "label_detector": "auto", "exclude": "",
             "near_duplicate_bits": 2, "near_duplicate_similarity": 0.82, "near_duplicate_labels": "keep-all"},
    "features": {"image_size": 64, "color": "gray"},
    "models": {"gender": ["dummy"], "age": ["dummy"], "cnn": []},
    # per-CNN overrides of facebench.cnn.default_params(name), e.g. [cnn.default] epochs = 8,
    # and CNN variants: [cnn.wide] base = "default", filters = [32, 64, 128, 256]
    "cnn": {},
    # classical variants: [classical.svr-c10] base = "hog6+lbp+svr", params = { C = 10.0 }
    "classical": {},
}

#: Tables whose keys are names the user chooses (checked by validate, not against DEFAULTS).
FREE_TABLES = ("cnn", "classical")

#: What a run does about suspected label errors (``data.label_errors``).
LABEL_ERRORS = ("keep", "drop-train", "off")

#: Keys that decide the splits: a run directory refuses a change of any of them.
SPLIT_KEYS = ("seed", "test_size", "data.path", "data.max_images", "data.exclude", "data.near_duplicate_bits",
              "data.near_duplicate_similarity", "data.near_duplicate_labels")

#: What a run does with a near-duplicate group whose labels disagree (``data.near_duplicate_labels``).
NEAR_DUPLICATE_LABELS = ("keep-all", "keep-none")

# Keys whose value does not change results: a resumed run may differ in them.
EXECUTION_KEYS = ("n_jobs", "dask", "out", "description", "preset")


def load_config(preset=None, path=None, overrides=(), data=None, out=None, dask=None) -> dict:
    """Resolve and validate a configuration; see the module docstring for the order.

    ``preset`` (the ``--preset`` flag) wins over a ``preset`` named in the file;
    ``data`` / ``out`` / ``dask`` (the flags), when given, over the file's values.
    """
    return resolve(assemble(path, preset, overrides, data, out, dask, set_key))


def assemble(path, preset, overrides, data, out, dask, setter) -> dict:
    """A partial config from a TOML file, ``--preset``, ``--set`` overrides (through ``setter``,
    which checks the keys) and the ``--data`` / ``--out`` / ``--dask`` flags; not yet resolved."""
    config = _read_toml(Path(path)) if path is not None else {}
    if preset is not None:
        config["preset"] = preset
    for item in overrides or ():
        key, value = parse_override(item)
        setter(config, key, value)
    for key, flag in (("out", out), ("dask", dask)):
        if flag is not None:
            config[key] = str(flag)
    if data is not None:
        if not isinstance(config.get("data"), dict):
            config["data"] = {}
        config["data"]["path"] = str(data)
    return config


class Resolved(dict):
    """A configuration completed from its preset and validated (what :func:`resolve` returns).

    It remembers what it held when it was resolved, so resolving it again costs nothing
    while it is unchanged, and a changed one is resolved and validated anew.
    """

    def __init__(self, config: dict):
        super().__init__(config)
        self.digest = _digest(self)

    @property
    def unchanged(self) -> bool:
        return _digest(self) == getattr(self, "digest", None)

    def __reduce__(self):  # travels to workers as what it is, resolved
        return Resolved, (dict(self),)


def _digest(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def resolve(config: dict) -> Resolved:
    """Complete a (possibly partial) config from ``DEFAULTS`` and its preset; validate it once.

    ``{"preset": "quick", "data": {"path": "faces/"}}`` gives the whole ``quick``
    configuration on ``faces/``; a resolved config resolves to itself.
    """
    if isinstance(config, Resolved) and config.unchanged:
        return config
    if not isinstance(config, dict):
        raise UserError(f"config = {config!r} is invalid: expected a table of keys")
    name = config.get("preset") or DEFAULT_PRESET
    if not isinstance(name, str):
        raise UserError(f"config key 'preset' = {name!r} is invalid: expected one of {', '.join(PRESETS)}")
    full = merge(merge(DEFAULTS, preset_config(name)), config)
    full["preset"] = name
    _leave_out_unavailable(full, config)
    return Resolved(validate(full))


def _leave_out_unavailable(full: dict, given: dict) -> None:
    """Take out of the preset's model lists those whose optional extra is missing, with one log line.

    A list the user gave keeps them: validation then stops with what to install.
    """
    from facebench.baselines.registry import check_available

    left_out = []
    for task in ("gender", "age"):
        if task in (given.get("models") or {}) or not isinstance(full["models"].get(task), list):
            continue
        kept = []
        for name in full["models"][task]:
            try:
                check_available(name)
            except (UserError, ValueError) as exc:
                if isinstance(exc, UserError):
                    left_out.append((name, str(exc).split(": ", 1)[-1]))
                    continue
            kept.append(name)
        full["models"][task] = kept
    if left_out:
        import logging

        logging.getLogger("facebench.config").warning(
            "preset %r: left out %s, which need the pretrained extra: %s", full["preset"],
            ", ".join(n for n, _ in left_out), left_out[0][1])


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
    """Set ``a.b.c = value`` in a (possibly partial) config, creating tables on the way.

    Every part must be a key of ``DEFAULTS`` (any name below ``cnn.``, checked later).
    """
    parts = dotted.split(".")
    node, schema = config, DEFAULTS
    for i, part in enumerate(parts):
        where = ".".join(parts[: i + 1])
        if schema is not None and part not in schema:
            raise UserError(f"--set {dotted}: config key {where!r} is unknown{_suggest(part, schema)}")
        if i == len(parts) - 1:
            break
        if schema is not None and not isinstance(schema[part], dict):
            raise UserError(f"--set {dotted}: config key {where!r} is a value, not a table")
        schema = None if schema is None or where in FREE_TABLES else schema[part]
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def validate(config: dict) -> dict:
    """Check every key and value; return the config with values normalised."""
    _check_keys(config, DEFAULTS, "")
    c = config

    def need(cond, key, value, allowed):
        if not cond:
            raise UserError(f"config key {key!r} = {value!r} is invalid: expected {allowed}")

    need(isinstance(c["trials"], int) and not isinstance(c["trials"], bool) and 1 <= c["trials"] <= 100,
         "trials", c["trials"], "1-100")
    check_shared(c, need)
    fr = c["fractions"]
    need(isinstance(fr, list) and fr, "fractions", fr, "a non-empty list")
    for f in fr:
        ok = (isinstance(f, float) and 0 < f <= 1) or (isinstance(f, int) and not isinstance(f, bool) and f >= 1)
        need(ok, "fractions", f, "fractions in (0, 1.0] or whole image counts >= 1 (e.g. 5000)")
    c["fractions"] = sorted({float(f) if isinstance(f, float) else int(f) for f in fr}, key=float)
    need(c["data"]["label_errors"] in LABEL_ERRORS, "data.label_errors", c["data"]["label_errors"],
         " | ".join(repr(m) for m in LABEL_ERRORS))
    _check_label_detector(c["data"]["label_detector"])
    for key, ok, allowed in (("label_gender_threshold", lambda v: 0 < v < 1, "a probability in (0, 1), e.g. 0.4"),
                             ("label_age_k", lambda v: v > 0, "a number of robust standard deviations > 0, e.g. 3"),
                             ("label_age_min_years", lambda v: v >= 0, "a number of years >= 0, e.g. 5")):
        v = c["data"][key]
        need(isinstance(v, (int, float)) and not isinstance(v, bool) and ok(v), f"data.{key}", v, allowed)
    _check_svm_backend(c["svm_backend"])

    _check_models(c, need)
    return c


def check_shared(c: dict, need) -> None:
    """The keys a run and a sweep share, checked and normalised in place: the seed, the
    bootstrap, the workers, the split and the data, the features' image size and colour.

    ``need(condition, key, value, allowed)`` raises the caller's one-line error.
    """
    for key in ("seed", "bootstrap", "n_jobs"):
        need(isinstance(c[key], int) and not isinstance(c[key], bool), key, c[key], "an integer")
    need(c["bootstrap"] == 0 or 100 <= c["bootstrap"] <= 100_000, "bootstrap", c["bootstrap"],
         "0 (no intervals) or 100-100000 resamples")
    most = usable_cores() * 4
    need(c["n_jobs"] == -1 or 1 <= c["n_jobs"] <= most, "n_jobs", c["n_jobs"],
         f"-1 (every core) or a count of processes from 1 to {most}")
    need(isinstance(c["test_size"], float) and 0.05 <= c["test_size"] <= 0.5, "test_size", c["test_size"],
         "a fraction between 0.05 and 0.5")
    data = c["data"]
    for key, what in (("path", "a path"), ("exclude", "a path to a CSV file")):
        need(isinstance(data[key], str), f"data.{key}", data[key], what)
        if data[key].strip():  # one spelling per file: absolute, no trailing slash
            data[key] = str(Path(data[key].strip()).expanduser().resolve())
    mi = data["max_images"]
    need(isinstance(mi, int) and not isinstance(mi, bool) and mi >= 0, "data.max_images", mi,
         "0 (all) or a positive count")
    bits = c["data"]["near_duplicate_bits"]
    need(isinstance(bits, int) and not isinstance(bits, bool) and -1 <= bits <= 16, "data.near_duplicate_bits",
         bits, "-1 (not looked for) or 0-16 bits of 64")
    sim = c["data"]["near_duplicate_similarity"]
    need(isinstance(sim, (int, float)) and not isinstance(sim, bool) and 0 < sim <= 1,
         "data.near_duplicate_similarity", sim, "a correlation above 0 and at most 1 (0.82 measured)")
    need(c["data"]["near_duplicate_labels"] in NEAR_DUPLICATE_LABELS, "data.near_duplicate_labels",
         c["data"]["near_duplicate_labels"], " | ".join(repr(m) for m in NEAR_DUPLICATE_LABELS))
    size = c["features"]["image_size"]
    need(isinstance(size, int) and not isinstance(size, bool) and 16 <= size <= 256, "features.image_size", size,
         "16-256 pixels")
    need(c["features"]["color"] in ("gray", "rgb"), "features.color", c["features"]["color"], "'gray' or 'rgb'")


def _check_svm_backend(value) -> None:
    from facebench.baselines.svm_backend import BACKENDS, resolve

    if value not in BACKENDS:
        raise UserError(f"config key 'svm_backend' = {value!r} is invalid: expected "
                        + " | ".join(repr(b) for b in BACKENDS))
    try:
        resolve(value)
    except ValueError as exc:
        raise UserError(f"config key 'svm_backend' = {value!r} is invalid here: {exc}") from None


def _check_label_detector(value) -> None:
    from facebench.baselines.registry import check_available

    if value not in LABEL_DETECTORS:
        raise UserError(f"config key 'data.label_detector' = {value!r} is invalid: expected "
                        + " | ".join(repr(d) for d in LABEL_DETECTORS))
    if value != "auto":
        check_available(DETECTOR_MODELS[value])


def _check_models(c: dict, need) -> None:
    """Model names, classical variants and CNN tables (presets' overrides and variants)."""
    from facebench.baselines import list_all, list_models
    from facebench.compare.planning.variants import cnn_presets
    from facebench.compare.planning.variants import check_classical_variant

    need(isinstance(c["classical"], dict), "classical", c["classical"], "a table of variants")
    known = list_all()
    for name in list(c["classical"]):
        c["classical"][name] = check_classical_variant(name, c["classical"][name], known)
    from facebench.baselines import MODEL_TASKS
    from facebench.baselines.registry import check_available

    for task in ("gender", "age"):
        models = c["models"][task]
        need(isinstance(models, list), f"models.{task}", models, "a list of model names")
        allowed = list_models(task) + [v for v, d in c["classical"].items() if task in MODEL_TASKS[d["base"]]]
        for m in models:
            need(isinstance(m, str) and m in allowed, f"models.{task}", m,
                 "one of " + ", ".join(allowed) + " (or a variant defined in [classical.NAME])")
            check_available(c["classical"][m]["base"] if m in c["classical"] else m)
    presets = cnn_presets()
    for name, params in c["cnn"].items():
        need(isinstance(params, dict), f"cnn.{name}", params, "a table of parameters")
        if name in presets:
            need("base" not in params, f"cnn.{name}.base", params.get("base"),
                 f"no base: {name!r} is a CNN preset (name a variant otherwise)")
        else:
            need("base" in params, f"cnn.{name}", params,
                 f"a table named after a CNN ({', '.join(presets)}) or a variant with base = one of them")
            need(params["base"] in presets, f"cnn.{name}.base", params["base"], "one of " + ", ".join(presets))
        base = params.get("base", name)
        check_cnn_params(name, base, {k: v for k, v in params.items() if k != "base"})
    cnns = c["models"]["cnn"]
    need(isinstance(cnns, list), "models.cnn", cnns, "a list of CNN names")
    variants = [n for n, p in c["cnn"].items() if "base" in p]
    for m in cnns:
        need(m in presets or m in variants, "models.cnn", m,
             "one of " + ", ".join(presets + variants) + " (or a variant defined in [cnn.NAME] with base)")
    need(bool(c["models"]["gender"] or c["models"]["age"] or cnns), "models", c["models"], "at least one model")


def check_cnn_params(name: str, base: str, params: dict) -> None:
    """The CNN module checks; this only says it as a config key."""
    from facebench.cnn import ParamError, resolve_params

    try:
        resolve_params(base, params)
    except ParamError as exc:
        key = f"cnn.{name}.{exc.key}"
        if exc.unknown:
            hint = f" (did you mean {exc.suggestion!r}?)" if exc.suggestion else ""
            raise UserError(f"config key {key!r} is unknown{hint}; allowed: {', '.join(sorted(exc.allowed))}") from None
        raise UserError(f"config key {key!r} = {exc.value!r} is invalid: expected {exc.expected}") from None


def _check_keys(node: dict, schema: dict, prefix: str) -> None:
    for key, value in node.items():
        full = f"{prefix}{key}"
        if key not in schema:
            raise UserError(f"config key {full!r} is unknown{_suggest(key, schema)}")
        if isinstance(schema[key], dict) and schema[key] and full not in FREE_TABLES:
            if not isinstance(value, dict):
                raise UserError(f"config key {full!r} = {value!r} is invalid: expected a table")
            _check_keys(value, schema[key], f"{full}.")


def _suggest(key, options) -> str:
    close = difflib.get_close_matches(str(key), [str(o) for o in options], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _read_toml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"--config {path}: no such file") from None
    except UnicodeDecodeError:
        raise UserError(f"--config {path}: not a text TOML file") from None
    except OSError as exc:
        raise UserError(f"--config {path}: cannot read ({exc.strerror or exc})") from None
    if "\x00" in text:
        raise UserError(f"--config {path}: not a text TOML file")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"--config {path}: not valid TOML ({exc})") from None


def dumps(config: dict) -> str:
    return tomli_w.dumps(config)


def science_digest(config: dict) -> str:
    """Digest of everything that changes results (not execution settings)."""
    return hashlib.sha256(json.dumps(_science(config), sort_keys=True, default=str).encode()).hexdigest()[:16]


def config_diff(old: dict, new: dict) -> list[str]:
    """The science keys whose values differ, one ``"key: old -> new"`` line each (dotted keys, sorted)."""
    flat_old, flat_new = _flatten(_science(old)), _flatten(_science(new))
    lines = []
    for key in sorted(set(flat_old) | set(flat_new)):
        a, b = flat_old.get(key, _UNSET), flat_new.get(key, _UNSET)
        if _show(a) != _show(b):
            lines.append(f"{key}: {_show(a)} -> {_show(b)}")
    return lines


_UNSET = object()


def _science(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in EXECUTION_KEYS}


def _flatten(node: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in node.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _show(value) -> str:
    return "(unset)" if value is _UNSET else json.dumps(value, sort_keys=True, default=str)
