"""Shared fixtures: where the real faces are, and a temporary cache for every test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def utkface_dir() -> Path | None:
    """The 5k UTKFace subset: ``$FACEBENCH_UTKFACE`` or ``../shared/data/utkface-5k``."""
    env = os.environ.get("FACEBENCH_UTKFACE")
    path = Path(env) if env else PROJECT_ROOT.parent / "shared" / "data" / "utkface-5k"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def utkface():
    path = utkface_dir()
    if path is None:
        pytest.skip("real UTKFace faces not found: set FACEBENCH_UTKFACE or place them at ../shared/data/utkface-5k")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test caches into a session-wide temporary folder, never the user's cache."""
    cache = tmp_path_factory.getbasetemp() / "facebench-cache"
    monkeypatch.setenv("FACEBENCH_CACHE", str(cache))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
