"""What each method sees, computed from a run's own models: the arrays the report draws.

:func:`compute_run_views` runs at the end of a run: it picks a handful of test faces
across age bands and genders (:func:`pick_faces`), loads the run's models and stores,
through :mod:`facebench.rundir.views`, for every face

- the face as the classical models see it (``features.image_size`` x ``features.color``
  of ``config.toml``), its HOG picture and LBP codes with the parameters of the run's
  own ``HOGFeatures`` / ``LBPFeatures`` steps, and the LBP histograms of four cells
  (:mod:`facebench.baselines.pictures`);
- with a CNN: its input, the Grad-CAM map of each head, its prediction; once per run
  its first-layer filters, and the most active feature maps after each block for the
  first face (:mod:`facebench.cnn.introspect`);
- the predictions of the models ``facebench predict`` uses by default.

:func:`explain_image` does the same for one face (``facebench explain``).
``facebench.reports.drawing`` draws both; it needs neither the models nor TensorFlow.

Arrays (``N`` faces; ``s`` the classical side, ``c`` the CNN's)
-------------------------------------------------------------
``face`` (N, s, s[, 3]) uint8; ``hog`` (N, s, s) float16, each picture divided by its
maximum; ``lbp_codes`` (N, s, s) uint8 (uint16 for more than 256 codes); ``lbp_hist``
(N, 4, n_bins) float32, the cells of ``meta["lbp"]["cells"]``. With a CNN:
``cnn_face`` (N, c, c[, 3]) uint8; ``cam_age``, ``cam_gender`` (N, c, c) uint8, each map
scaled to 0-255 by its maximum, kept in ``cam_top`` (N, 2) float32 (age, gender; 0 when
no region raises the score); ``filters`` (n, kh, kw, in_channels) float32;
``maps_0``, ``maps_1``, ... (4, h, w) float16, each map divided by its largest absolute
value, of the layers ``meta["cnn"]["maps"]`` for face ``meta["detail"]``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facebench.compare.inference.explain_pretrained import add_pretrained, pretrained_model
from facebench.errors import UserError

__all__ = ["N_FACES", "Methods", "compute_run_views", "compute_views", "explain_image", "load_methods", "pick_faces"]

#: Test faces stored for the report.
N_FACES = 6
#: Feature maps kept per block for the detailed face.
MAPS_PER_BLOCK = 4

log = logging.getLogger(__name__)


def pick_faces(table, n: int = N_FACES):
    """Up to ``n`` rows of ``table`` (``path``, ``age``, ``gender``) spread over age bands and genders.

    Bands are visited from young to old, evenly spaced when there are more bands than
    faces, alternating female and male; within a band and gender the first row by
    ``image_id`` (or path) whose file exists is taken. Deterministic.

    Returns
    -------
    pandas.DataFrame
        The chosen rows, in the order they were chosen.
    """
    import pandas as pd

    from facebench.data import age_band

    t = table.dropna(subset=["path", "age", "gender"]).copy()
    if not len(t):
        return t
    t["band"] = age_band(t["age"].to_numpy())
    t = t.sort_values(["image_id" if "image_id" in t.columns else "path"], kind="stable")
    t = t[[Path(str(p)).is_file() for p in t["path"]]]
    bands = sorted(t["band"].unique(), key=lambda b: int(str(b).rstrip("+").split("-")[0]))
    if not bands:
        return t.iloc[:0]
    picks = np.unique(np.linspace(0, len(bands) - 1, min(n, len(bands))).round().astype(int))
    order = [bands[i] for i in picks] + [b for i, b in enumerate(bands) if i not in set(picks)]
    chosen, used = [], set()
    gender = 1
    while len(chosen) < n and len(used) < len(t):
        progress = False
        for band in order:
            if len(chosen) >= n:
                break
            for g in (gender, 1 - gender):
                rows = t[(t["band"] == band) & (t["gender"].astype(int) == g) & ~t.index.isin(used)]
                if len(rows):
                    chosen.append(rows.index[0])
                    used.add(rows.index[0])
                    gender = 1 - g
                    progress = True
                    break
        if not progress:
            break
    return pd.DataFrame(t.loc[chosen]).reset_index(drop=True)


def _test_faces(run_dir: Path):
    """Test-image rows (path, age, gender[, image_id]) of the run's first trial, or None."""
    from facebench.rundir.read import read_split, read_test_predictions

    s = read_split(run_dir)
    if s is not None:
        return s[(s["part"] == "test") & (s["trial"] == s["trial"].min())]
    preds = read_test_predictions(run_dir)
    if preds is not None:
        if {"path", "age", "gender"} <= set(preds.columns) and len(preds):
            if "trial" in preds.columns:
                preds = preds[preds["trial"] == preds["trial"].min()]
            return preds.drop_duplicates("image_id" if "image_id" in preds.columns else "path")
    return None


