"""Predict age and gender for the faces in ordinary photos with a run's trained models.

``facebench predict --run RUN_DIR [--model NAME ...] [--no-detect] IMAGE...`` calls
:func:`predict_cli`. For each image it finds the faces (OpenCV's bundled Haar cascade,
no download), crops each one the way UTKFace's aligned chips are cropped, converts the
crop to each model's input (size and colour, as :func:`facebench.data.decode` does for
the training images) and prints one JSON line per face and model::

    {"file": "team.jpg", "face": 0, "box": [177, 67, 93, 93], "model": "cnn-default",
     "age": 31.4, "p_female": 0.1834, "gender": "male"}

Keys a model does not predict are left out (``hog+svm`` has no ``age``). ``box`` is the
detector's box in the photo's pixels ``[x, y, width, height]``; faces are numbered left
to right. A photo in which no face is found prints ``{"file", "faces": 0, "message"}``.

Which models
------------
By default: the best gender model (highest accuracy) and the best age model (lowest
MAE) by ``metrics.csv`` over all test images, on the largest training set of the run
(median over trials), plus every CNN; each from trial 0 (the lowest trial that saved a
model). ``models=[...]`` names them instead (``hog+svm``, ``cnn-default``, ...); an
unknown name is a :class:`~facebench.errors.UserError` that lists the available ones.
Every chosen model predicts every task it was trained for.

The crop
--------
UTKFace's "aligned and cropped" chips are tight. On 200 chips of the 5k UTKFace subset
(every 25th file), padded so that the detector's box may reach past the chip, the Haar
box of the face had a median side of 1.045 chip sides and its centre 0.41 of the way
down the chip (0.49 across). So a chip is a square of about 0.95 box sides whose centre
sits 0.09 box sides *below* the box centre: a slightly negative margin, shifted towards
the chin. :data:`CHIP_SCALE` and :data:`CHIP_SHIFT` hold those two numbers. Parts of the
square outside the photo are filled by replicating the border pixels (as the padding in
the measurement did). The square is then centre-cropped and resized exactly like a
training image (:func:`facebench.data.to_face_array`).

Errors and exit status
----------------------
A file that does not exist or cannot be decoded prints one line on stderr
(``facebench predict: error: FILE: ...``) and the other files still run. The exit
status is 0 when every file was read (photos without a face included), 1 when some
files could not be read (the others were predicted), and 2 (a ``UserError``) when none
could be read, or for a bad run directory or model name.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from facebench.errors import UserError

__all__ = [
    "CHIP_SCALE",
    "CHIP_SHIFT",
    "LoadedModel",
    "available_models",
    "chip_box",
    "crop_chip",
    "default_models",
    "detect_faces",
    "load_models",
    "predict_cli",
    "predict_faces",
    "read_image",
]

#: Side of the UTKFace-like chip, in Haar-box sides (measured, see the module docstring).
CHIP_SCALE = 0.95
#: Downward shift of the chip's centre from the Haar box's centre, in box sides.
CHIP_SHIFT = 0.09
#: OpenCV's bundled frontal-face cascade (shipped inside opencv-python, no download).
CASCADE_FILE = "haarcascade_frontalface_default.xml"

_UNIT = re.compile(r"^t(?P<trial>\d+)_f(?P<fraction>[^_]+)_(?P<safe>.+)$")


@dataclass
class LoadedModel:
    """One trained model of a run, ready to predict.

    Attributes
    ----------
    name : str
        The model's name in the run (``hog+svm``, ``cnn-default``).
    unit : str
        Its unit id (``t0_f1.0_hog-svm``).
    image_size, color :
        What its input images look like.
    estimators : dict
        Classical models: task -> fitted scikit-learn pipeline on image stacks.
    cnn : facebench.cnn.FittedCNN or None
        CNNs: the loaded network.
    """

    name: str
    unit: str
    image_size: int
    color: str
    estimators: dict | None = None
    cnn: object | None = None

    def predict(self, faces_rgb: list[np.ndarray]) -> list[dict]:
        """Age / P(female) / gender for RGB face crops, one dict per crop."""
        from facebench.data import to_face_array

        if not faces_rgb:
            return []
        X = np.stack([to_face_array(f, self.image_size, self.color) for f in faces_rgb])
        out: dict[str, np.ndarray] = {}
        if self.cnn is not None:
            out = self.cnn.predict(X)
        else:
            from facebench.baselines import predict_outputs

            for task, estimator in self.estimators.items():
                out.update(predict_outputs(estimator, X, task))
        rows = []
        for i in range(len(X)):
            row = {}
            if "age" in out:
                row["age"] = round(float(out["age"][i]), 1)
            if "p_female" in out:
                p = float(out["p_female"][i])
                row["p_female"] = round(p, 4) if math.isfinite(p) else None
                row["gender"] = "female" if int(out["gender"][i]) == 1 else "male"
            rows.append(row)
        return rows


# --------------------------------------------------------------------------- the run's models


def _check_run_dir(run_dir) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a run directory (no such folder)")
    if not (run_dir / "metrics.csv").is_file():
        raise UserError(f"{run_dir}: not a run directory (no metrics.csv)")
    if not (run_dir / "models").is_dir():
        raise UserError(f"{run_dir}: the run saved no models (no models/ folder)")
    return run_dir


def _safe(model: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "-" for c in model)


def _training_sizes(run_dir: Path) -> dict[float, float]:
    """fraction -> mean training images per unit (timings.csv), to rank fractions and counts alike."""
    path = run_dir / "timings.csv"
    if not path.is_file():
        return {}
    try:
        t = pd.read_csv(path)
        return {float(f): float(n) for f, n in t.groupby("fraction")["n_train"].mean().items()}
    except (KeyError, ValueError, pd.errors.ParserError):
        return {}


def available_models(run_dir) -> dict[str, dict]:
    """The models a run saved, by name: ``{name: {"path", "unit", "trial", "fraction", "kind"}}``.

    For each model the unit on the largest training set (``n_train`` of ``timings.csv``;
    the fraction itself when that is missing) of the lowest trial is taken.

    Raises
    ------
    UserError
        If ``run_dir`` is not a run directory.
    """
    run_dir = _check_run_dir(run_dir)
    metrics = pd.read_csv(run_dir / "metrics.csv", usecols=["model"], dtype=str)
    names = list(dict.fromkeys(metrics["model"].dropna()))
    sizes = _training_sizes(run_dir)
    found: dict[str, dict] = {}
    for path in sorted((run_dir / "models").iterdir()):
        if path.suffix not in (".joblib", ".keras"):
            continue
        m = _UNIT.match(path.stem)
        if m is None:
            continue
        try:
            fraction = float(m["fraction"])
        except ValueError:
            continue
        for name in names:
            if _safe(name) != m["safe"]:
                continue
            entry = {"path": path, "unit": path.stem, "trial": int(m["trial"]), "fraction": fraction,
                     "kind": "cnn" if path.suffix == ".keras" else "classical"}
            rank = (-sizes.get(fraction, fraction), entry["trial"])
            old = found.get(name)
            if old is None or rank < (-sizes.get(old["fraction"], old["fraction"]), old["trial"]):
                found[name] = entry
    return found


def default_models(run_dir, available: dict | None = None) -> list[str]:
    """The best gender model, the best age model and every CNN (see the module docstring)."""
    run_dir = _check_run_dir(run_dir)
    available = available_models(run_dir) if available is None else available
    if not available:
        return []
    metrics = pd.read_csv(run_dir / "metrics.csv", dtype={"model": str, "task": str, "group": str, "metric": str})
    metrics = metrics[(metrics["group"] == "all") & metrics["model"].isin(list(available))]
    chosen = []
    if len(metrics):
        sizes = _training_sizes(run_dir)
        fractions = sorted({float(f) for f in metrics["fraction"]}, key=lambda f: sizes.get(f, f))
        at = metrics[metrics["fraction"].astype(float) == fractions[-1]]
        for task, metric, best in (("gender", "accuracy", "idxmax"), ("age", "mae", "idxmin")):
            scores = at[(at["task"] == task) & (at["metric"] == metric)].groupby("model", sort=False)["value"].median()
            scores = scores.dropna()
            if len(scores):
                chosen.append(getattr(scores, best)())
    chosen += [name for name, info in available.items() if info["kind"] == "cnn"]
    return list(dict.fromkeys(chosen))


def load_models(run_dir, names=None) -> list[LoadedModel]:
    """Load the named models of a run (default: :func:`default_models`).

    Raises
    ------
    UserError
        For a run directory without models or an unknown model name (the message lists
        the available ones).
    """
    run_dir = _check_run_dir(run_dir)
    available = available_models(run_dir)
    if not available:
        raise UserError(f"{run_dir}: the run saved no models in models/")
    if names:
        unknown = [n for n in names if n not in available]
        if unknown:
            raise UserError(f"unknown model {', '.join(map(repr, unknown))}; this run has: {', '.join(available)}")
        names = list(dict.fromkeys(names))
    else:
        names = default_models(run_dir, available)
    return [_load_one(name, available[name]) for name in names]


def _load_one(name: str, info: dict) -> LoadedModel:
    if info["kind"] == "cnn":
        from facebench.cnn import load

        fitted = load(info["path"])
        shape = tuple(fitted.model.input_shape[1:])
        color = fitted.params.get("color") or ("rgb" if len(shape) == 3 and shape[-1] == 3 else "gray")
        return LoadedModel(name, info["unit"], int(shape[0]), color, cnn=fitted)
    import joblib

    saved = joblib.load(info["path"])
    features = saved.get("features", {})
    return LoadedModel(name, info["unit"], int(features.get("image_size", 64)), features.get("color", "gray"),
                       estimators=dict(saved["estimators"]))


# --------------------------------------------------------------------------- images and faces


def read_image(path) -> np.ndarray:
    """Decode an image file to an RGB uint8 array (H, W, 3) (see :func:`facebench.data.read_pixels`).

    Raises
    ------
    ValueError
        With a one-line reason when the file is missing, empty or not a decodable image.
    """
    from facebench.data import read_pixels

    return read_pixels(path, "rgb")


_CASCADE = None


def _cascade():
    global _CASCADE
    if _CASCADE is None:
        import cv2

        path = Path(cv2.data.haarcascades) / CASCADE_FILE
        cascade = cv2.CascadeClassifier(str(path))
        if cascade.empty():  # pragma: no cover - a broken OpenCV install
            raise RuntimeError(f"OpenCV's face cascade {path} could not be loaded")
        _CASCADE = cascade
    return _CASCADE


def detect_faces(image_rgb: np.ndarray, min_size: int = 24) -> list[tuple[int, int, int, int]]:
    """Frontal faces found by OpenCV's Haar cascade, as ``(x, y, w, h)`` boxes, left to right.

    The photo is converted to gray and histogram-equalised; ``scaleFactor=1.1``,
    ``minNeighbors=5`` (OpenCV's usual settings) and boxes of at least ``min_size``
    pixels (or 1/40 of the shorter side on large photos). Faces in profile or far from
    upright are usually missed.
    """
    import cv2

    gray = image_rgb if image_rgb.ndim == 2 else cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
    side = max(min_size, min(gray.shape[:2]) // 40)
    boxes = _cascade().detectMultiScale(cv2.equalizeHist(gray), scaleFactor=1.1, minNeighbors=5,
                                        minSize=(side, side))
    return sorted((tuple(int(v) for v in b) for b in boxes), key=lambda b: (b[0], b[1]))


def chip_box(box, scale: float = CHIP_SCALE, shift: float = CHIP_SHIFT) -> tuple[int, int, int]:
    """The UTKFace-like square ``(x0, y0, side)`` around a Haar box ``(x, y, w, h)``."""
    x, y, w, h = box
    size = max(w, h)
    side = max(1, int(round(scale * size)))
    cx, cy = x + w / 2.0, y + h / 2.0 + shift * size
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side


def crop_chip(image: np.ndarray, box, scale: float = CHIP_SCALE, shift: float = CHIP_SHIFT) -> np.ndarray:
    """Cut the UTKFace-like square around a Haar box; outside the photo, edge pixels repeat."""
    import cv2

    x0, y0, side = chip_box(box, scale, shift)
    h, w = image.shape[:2]
    top, left = max(0, -y0), max(0, -x0)
    bottom, right = max(0, y0 + side - h), max(0, x0 + side - w)
    inside = image[max(0, y0) : min(h, y0 + side), max(0, x0) : min(w, x0 + side)]
    if top or left or bottom or right:
        inside = cv2.copyMakeBorder(np.ascontiguousarray(inside), top, bottom, left, right, cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(inside)


def predict_faces(image_rgb: np.ndarray, models: list[LoadedModel], detect: bool = True) -> list[dict]:
    """Per face and model: ``{"face", "box", "model", "age", "p_female", "gender"}`` (keys as predicted).

    With ``detect=False`` the whole image is one face (box = the whole image).
    Returns an empty list when no face is found.
    """
    if detect:
        boxes = detect_faces(image_rgb)
        crops = [crop_chip(image_rgb, b) for b in boxes]
    else:
        boxes = [(0, 0, int(image_rgb.shape[1]), int(image_rgb.shape[0]))]
        crops = [image_rgb]
    if not boxes:
        return []
    per_model = [(m.name, m.predict(crops)) for m in models]
    rows = []
    for i, box in enumerate(boxes):
        for name, preds in per_model:
            rows.append({"face": i, "box": list(box), "model": name, **preds[i]})
    return rows


# --------------------------------------------------------------------------- the command


def predict_cli(run_dir, images, models=None, detect: bool = True, stdout=None, stderr=None) -> int:
    """``facebench predict``: one JSON line per face and model on stdout.

    Parameters
    ----------
    run_dir : path
        A run directory with saved models.
    images : sequence of paths
    models : list of str, optional
        Model names; default the best of each task and every CNN.
    detect : bool
        ``False`` (``--no-detect``): each image is already a cropped face.
    stdout, stderr : text streams, optional
        Default ``sys.stdout`` / ``sys.stderr``.

    Returns
    -------
    int
        0 when every file was read, 1 when some could not be (see the module docstring).

    Raises
    ------
    UserError
        Not a run directory, an unknown model, no images, or no image could be read.
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    images = [Path(p) for p in images]
    if not images:
        raise UserError("no images given")
    loaded = load_models(run_dir, models)
    failed = 0
    for path in images:
        try:
            image = read_image(path)
        except ValueError as exc:
            failed += 1
            print(f"facebench predict: error: {path}: {exc}", file=stderr, flush=True)
            continue
        rows = predict_faces(image, loaded, detect=detect)
        if not rows:
            message = ("no face found (OpenCV's Haar cascade finds upright frontal faces); "
                       "if the image is already a cropped face, use --no-detect")
            print(json.dumps({"file": str(path), "faces": 0, "message": message}), file=stdout, flush=True)
            continue
        for row in rows:
            print(json.dumps({"file": str(path), **row}), file=stdout)
        stdout.flush()
    if failed == len(images):
        raise UserError(f"none of the {len(images)} image(s) could be read" if len(images) > 1
                        else f"{images[0]}: the image could not be read")
    return 1 if failed else 0
