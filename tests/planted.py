"""Planted near-duplicates for the tests: the same face re-encoded, resized, re-cropped, relit or mirrored."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

#: The changes a near-duplicate survives.
KINDS = ("jpeg", "resize", "crop", "light", "mirror")


def plant(source, dest, kind: str) -> Path:
    """Write a variant of the image ``source`` at ``dest``: one of :data:`KINDS`, at the edge of its range."""
    with Image.open(source) as im:
        img = im.convert("RGB")
    quality = 95
    if kind == "jpeg":
        quality = 60
    elif kind == "resize":
        img = img.resize((int(img.width * 0.9), int(img.height * 0.9)), Image.BICUBIC)
    elif kind == "crop":  # 5 % off two sides: the largest shift of the centre
        img = img.crop((int(0.05 * img.width), int(0.05 * img.height), img.width, img.height))
    elif kind == "light":
        img = ImageEnhance.Contrast(ImageEnhance.Brightness(img).enhance(1.08)).enhance(0.92)
    elif kind == "mirror":
        img = ImageOps.mirror(img)
    else:
        raise ValueError(kind)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    dest = Path(dest)
    dest.write_bytes(buf.getvalue())
    return dest


def relabel(name: str, age: int, k: int) -> str:
    """The UTKFace name ``name`` with another age and a stamp of its own (``k``)."""
    _, gender, race, _ = name.split(".", 1)[0].split("_")
    return f"{age}_{gender}_{race}_2999{k:013d}.jpg.chip.jpg"
