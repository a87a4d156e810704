"""Small JPEG thumbnails of face images, embedded as data URIs (report gallery, explore page)."""

from __future__ import annotations

import base64
import io
from typing import Any

THUMB_PX = 64


def thumbnail_uri(path: Any, cache: dict[str, str | None]) -> str | None:
    """A ~64 px JPEG data URI of an image file, or None when it cannot be read."""
    if not isinstance(path, str) or not path:
        return None
    if path in cache:
        return cache[path]
    from PIL import Image

    uri = None
    try:
        with Image.open(path) as img:
            img.draft("RGB", (THUMB_PX * 2, THUMB_PX * 2))
            img = img.convert("RGB")
            img.thumbnail((THUMB_PX, THUMB_PX))
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=75)
        uri = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    except (OSError, ValueError, Image.DecompressionBombError):
        uri = None  # a moved or broken file: the gallery shows a placeholder instead
    cache[path] = uri
    return uri