def _label(age, gender) -> str:
    return f"{int(age)} y, {'female' if int(gender) == 1 else 'male'}"


# --------------------------------------------------------------------------- the run's methods


@dataclass
class Methods:
    """What the views are computed with.

    Attributes
    ----------
    image_size, color : the classical models' input (``features`` of ``config.toml``).
    hog, lbp : the ``HOGFeatures`` / ``LBPFeatures`` steps pictured (default: the registry's).
    hog_source, lbp_source : where those came from, in words (for the captions).
    cnn : facebench.compare.inference.loading.LoadedModel or None
        The CNN looked into (its ``name``, ``image_size``, ``color`` and ``cnn``).
    predictors : list of LoadedModel
        The models whose predictions are stored with each face (may be empty).
    pretrained : str or None
        A model of the run on dlib's descriptor, whose aligned chips are stored
        (:mod:`facebench.compare.inference.explain_pretrained`).
    """

    image_size: int = 64
    color: str = "gray"
    hog: object = None
    lbp: object = None
    hog_source: str = "the registry's defaults"
    lbp_source: str = "the registry's defaults"
    cnn: object = None
    predictors: list = field(default_factory=list)
    pretrained: str | None = None

    def __post_init__(self):
        from facebench.baselines import HOGFeatures, LBPFeatures

        self.hog = HOGFeatures() if self.hog is None else self.hog
        self.lbp = LBPFeatures() if self.lbp is None else self.lbp


def load_methods(run_dir, with_predictors: bool = True, available: dict | None = None) -> Methods:
    """A run's :class:`Methods`: its feature settings, HOG and LBP steps, first CNN and
    (with ``with_predictors``) the models ``facebench predict`` uses by default.

    ``available`` is the run's :func:`~facebench.compare.inference.loading.available_models`
    where the caller already has it (each unit's files are checked only once).

    Raises
    ------
    UserError
        If ``run_dir`` is not a run directory of this facebench.
    """
    from facebench.baselines import HOGFeatures, LBPFeatures
    from facebench.baselines.pictures import find_steps
    from facebench.compare.inference import loading
    from facebench.rundir.read import read_config

    run_dir = Path(run_dir)
    available = loading.available_models(run_dir) if available is None else available
    methods = Methods()
    try:
        config = read_config(run_dir)
        methods.image_size = int(config["features"]["image_size"])
        methods.color = str(config["features"]["color"])
    except (OSError, KeyError, ValueError, TypeError):
        pass
    classical = sorted((n for n, info in available.items() if info["kind"] == "classical"),
                       key=lambda n: ("hog" not in n and "lbp" not in n, n))
    missing = {"hog": HOGFeatures, "lbp": LBPFeatures}
    for name in classical:
        if not missing:
            break
        model = loading.load_model(name, available[name])
        for estimator in model.estimators.values():
            for key, cls in list(missing.items()):
                steps = find_steps(estimator, cls)
                if steps:
                    setattr(methods, key, steps[0])
                    setattr(methods, f"{key}_source", f"the run's {name}")
                    del missing[key]
    names = list(loading.default_models(run_dir, available)) if with_predictors else []
    cnns = [n for n, info in available.items() if info["kind"] == "cnn"]
    if cnns and cnns[0] not in names:
        names.append(cnns[0])
    loaded = [loading.load_model(n, available[n]) for n in names]
    methods.predictors = loaded if with_predictors else []
    methods.cnn = next((m for m in loaded if m.cnn is not None), None)
    methods.pretrained = pretrained_model(run_dir, available)
    return methods


