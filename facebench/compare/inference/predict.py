"""Predict age and gender for the faces in photos with a run's trained models.

``facebench predict --run RUN_DIR [--model NAME ...] [--detect | --no-detect] IMAGE...``
calls :func:`predict_files` and prints what it yields. Each image is read safely (:func:`facebench.data.faces.read_image`),
its faces found and cropped as UTKFace's chips are (:func:`facebench.data.faces.face_crops`;
an image that already looks like a chip is used whole, as ``facebench explain`` does),
and one JSON line per face is printed with every chosen model's outputs::

    {"file": "team.jpg", "face": 0, "box": [177, 67, 93, 93], "crop": "detected",
     "models": {"hog+lbp+color+svm": {"p_female": 0.18, "gender": "male"},
                "cnn-default": {"age": 31.4, "p_female": 0.09, "gender": "male"}}}

Keys a model does not predict are left out (``hog+svm`` has no ``age``). ``box`` is
``[x, y, width, height]`` in the photo's pixels; faces are numbered left to right. A
photo in which no face is found prints ``{"file", "faces": 0, "message"}``. When the
image is one of the run's training faces (same file, or a file of the same name), the
line has ``"training_face": true``: its predictions are not a fair test.

Models: by default the most accurate gender model, the lowest-MAE age model (on the
run's largest training set, median over trials) and every CNN of the run; ``--model``
names them instead. A model whose units on the largest training set are missing answers
from a smaller one, and the line says so (``"fraction"`` in its entry, and a warning).

Exit status: 0 when every file was read (photos without a face included), 1 when some
could not be read (one line each on stderr), 2 (a ``UserError``) when none could be
read, or for a bad run directory or model name.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from facebench.data.faces import face_crops, looks_like_chip, read_image
from facebench.errors import UserError
from facebench.rundir import layout
from facebench.rundir.read import read_split
from facebench.compare.inference.loading import choose_models, load_model

__all__ = ["predict_files", "predict_image", "training_names"]


def training_names(run_dir) -> tuple[set[str], set[str]]:
    """(resolved paths, file names) of every face in a training part of the run."""
    try:
        split = read_split(run_dir)
    except (OSError, ValueError, pd.errors.ParserError):
        return set(), set()
    if split is None or not {"path", "part"} <= set(split.columns):
        return set(), set()
    train = split.loc[split["part"] == "train", "path"].dropna()
    return {str(Path(p).resolve()) for p in train}, {Path(p).name for p in train}


def predict_image(image_rgb, models, detect: bool | None = None) -> list[dict]:
    """Per face: ``{"face", "box", "crop", "models": {name: outputs}}``; empty when no face is found."""
    detect = not looks_like_chip(image_rgb) if detect is None else detect
    crops = face_crops(image_rgb, detect)
    if not crops:
        return []
    per_model = {m.name: m.predict([c for _, c in crops]) for m in models}
    how = "detected" if detect else "whole image"
    rows = []
    for i, (box, _) in enumerate(crops):
        entry = {}
        for m in models:
            out = dict(per_model[m.name][i])
            if m.fraction_note:
                out["fraction"] = m.fraction
            entry[m.name] = out
        rows.append({"face": i, "box": box, "crop": how, "models": entry})
    return rows


def predict_files(run_dir, images, models=None, detect: bool | None = None):
    """``facebench predict``'s answers, as ``(stream, text)`` pairs for the command line to print.

    ``("out", JSON line)`` for each face found (or one line saying no face was found),
    ``("warning", text)`` and ``("error", text)`` for what goes to stderr: an image that
    cannot be read is an error and the others go on. Raises :class:`UserError` when no
    image is given, when the only image cannot be read, or when none can.
    """
    images = [Path(p) for p in images]
    if not images:
        raise UserError("no images given")
    run_dir = layout.check_run_dir(run_dir)
    available, names = choose_models(run_dir, models)
    loaded = []
    for name in names:
        model = load_model(name, available[name])
        model.fraction_note = not available[name]["largest"]
        if model.fraction_note:
            yield "warning", (f"{name}: no whole model on the largest training set; "
                              f"answering with the one trained on fraction {model.fraction:g}")
        loaded.append(model)
    train_paths, train_names = training_names(run_dir)
    failed = 0
    for path in images:
        try:
            image = read_image(path)
        except ValueError as exc:
            if len(images) == 1:
                raise UserError(f"{path}: {exc}") from None
            failed += 1
            yield "error", f"{path}: {exc}"
            continue
        rows = predict_image(image, loaded, detect=detect)
        if not rows:
            message = ("no face found (OpenCV's Haar cascade finds upright frontal faces); "
                       "if the image is already a cropped face, use --no-detect")
            yield "out", json.dumps({"file": str(path), "faces": 0, "message": message})
            continue
        seen = str(path.resolve()) in train_paths or path.name in train_names
        for row in rows:
            line = {"file": str(path), **row}
            if seen:
                line["training_face"] = True
            yield "out", json.dumps(line)
    if failed == len(images):
        raise UserError(f"none of the {len(images)} images could be read")
