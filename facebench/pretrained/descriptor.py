"""dlib's 128-d face descriptor: the face box, the 5 landmarks, the aligned chip, the embedding.

The network is dlib's ResNet face recognition model (``dlib_face_recognition_resnet_model_v1``),
trained by Davis King for *identity* (faces of one person close, of two people apart) on
about 3 million faces; it knows nothing of age or gender, so what a head fitted on its
128 numbers finds there was learned elsewhere, for another task. Both model files it
needs come from the installed package ``face_recognition_models`` (:func:`model_files`),
never from a path a caller or a run directory gives: the network and the 5-point
landmark model are in the public domain; the package's 68-point model (trained on data
for non-commercial use) is not loaded.

The pipeline is the one of dlib's own ``face_recognition.py`` example, without jitter:

1. a face box: on a face chip, the fixed box :data:`FACE_BOX` (the median box dlib's
   frontal detector finds on 284 of 300 UTKFace chips, as fractions of the side), or
   ``box="detect"``: dlib's HOG detector, the largest face, the fixed box when it finds none;
2. the 5 landmarks inside the box (``shape_predictor_5_face_landmarks``);
3. ``dlib.get_face_chip(image, shape, size=150, padding=0.25)``: the face rotated, scaled
   and cropped so that the landmarks land where the network expects them;
4. the network on a batch of chips: 128 float32 numbers per face. Its weights are read from
   dlib's model file and TensorFlow runs them (:mod:`facebench.pretrained.resnet`);
   dlib's own ``compute_face_descriptor`` (:func:`embed_batch_dlib`) gives the same numbers
   within 1e-6, ten times slower.

dlib must be installed (``pip install 'facebench[pretrained]'``, which brings the prebuilt
``dlib-bin`` wheels); :func:`require` says so in one line when it is not.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

from facebench.errors import UserError

__all__ = [
    "BOXES",
    "CHIP_PADDING",
    "CHIP_SIZE",
    "EXTRA_HINT",
    "FACE_BOX",
    "N_FEATURES",
    "aligned_faces",
    "available",
    "embed_batch",
    "embed_batch_dlib",
    "model_digest",
    "model_files",
    "require",
]

#: What to install when the family is missing (one line, said to the user).
EXTRA_HINT = "pip install 'facebench[pretrained]' (dlib-bin and face-recognition-models)"
#: Length of a descriptor.
N_FEATURES = 128
#: Side of the aligned chip the network takes, and the margin around the landmarks (dlib's defaults).
CHIP_SIZE, CHIP_PADDING = 150, 0.25
#: The fixed face box on a face chip (left, top, right, bottom) as fractions of the image side:
#: dlib's frontal detector (one upsampling) on 300 UTKFace chips of 200 px found one face in
#: 284, with a median box of (12, 12, 167, 167) pixels.
FACE_BOX = (0.06, 0.06, 0.835, 0.835)
#: How the face box is found.
BOXES = ("fixed", "detect")


def available() -> bool:
    """Whether dlib and the model files are installed."""
    try:
        import dlib  # noqa: F401
        import face_recognition_models  # noqa: F401
    except ImportError:
        return False
    return True


def require(what: str = "the pretrained face descriptor") -> None:
    """Raise :class:`~facebench.errors.UserError` (one line: what to install) when the extra is missing."""
    if not available():
        raise UserError(f"{what} needs the pretrained extra: {EXTRA_HINT}")


def model_files() -> dict:
    """The two model files, from the installed ``face_recognition_models`` package only.

    Returns
    -------
    files : dict
        ``{"landmarks": Path, "descriptor": Path}`` (the 5-point shape predictor and the ResNet).
    """
    require()
    import face_recognition_models as frm

    return {"landmarks": Path(frm.pose_predictor_five_point_model_location()),
            "descriptor": Path(frm.face_recognition_model_location())}


@functools.lru_cache(maxsize=1)
def model_digest() -> str:
    """SHA-256 (first 16 hex digits) of both model files: part of every cached embedding's key."""
    h = hashlib.sha256()
    for key, path in sorted(model_files().items()):
        h.update(key.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _models():
    """The shape predictor and the face detector, loaded once per process."""
    import dlib

    return dlib.shape_predictor(str(model_files()["landmarks"])), dlib.get_frontal_face_detector()


@functools.lru_cache(maxsize=1)
def _dlib_network():
    """dlib's own runner of the network (the reference), loaded once per process."""
    import dlib

    return dlib.face_recognition_model_v1(str(model_files()["descriptor"]))


def _rgb(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"images must be uint8; got dtype {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"an image must be (height, width) or (height, width, 3); got shape {image.shape}")
    return np.ascontiguousarray(image)


def _box(image, box: str):
    import dlib

    h, w = image.shape[:2]
    if box == "detect":
        found = _models()[1](image, 1)
        if len(found):
            return max(found, key=lambda r: r.area()), True
    left, top, right, bottom = FACE_BOX
    return dlib.rectangle(int(round(left * w)), int(round(top * h)), int(round(right * w)), int(round(bottom * h))), False


def aligned_faces(images, box: str = "fixed") -> dict:
    """What the network receives: each face's aligned chip and its 5 landmarks there.

    Parameters
    ----------
    images : ndarray of shape (n_images, height, width[, 3]) uint8
        Face images (gray images are repeated into three channels).
    box : {"fixed", "detect"}

    Returns
    -------
    out : dict
        ``"chips"``: uint8 ``(n_images, 150, 150, 3)``; ``"landmarks"``: float64
        ``(n_images, 5, 2)`` (x, y) in chip pixels; ``"source_landmarks"``: the same
        points in the input image; ``"boxes"``: int ``(n_images, 4)`` left, top,
        right, bottom in the input image; ``"detected"``: bool, whether dlib's
        detector gave the box (always False for ``box="fixed"``).
    """
    import dlib

    if box not in BOXES:
        raise ValueError(f"box={box!r}: expected one of {', '.join(BOXES)}")
    predictor = _models()[0]
    chips, marks, source, boxes, detected = [], [], [], [], []
    for image in images:
        image = _rgb(image)
        rect, found = _box(image, box)
        shape = predictor(image, rect)
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        chips.append(dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING))
        details = dlib.get_face_chip_details(shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        marks.append(_to_chip(points, details))
        source.append(points)
        boxes.append((rect.left(), rect.top(), rect.right(), rect.bottom()))
        detected.append(found)
    n = len(chips)
    return {"chips": np.asarray(chips, dtype=np.uint8).reshape(n, CHIP_SIZE, CHIP_SIZE, 3),
            "landmarks": np.asarray(marks).reshape(n, 5, 2), "source_landmarks": np.asarray(source).reshape(n, 5, 2),
            "boxes": np.asarray(boxes, dtype=np.int64).reshape(n, 4), "detected": np.asarray(detected, dtype=bool)}


def _to_chip(points, details) -> np.ndarray:
    """Image points in the chip's pixels: the chip is ``details.rect`` rotated by ``details.angle``, scaled."""
    rect = details.rect
    centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
    scale = details.cols / rect.width()
    c, s = np.cos(details.angle), np.sin(details.angle)
    d = points - centre
    rotated = np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], axis=1)
    return rotated * scale + np.array([(details.cols - 1) / 2, (details.rows - 1) / 2])


