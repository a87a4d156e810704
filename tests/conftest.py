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


#: The shared real run: every kind of model the readers handle, a one-epoch CNN at 32 px.
TINY_RUN_OVERRIDES = [
    "models.gender=['dummy','hog+linsvm']",
    "models.age=['dummy','hog+ridge','lbp+ridge']",
    "models.cnn=['default']",
    "cnn.default.epochs=1",
    "cnn.default.image_size=32",
    "fractions=[1.0]",
    "bootstrap=100",
    "n_jobs=1",
]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A real run directory written by the runner on 160 synthetic faces (built once per session).

    Tests that change it work on a copy.
    """
    pytest.importorskip("tensorflow")
    from facebench.cli import main
    from facebench.data import synthesize

    faces = tmp_path_factory.mktemp("tiny-faces")
    synthesize(faces, n=160, seed=1, size=64)
    out = tmp_path_factory.mktemp("tiny-run") / "run"
    argv = ["run", "--data", str(faces), "--preset", "quick", "--out", str(out), "-q"]
    for item in TINY_RUN_OVERRIDES:
        argv += ["--set", item]
    assert main(argv) == 0
    return out


# ---- the fast lane: pytest -m "not slow" ---------------------------------------------------

#: Fixtures that cost a real run, a trained CNN, a sweep or the real faces: a test that uses
#: one is slow (the first test of a module pays for it, and the lane runs whole modules).
SLOW_FIXTURES = frozenset({
    "tiny_run", "utkface", "finished", "grown", "fitted_default", "fitted_cnn", "pretrained_run", "original",
    "real_run", "found", "workspace", "report", "grid", "full_run", "small_run", "still_falling", "converged",
    "twins",
})
#: Modules whose every test trains a CNN, runs a benchmark or a notebook, or drives a browser.
SLOW_MODULES = frozenset({"test_cnn.py", "test_cnn_custom.py", "test_examples.py", "test_sweep.py",
                          "test_browser.py", "test_lesson_notebook.py", "test_readme_commands.py"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW_MODULES or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
