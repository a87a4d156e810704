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


#: Single tests that train a CNN, run a whole benchmark, kill workers or embed faces (over ~5 s each).
SLOW_TESTS = frozenset({
    "test_cnn_unit_trains_predicts_and_keeps_its_history", "test_cnn_training_reports_every_epoch",
    "test_a_cnn_unit_records_where_it_trained", "test_a_model_registered_from_python_runs_like_a_built_in",
    "test_workers_do_not_outlive_a_killed_run", "test_output_files_honour_the_umask",
    "test_report_puts_several_runs_side_by_side", "test_report_section", "test_every_trial_of_a_run",
    "test_planted_age_errors_are_found", "test_planted_gender_flips_are_found",
    "test_label_metrics_leave_out_the_suspected_test_faces", "test_parallel_workers_give_the_same_numbers",
    "test_descriptor_shape_and_determinism", "test_embeddings_on_dask_workers", "test_cache_hit_embeds_nothing",
    "test_saved_model_loads_under_trusted_types", "test_a_onedal_model_is_predicted_on_a_machine_without_sklearnex",
    "test_changing_the_backend_recomputes_the_svm_units_only", "test_a_run_uses_the_manifest_split_and_says_so",
    "test_views_of_a_128_pixel_run_stay_under_a_megabyte", "test_user_models_travel_to_a_fresh_process",
    "test_a_saved_bif_model_round_trips_with_trusted_types_only",
})


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = getattr(item, "originalname", item.name)
        if (item.path.name in SLOW_MODULES or name in SLOW_TESTS
                or SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))):
            item.add_marker(pytest.mark.slow)
