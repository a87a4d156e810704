"""Faces in ordinary photos: read a photo safely, find the faces, crop them like UTKFace's chips.

``facebench predict`` and ``facebench explain`` both go through :func:`face_crops`, so
the same image gives the same crop, and so the same numbers, in both.

The crop
--------
UTKFace's "aligned and cropped" chips are tight. On 200 chips of the 5k UTKFace subset
(every 25th file), padded so that the detector's box may reach past the chip, the Haar
box of the face had a median side of 1.045 chip sides and its centre 0.41 of the way
down the chip (0.49 across). So a chip is a square of about 0.95 box sides whose centre
sits 0.09 box sides *below* the box centre: a slightly negative margin, shifted towards
the chin. :data:`CHIP_SCALE` and :data:`CHIP_SHIFT` hold those two numbers. Parts of the
square outside the photo are filled by replicating the border pixels (as the padding in
the measurement did).

Already cropped faces
---------------------
With ``detect=None`` (the default of both commands) an image that already looks like a
face chip is used whole: square (sides within 10 %) and at most :data:`CHIP_MAX_SIDE`
pixels, as UTKFace's 200x200 chips are. Haar cascades often miss the face in such a
tight crop (a baby's face fills it), so detecting there would lose it. Anything else is
a photo: its faces are detected and cropped.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .decoding import read_pixels
from .scan import MAX_PIXELS

#: Side of the UTKFace-like chip, in Haar-box sides (measured, see the module docstring).
CHIP_SCALE = 0.95
#: Downward shift of the chip's centre from the Haar box's centre, in box sides.
CHIP_SHIFT = 0.09
#: Largest side of an image taken as an already cropped face when detection is automatic.
CHIP_MAX_SIDE = 400
#: OpenCV's bundled frontal-face cascade (shipped inside opencv-python, no download).
CASCADE_FILE = "haarcascade_frontalface_default.xml"


def read_image(path) -> np.ndarray:
    """Decode an image file to RGB uint8 ``(H, W, 3)``, refusing images over :data:`MAX_PIXELS`.

    The size is read from the file's header before anything is decoded, so a small
    file that claims a huge image (a decompression bomb) costs nothing.

    Raises
    ------
    ValueError
        With a one-line reason: missing, unreadable, empty, too large or not decodable.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(f"image too large (decompression bomb refused; limit {MAX_PIXELS:,} pixels)") from None
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except IsADirectoryError:
        raise ValueError("is a folder, not an image") from None
    except Exception:  # noqa: BLE001 - not a format Pillow knows: let read_pixels decide
        w = h = 0
    if w * h > MAX_PIXELS:
        raise ValueError(f"image too large ({w}x{h} pixels > {MAX_PIXELS:,}); refused")
    image = read_pixels(path, "rgb")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise ValueError(f"image too large ({image.shape[1]}x{image.shape[0]} pixels > {MAX_PIXELS:,}); refused")
    return image


def looks_like_chip(image: np.ndarray) -> bool:
    """Whether an image is already a face crop (square within 10 %, at most CHIP_MAX_SIDE pixels)."""
    h, w = image.shape[:2]
    return max(h, w) <= CHIP_MAX_SIDE and abs(h - w) <= 0.1 * max(h, w)


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


def face_crops(image_rgb: np.ndarray, detect: bool | None = None) -> list[tuple[list[int], np.ndarray]]:
    """``[(box [x, y, w, h], crop)]`` for the faces of an image, left to right.

    ``detect=True``: find faces with :func:`detect_faces` and crop each with
    :func:`crop_chip`; ``False``: the whole image is one face; ``None`` (default):
    ``False`` for an image that :func:`looks_like_chip`, else ``True``.
    """
    if detect is None:
        detect = not looks_like_chip(image_rgb)
    if not detect:
        return [([0, 0, int(image_rgb.shape[1]), int(image_rgb.shape[0])], image_rgb)]
    return [(list(b), crop_chip(image_rgb, b)) for b in detect_faces(image_rgb)]
