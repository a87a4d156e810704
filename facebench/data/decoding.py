"""Decode images to uint8 stacks of one size, fast, and cache the stack on disk.

One resize method everywhere: centre-crop to a square, then OpenCV's area
interpolation (``INTER_AREA``), which is the right filter for shrinking. When the
target is at most half the source, libjpeg decodes at 1/2, 1/4 or 1/8 scale
(``IMREAD_REDUCED_*``), skipping most of the inverse DCT: on UTKFace's 200x200
chips that is ~4x faster than a full decode. Files OpenCV cannot read (CMYK
PNG, palette tricks, ...) fall back to Pillow.

The stack is cached as a memory-mappable ``.npy`` keyed by the file list, their
sizes and modification times, and the decode parameters; it is written to a
temporary file and renamed, so an interrupted run never leaves a cache a later
run would trust.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from .cache import atomic_save_npy, default_cache_dir

log = logging.getLogger(__name__)

DECODER_VERSION = 1
COLORS = ("gray", "rgb")
_REDUCED = {
    "gray": {2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4, 8: cv2.IMREAD_REDUCED_GRAYSCALE_8},
    "rgb": {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8},
}
_FULL = {"gray": cv2.IMREAD_GRAYSCALE, "rgb": cv2.IMREAD_COLOR}


def decode(dataset_or_paths, size: int = 64, color: str = "gray", cache_dir=None, n_jobs: int | None = None):
    """Decode images to a ``(N, size, size)`` (gray) or ``(N, size, size, 3)`` (RGB) uint8 stack.

    Parameters
    ----------
    dataset_or_paths : Dataset, DataFrame with a ``path`` column, or sequence of paths
    size : int
        Output side in pixels (images are centre-cropped to a square first).
    color : {"gray", "rgb"}
    cache_dir : str, Path, None or False
        Cache folder; ``None`` uses the user cache directory (``$FACEBENCH_CACHE``
        overrides), ``False`` disables caching.
    n_jobs : int, optional
        Decoding threads. Default 1: a reduced-scale decode of a UTKFace chip
        takes ~0.1 ms, so per-file Python work dominates and, measured on 2
        cores, two threads (or two forked processes) were slower than one
        (benchmarks/RESULTS.md); larger images may gain from more.

    Returns
    -------
    ndarray of uint8
        Memory-mapped from the cache when caching is on. A file that fails to
        decode (it passed the scan but changed since) becomes a black image and a
        logged warning rather than a crash.
    """
    size = int(size)
    if size < 8 or size > 1024:
        raise ValueError(f"size={size}: expected 8-1024 pixels")
    if color not in COLORS:
        raise ValueError(f"color={color!r}: expected one of {', '.join(COLORS)}")
    paths, hints = _paths_and_sizes(dataset_or_paths)

    cache_file = None
    if cache_dir is not False and paths:
        root = Path(cache_dir) if cache_dir else default_cache_dir()
        cache_file = root / "decode" / f"{cache_key(paths, size, color)}.npy"
        if cache_file.exists():
            try:
                stack = np.load(cache_file, mmap_mode="r")
                if stack.shape[0] == len(paths) and stack.shape[1:3] == (size, size):
                    return stack
            except (OSError, ValueError):
                log.warning("ignoring unreadable decode cache %s", cache_file)

    stack = _decode_all(paths, hints, size, color, n_jobs)
    if cache_file is not None:
        try:
            atomic_save_npy(cache_file, stack)
            return np.load(cache_file, mmap_mode="r")
        except OSError as exc:
            log.warning("could not write decode cache %s: %s", cache_file, exc)
    return stack


def cache_key(paths, size: int, color: str) -> str:
    """Key of a decoded stack: paths, their sizes and mtimes, and decode parameters."""
    h = hashlib.sha256(f"v{DECODER_VERSION}|{size}|{color}|{len(paths)}".encode())
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}|missing\n".encode())
    return f"{color}{size}-{len(paths)}-{h.hexdigest()[:24]}"


def decode_one(path, size: int = 64, color: str = "gray", source_size=None) -> np.ndarray:
    """Decode one image file; raise ``ValueError`` when it cannot be decoded."""
    flag = _FULL[color]
    if source_size:
        side = min(source_size)
        for factor in (8, 4, 2):
            if side // factor >= size:
                flag = _REDUCED[color][factor]
                break
    return _square_resize(read_pixels(path, color, flag), size)


def read_pixels(path, color: str = "rgb", flag=None) -> np.ndarray:
    """Decode an image file at full size (or as ``flag`` says): RGB (H, W, 3) or gray (H, W) uint8.

    OpenCV first (on the bytes, so non-ASCII names work everywhere), Pillow for the
    formats OpenCV does not read (GIF, some TIFFs and PNGs).

    Raises
    ------
    ValueError
        With a one-line reason: missing, a folder, unreadable, empty or not decodable.
    """
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except IsADirectoryError:
        raise ValueError("is a folder, not an image") from None
    except OSError as exc:
        raise ValueError(f"cannot read ({exc.strerror or exc})") from None
    if data.size == 0:
        raise ValueError("empty file")
    img = cv2.imdecode(data, _FULL[color] if flag is None else flag)
    if img is not None:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if color == "rgb" else img
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L" if color == "gray" else "RGB"))
    except Exception:
        raise ValueError("not an image OpenCV or Pillow can decode (corrupt or unsupported format)") from None


def to_face_array(image: np.ndarray, size: int, color: str) -> np.ndarray:
    """Convert an in-memory image (H, W[, 3|4]) RGB(A) or gray to the decode format."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if color == "gray" and img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    elif color == "rgb" and img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    return _square_resize(img, size)


def _square_resize(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    if h != w:
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        img = img[top : top + side, left : left + side]
    if img.shape[0] != size:
        interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
        img = cv2.resize(img, (size, size), interpolation=interp)
    return np.ascontiguousarray(img)


def _decode_all(paths, hints, size, color, n_jobs) -> np.ndarray:
    shape = (len(paths), size, size) + ((3,) if color == "rgb" else ())
    out = np.zeros(shape, dtype=np.uint8)
    workers = n_jobs if n_jobs and n_jobs > 0 else 1

    def work(i):
        try:
            out[i] = decode_one(paths[i], size, color, hints[i])
        except Exception as exc:  # one bad file must not stop a run
            log.warning("could not decode %s (%s); using a black image", paths[i], exc)
            return paths[i]
        return None

    # One OpenCV thread per worker: OpenCV's own pool inside resize fights the
    # per-file threads and made 2-core decoding slower than 1 core here.
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        if workers == 1 or len(paths) < 64:
            failed = [p for p in map(work, range(len(paths))) if p]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                failed = [p for p in pool.map(work, range(len(paths)), chunksize=256) if p]
    finally:
        cv2.setNumThreads(cv_threads)
    if failed:
        log.warning("%d image(s) failed to decode and are black", len(failed))
    return out


def _paths_and_sizes(obj):
    table = getattr(obj, "table", obj)
    if isinstance(table, pd.DataFrame):
        paths = [str(p) for p in table["path"]]
        if {"width", "height"} <= set(table.columns):
            hints = [(int(w), int(h)) for w, h in zip(table["width"], table["height"])]
        else:
            hints = [None] * len(paths)
        return paths, hints
    if isinstance(obj, (str, os.PathLike)):
        obj = [obj]
    paths = [str(p) for p in obj]
    return paths, [_header_size(p) for p in paths]


def _header_size(path):
    try:
        with Image.open(path) as im:
            return im.size
    except Exception:
        return None
