"""Where facebench caches things, and how it writes files so that no reader sees half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def default_cache_dir() -> Path:
    """``$FACEBENCH_CACHE``, else the user cache directory (e.g. ``~/.cache/facebench``)."""
    env = os.environ.get("FACEBENCH_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("facebench", appauthor=False))


def atomic_write(path, write) -> Path:
    """Call ``write(fh)`` on a temporary file beside ``path``, fsync it, then rename it to ``path``.

    A reader either sees the old file, no file, or the whole new file, never a
    part; an exception (or Ctrl-C) midway leaves no temporary file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path, data: bytes) -> Path:
    return atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npy(path, array: np.ndarray) -> Path:
    """Save an array as ``.npy`` atomically (a memory-mappable file, no pickle)."""
    return atomic_write(path, lambda fh: np.save(fh, array, allow_pickle=False))