def embed_batch(images, box: str = "fixed", batch_size: int = 1) -> np.ndarray:
    """128-d descriptors of a stack of faces, in this process (no cache; see :class:`DlibDescriptor`).

    The chips are cut by dlib; the network's weights come from dlib's model file and
    TensorFlow runs them (:mod:`facebench.pretrained.resnet`: the same descriptors within
    1e-6, about ten times faster than dlib's own code in the prebuilt wheels).

    Parameters
    ----------
    images : ndarray of shape (n_images, height, width[, 3]) uint8
    box : {"fixed", "detect"}
    batch_size : int
        Chips given to the network at once (see :func:`facebench.pretrained.resnet.descriptors`:
        with 1, each face's descriptor depends on its pixels alone).

    Returns
    -------
    descriptors : ndarray of shape (n_images, 128) float32
    """
    from facebench.pretrained.resnet import descriptors

    chips = aligned_faces(images, box=box)["chips"]
    return descriptors(chips, model_files()["descriptor"], batch_size=batch_size)


def embed_batch_dlib(images, box: str = "fixed", batch_size: int = 32) -> np.ndarray:
    """The same descriptors by dlib's own network code (the reference :func:`embed_batch` is checked against)."""
    chips = aligned_faces(images, box=box)["chips"]
    network = _dlib_network()
    out = np.empty((len(chips), N_FEATURES), dtype=np.float32)
    for start in range(0, len(chips), batch_size):
        batch = [np.ascontiguousarray(c) for c in chips[start:start + batch_size]]
        out[start:start + len(batch)] = np.asarray([np.asarray(v) for v in network.compute_face_descriptor(batch)])
    return out
