"""Shared fixtures: where the real faces are, and a temporary cache for every test."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from filelock import FileLock

from facebench.tf_runtime import _configure_environment

# TensorFlow's settings as the command line gives them, before any test loads it (some tests import
# keras directly): oneDNN's kernels on x86-64, so the workers a test starts compute as it does
_configure_environment()

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


def shared_temp(tmp_path_factory) -> Path:
    """A temporary folder of this session that every xdist worker sees (the workers' common base).

    Without xdist it is the session's base temporary folder itself.
    """
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(tmp_path_factory, name: str, build) -> Path:
    """The folder ``name`` of :func:`shared_temp`, filled by ``build(folder)`` once per session.

    The first worker to ask builds it under a file lock; the others wait and read the
    finished folder. A build that failed is tried again (its partial folder removed),
    so each worker reports the failure in its own tests.
    """
    folder = shared_temp(tmp_path_factory) / "built-once" / name
    folder.parent.mkdir(parents=True, exist_ok=True)
    done = folder.with_name(name + ".done")
    with FileLock(str(folder.with_name(name + ".lock"))):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test caches into a session-wide temporary folder (shared by the xdist workers), never the user's cache.

    The cache's writers are atomic, so workers that fill one entry at once leave a whole file.
    """
    cache = shared_temp(tmp_path_factory) / "facebench-cache"
    monkeypatch.setenv("FACEBENCH_CACHE", str(cache))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")


#: The shared real run: every kind of model the readers handle, a two-epoch CNN at 32 px (two,
#: so that its history and run.log show one row and one line per epoch).
TINY_RUN_OVERRIDES = [
    "models.gender=['dummy','hog+linsvm']",
    "models.age=['dummy','hog+ridge','lbp+ridge']",
    "models.cnn=['default']",
    "cnn.default.epochs=2",
    "cnn.default.image_size=32",
    "fractions=[1.0]",
    "bootstrap=100",
    "n_jobs=1",
]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A real run directory written by the runner on 160 synthetic faces (built once per session, for every worker).

    Tests that change it work on a copy.
    """
    pytest.importorskip("tensorflow")

    def build(folder):
        from facebench.cli import main
        from facebench.data import synthesize

        synthesize(folder / "faces", n=160, seed=1, size=64)
        argv = ["run", "--data", str(folder / "faces"), "--preset", "quick", "--out", str(folder / "run"), "-q"]
        for item in TINY_RUN_OVERRIDES:
            argv += ["--set", item]
        with pytest.MonkeyPatch.context() as mp:  # a session fixture runs before the per-test cache is set
            mp.setenv("FACEBENCH_CACHE", str(shared_temp(tmp_path_factory) / "facebench-cache"))
            mp.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
            assert main(argv) == 0

    return build_once(tmp_path_factory, "tiny-run", build) / "run"


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
    "test_label_metrics_leave_out_the_suspected_test_faces", "test_chunks_in_order_and_a_worker_process_give_the_same_numbers",
    "test_descriptor_shape_and_determinism", "test_embeddings_on_dask_workers", "test_cache_hit_embeds_nothing",
    "test_saved_model_loads_under_trusted_types", "test_a_onedal_model_is_predicted_on_a_machine_without_sklearnex",
    "test_changing_the_backend_recomputes_the_svm_units_only", "test_a_run_uses_the_manifest_split_and_says_so",
    "test_views_of_a_128_pixel_run_stay_under_a_megabyte", "test_user_models_travel_to_a_fresh_process",
    "test_a_saved_bif_model_round_trips_with_trusted_types_only",
    "test_early_epochs_train_small_faces_then_the_same_weights_go_on_at_full_size",
    "test_folds_in_parallel_processes_give_the_same_predictions_to_the_bit",
})


# ---- the order of the files: the longest first ----------------------------------------------

#: The files that take longest, longest first (measured with --durations, benchmarks/RESULTS.md).
#: xdist's --dist loadfile hands whole files to the two workers in collection order
#: (--no-loadscope-reorder keeps it), so the long ones start first and the short ones fill
#: in at the end, instead of a minute-long file starting last while the other worker idles.
#: The first user of ``tiny_run`` comes early, next to files that do not wait for it.
LONGEST_FIRST = (
    "test_split_groups.py", "test_sweep.py", "test_cnn.py", "test_labels.py", "test_report_sections.py",
    "test_reports.py", "test_compare_run.py", "test_roundtrip.py", "test_svm_parity.py", "test_views.py",
    "test_trust.py", "test_pretrained.py", "test_browser.py", "test_lesson_notebook.py",
    "test_baselines_models.py", "test_examples.py", "test_variants.py", "test_sweep_report.py",
    "test_cnn_low_res.py", "test_svm_backend.py", "test_predict.py", "test_cli.py", "test_cnn_custom.py",
    "test_manifest_part.py",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = getattr(item, "originalname", item.name)
        if (item.path.name in SLOW_MODULES or name in SLOW_TESTS
                or SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))):
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its order