# --------------------------------------------------------------------------- the arrays


def _predictions(predictors, faces_rgb) -> list[list[dict]]:
    """Per face: ``{"model", "age"?, "gender"?, "p_female"?}`` or ``{"model", "error"}`` for each predictor."""
    out: list[list[dict]] = [[] for _ in faces_rgb]
    for m in predictors:
        try:
            rows = m.predict(list(faces_rgb))
        except Exception as exc:  # noqa: BLE001 - one broken model must not cost the pictures
            rows = [{"error": type(exc).__name__}] * len(faces_rgb)
        for i, row in enumerate(rows):
            out[i].append({"model": m.name, **row})
    return out


def _scaled(a, dtype):
    """``a`` divided by its largest absolute value (unchanged when all zeros), as ``dtype``."""
    a = np.asarray(a, dtype=np.float64)
    top = float(np.abs(a).max()) if a.size else 0.0
    return (a / top if top > 0 else a).astype(dtype)


def compute_views(faces, methods: Methods, detail: int = 0) -> tuple[dict, dict]:
    """The meta data and arrays of the views of some faces.

    Parameters
    ----------
    faces : list of dict
        ``{"image": RGB uint8 array, "label": str or None, "file": str}`` per face.
    methods : Methods
        From :func:`load_methods`, or made by hand.
    detail : int
        The face whose CNN feature maps are kept.

    Returns
    -------
    meta, arrays
        As :func:`facebench.rundir.views.write_views` stores them (see the module docstring).
    """
    from facebench.baselines.pictures import hog_params, hog_picture, lbp_cells, lbp_picture, lbp_settings
    from facebench.data import to_face_array

    if not 0 <= detail < len(faces):
        raise ValueError(f"detail={detail} must index one of the {len(faces)} face(s)")
    size, color = methods.image_size, methods.color
    s = lbp_settings(methods.lbp)
    per_face: dict[str, list] = {k: [] for k in ("face", "hog", "lbp_codes", "lbp_hist")}
    cells = None
    for face in faces:
        x = to_face_array(face["image"], size, color)
        codes, hist = lbp_picture(x, methods.lbp)
        cells = lbp_cells(codes.shape, s["grid"])
        per_face["face"].append(x)
        per_face["hog"].append(_scaled(hog_picture(x, methods.hog), np.float16))
        per_face["lbp_codes"].append(codes)
        per_face["lbp_hist"].append(np.stack([hist[r, c] for _, r, c, _ in cells]).astype(np.float32))
    arrays = {k: np.stack(v) for k, v in per_face.items()}
    n_bins = int(arrays["lbp_hist"].shape[-1])
    arrays["lbp_codes"] = arrays["lbp_codes"].astype(np.uint8 if n_bins <= 256 else np.uint16)
    hog = hog_params(methods.hog)
    meta = {
        "detail": int(detail),
        "classical": {"image_size": int(size), "color": color},
        "hog": {"orientations": hog["orientations"], "pixels_per_cell": list(hog["pixels_per_cell"]),
                "cells_per_block": list(hog["cells_per_block"]), "block_norm": hog["block_norm"],
                "source": methods.hog_source},
        "lbp": {"P": s["P"], "R": s["R"], "method": s["method"], "grid": list(s["grid"]), "n_bins": n_bins,
                "source": methods.lbp_source,
                "cells": [{"label": label, "row": r, "col": c, "box": list(box)} for label, r, c, box in cells]},
        "faces": [{"label": f.get("label"), "file": f.get("file") or ""} for f in faces],
        "cnn": None,
    }
    for entry, preds in zip(meta["faces"], _predictions(methods.predictors, [f["image"] for f in faces])):
        entry["predictions"] = preds
    if methods.cnn is not None:
        _add_cnn(meta, arrays, faces, methods.cnn, detail)
    meta["pretrained"] = None
    if methods.pretrained:
        add_pretrained(meta, arrays, faces, methods.pretrained)
    return meta, arrays


