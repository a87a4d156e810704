"""What the features learned elsewhere see: the aligned chip dlib's network receives, its 5 landmarks.

:func:`add_pretrained` adds to the views of some faces (:func:`facebench.compare.inference.explain.compute_views`)
when the run holds a model on dlib's descriptor and the pretrained extra is installed:

``pretrained_input`` (N, s, s, 3) uint8, the face at the family's input size;
``pretrained_box`` (N, 4) int32, the face box there (left, top, right, bottom);
``pretrained_source_marks`` (N, 5, 2) float32, the 5 landmarks found in it;
``pretrained_chip`` (N, 150, 150, 3) uint8, the aligned chip the network receives;
``pretrained_marks`` (N, 5, 2) float32, the landmarks in the chip's pixels;
``pretrained_descriptor`` (N, 128) float32, the network's 128 numbers.
``meta["pretrained"]``: ``{"name", "image_size", "chip_size", "box"}``.
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["add_pretrained", "pretrained_model"]

log = logging.getLogger(__name__)


def pretrained_model(run_dir, available: dict) -> str | None:
    """The first saved model of the run whose family is "learned elsewhere" (None when none)."""
    from facebench.rundir import saved

    try:
        table = saved.read_models_table(run_dir)
    except (OSError, ValueError):
        return None
    names = [n for n, fam in zip(table["name"], table["family"]) if fam == "learned elsewhere" and n in available]
    return names[0] if names else None


def add_pretrained(meta: dict, arrays: dict, faces: list, name: str) -> None:
    """Store what dlib's network receives for each face (nothing, with a log line, without the extra)."""
    from facebench.data import to_face_array
    from facebench.pretrained import INPUT_SIZE, aligned_faces, descriptor
    from facebench.pretrained.descriptor import CHIP_SIZE, embed_batch

    if not descriptor.available():
        log.warning("%s is in the run but the pretrained extra is not installed: its view is left out", name)
        return
    inputs = np.stack([to_face_array(f["image"], INPUT_SIZE, "rgb") for f in faces])
    seen = aligned_faces(inputs)
    arrays["pretrained_input"] = inputs.astype(np.uint8)
    arrays["pretrained_box"] = seen["boxes"].astype(np.int32)
    arrays["pretrained_source_marks"] = seen["source_landmarks"].astype(np.float32)
    arrays["pretrained_chip"] = seen["chips"]
    arrays["pretrained_marks"] = seen["landmarks"].astype(np.float32)
    arrays["pretrained_descriptor"] = embed_batch(inputs)
    meta["pretrained"] = {"name": name, "image_size": INPUT_SIZE, "chip_size": CHIP_SIZE, "box": "fixed"}
