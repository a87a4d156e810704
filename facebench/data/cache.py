"""Where facebench caches things (the atomic writers it uses are in :mod:`facebench.io`)."""

from __future__ import annotations

import os
from pathlib import Path

# the data layer's modules import the writers from here
from facebench.io import atomic_save_npy, atomic_write, atomic_write_bytes, atomic_write_text  # noqa: F401


def default_cache_dir() -> Path:
    """``$FACEBENCH_CACHE``, else the user cache directory (e.g. ``~/.cache/facebench``)."""
    env = os.environ.get("FACEBENCH_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("facebench", appauthor=False))