def _add_cnn(meta, arrays, faces, cnn, detail) -> None:
    from facebench.cnn.introspect import cnn_views
    from facebench.data import to_face_array

    inputs, cams, tops = [], {"age": [], "gender": []}, []
    for i, face in enumerate(faces):
        x = to_face_array(face["image"], cnn.image_size, cnn.color)
        v = cnn_views(cnn.cnn, x, maps=i == detail)
        inputs.append(x)
        tops.append([float(v["cam_age"].max()), float(v["cam_gender"].max())])
        for head in cams:
            cams[head].append(np.round(_scaled(v[f"cam_{head}"], np.float64) * 255).astype(np.uint8))
        meta["faces"][i]["cnn"] = {k: v[k] if np.isfinite(v[k]) else None for k in ("age", "p_female")}
        if i == detail:
            filter_layer, filters = v["filters"]
            maps = v["maps"]
            cam_layer = v["cam_layer"]
    arrays["cnn_face"] = np.stack(inputs).astype(np.uint8)
    arrays["cam_age"], arrays["cam_gender"] = np.stack(cams["age"]), np.stack(cams["gender"])
    arrays["cam_top"] = np.asarray(tops, dtype=np.float32)
    arrays["filters"] = np.asarray(filters, dtype=np.float32)
    for k, (_, m) in enumerate(maps):
        arrays[f"maps_{k}"] = np.stack([_scaled(a, np.float16) for a in m[:MAPS_PER_BLOCK]])
    meta["cnn"] = {"name": cnn.name, "image_size": int(cnn.image_size), "color": cnn.color,
                   "cam_layer": cam_layer, "filter_layer": filter_layer, "maps": [name for name, _ in maps]}


# --------------------------------------------------------------------------- entry points


def compute_run_views(run_dir) -> None:
    """Compute and store the report's views of a finished run (``views/`` of the run directory).

    Nothing is written when the run has no readable test face. A saved model that is
    refused or damaged (a :class:`~facebench.errors.UserError` from loading) is a
    warning in the run's log, not an error: the benchmark's results stand without views.
    Views stored from the same faces, models and code (:func:`views_source`) are kept
    as they are, so a resumed run with nothing new loads no model.
    """
    from facebench.compare.inference import loading
    from facebench.data.faces import read_image
    from facebench.rundir.views import read_views, write_views

    run_dir = Path(run_dir)
    table = _test_faces(run_dir)
    if table is None or not len(table):
        return
    picked = pick_faces(table)
    try:
        available = loading.available_models(run_dir)
    except UserError as exc:
        log.warning("the views of what each method sees were not computed: %s", exc)
        return
    source = views_source(run_dir, picked, available)
    stored = read_views(run_dir)
    if stored is not None and stored.meta.get("source") == source:
        log.info("the teaching views are those of the same faces, models and code: kept")
        return
    faces = []
    for _, row in picked.iterrows():
        try:
            image = read_image(row["path"])
        except ValueError:
            continue
        faces.append({"image": image, "label": _label(row["age"], row["gender"]), "file": Path(str(row["path"])).name})
    if not faces:
        return
    try:
        methods = load_methods(run_dir, available=available)
    except UserError as exc:
        log.warning("the views of what each method sees were not computed: %s", exc)
        return
    meta, arrays = compute_views(faces, methods)
    write_views(run_dir, {**meta, "source": source}, arrays)


#: The modules whose code decides the views; a change to any of them recomputes a run's views.
_VIEW_MODULES = ("facebench.compare.inference.explain", "facebench.compare.inference.explain_pretrained",
                 "facebench.baselines.pictures", "facebench.baselines.features", "facebench.baselines.lbp",
                 "facebench.cnn.introspect")


def views_source(run_dir, picked, available: dict) -> str:
    """A digest of everything a run's views are computed from, stored with them.

    The picked faces (file name, bytes, labels), the classical input (``features`` of
    ``config.toml``), each whole saved model's unit and the digest of its manifest
    (which holds its files' checksums), the models ``facebench predict`` uses by
    default, and the code of the modules that compute the views. A resumed run
    with nothing new to compute finds the same digest and keeps its views instead of
    loading every model again.
    """
    import hashlib
    import importlib.util
    import json

    from facebench import __version__
    from facebench.compare.inference import loading
    from facebench.rundir import layout
    from facebench.rundir.read import read_config

    def sha256(path) -> str | None:
        try:
            return hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError:
            return None

    try:
        features = read_config(run_dir).get("features")
    except (OSError, KeyError, ValueError, TypeError, AttributeError):
        features = None
    parts = {
        "facebench": __version__,
        "code": {module: sha256(importlib.util.find_spec(module).origin) for module in _VIEW_MODULES},
        "features": features,
        "faces": [[Path(str(row["path"])).name, int(row["age"]), int(row["gender"]), sha256(row["path"])]
                  for _, row in picked.iterrows()],
        "models": {name: [info["unit"], info["kind"],
                          sha256(layout.unit_dir(run_dir, info["unit"]) / layout.UNIT_MANIFEST)]
                   for name, info in available.items()},
        "predictors": loading.default_models(run_dir, available),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def explain_image(run_dir, image_rgb, truth: str | None = None, name: str | None = None,
                  detect: bool | None = None) -> tuple[dict, dict]:
    """What HOG, LBP and the run's CNN see in one face (``facebench explain``).

    Parameters
    ----------
    run_dir : path
        A run directory (its feature parameters and saved models are used).
    image_rgb : ndarray of shape (H, W, 3), uint8
        A face chip or a photo.
    truth : str, optional
        The true labels in words (``"25 y, female"``); default: parsed from ``name``
        when it is a UTKFace file name.
    name : str, optional
        The image's file name, for the title.
    detect : bool or None
        As :func:`facebench.data.faces.face_crops`: ``None`` uses an image that looks
        like a face chip whole and finds the faces in a photo; ``True`` always detects,
        ``False`` never. Of several faces the largest is shown.

    Returns
    -------
    meta, arrays
        As :func:`compute_views` for this one face; ``meta["name"]`` is ``name``.

    Raises
    ------
    UserError
        Not a run directory of this facebench, a model that cannot be loaded safely,
        or no face found in a photo.
    """
    from facebench.data import parse_utkface_name
    from facebench.data.faces import face_crops

    image = np.asarray(image_rgb)
    crops = face_crops(image, detect)
    if not crops:
        hint = "" if detect else "; if the image is already a cropped face, use --no-detect"
        raise UserError(f"{name or 'the image'}: no face found (OpenCV's Haar cascade finds upright frontal "
                        f"faces){hint}")
    _, face = max(crops, key=lambda c: c[0][2] * c[0][3])
    if truth is None and name:
        try:
            labels = parse_utkface_name(Path(name).name)
            truth = _label(labels.age, labels.gender)
        except ValueError:
            truth = None
    meta, arrays = compute_views([{"image": face, "label": truth, "file": name or ""}], load_methods(run_dir))
    meta["name"] = name or ""
    return meta, arrays
