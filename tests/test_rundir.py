"""The run-directory package on its own: layout, units proved whole, safe model files, lock, file modes."""

from __future__ import annotations

import json
import os
import pickle
import stat
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from facebench import io
from facebench.errors import UserError
from facebench.rundir import layout, lock, saved, units


@pytest.fixture()
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_unit_ids_round_trip_and_names_are_file_safe():
    assert layout.unit_id(0, 1.0, "hog+svm") == "t0_f1.0_hog-svm"
    assert layout.unit_id(2, 0.25, "cnn-default") == "t2_f0.25_cnn-default"
    assert layout.parse_unit_id("t2_f0.25_cnn-default") == (2, 0.25, "cnn-default")
    assert layout.parse_unit_id(".t0_f1.0_x.tmp123") is None
    assert layout.parse_unit_id("t0_fabc_x") is None
    assert layout.safe_name("a b/c+d") == "a-b-c-d"


def _frames(n=3):
    pred = pd.DataFrame({c: range(n) for c in layout.PRED_COLUMNS})
    met = pd.DataFrame({c: range(n) for c in layout.METRIC_COLUMNS})
    return pred, met


def test_a_unit_is_whole_until_a_byte_changes(tmp_path):
    pred, met = _frames()
    uid = "t0_f1.0_hog-svm"
    units.write_unit(tmp_path, uid, pred, met, {"fit_s": 1.0},
                     write_model=lambda folder: (folder / layout.CLASSICAL_MODEL).write_bytes(b"model"))
    assert units.check_unit(tmp_path, uid) is None
    manifest = json.loads((layout.unit_dir(tmp_path, uid) / layout.UNIT_MANIFEST).read_text())
    assert set(manifest["files"]) == {layout.UNIT_PREDICTIONS, layout.UNIT_METRICS, layout.UNIT_TIMING,
                                      layout.CLASSICAL_MODEL}
    metrics = layout.unit_dir(tmp_path, uid) / layout.UNIT_METRICS
    metrics.write_bytes(metrics.read_bytes()[:-5])
    assert "bytes" in units.check_unit(tmp_path, uid)
    units.write_unit(tmp_path, uid, pred, met, {"fit_s": 1.0})
    assert units.check_unit(tmp_path, uid) is None
    model = layout.unit_dir(tmp_path, uid) / layout.UNIT_TIMING
    model.write_bytes(model.read_bytes().replace(b"1.0", b"2.0"))
    assert "checksum" in units.check_unit(tmp_path, uid)
    (layout.unit_dir(tmp_path, uid) / layout.UNIT_MANIFEST).write_text("{garbage")
    assert units.check_unit(tmp_path, uid) == "unreadable manifest"
    (layout.unit_dir(tmp_path, uid) / layout.UNIT_MANIFEST).unlink()
    assert "no manifest" in units.check_unit(tmp_path, uid)
    assert units.check_unit(tmp_path, "t9_f1.0_none") == "missing"


def test_a_failed_write_leaves_nothing_and_leftovers_are_removed(tmp_path):
    pred, met = _frames()

    def full_disk(folder):
        (folder / layout.CLASSICAL_MODEL).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        units.write_unit(tmp_path, "t0_f1.0_x", pred, met, {}, write_model=full_disk)
    assert list(layout.units_dir(tmp_path).iterdir()) == []
    (layout.units_dir(tmp_path) / ".t0_f1.0_x.abc").mkdir()
    assert units.remove_leftovers(tmp_path) == 1
    assert list(layout.units_dir(tmp_path).iterdir()) == []


def test_files_and_folders_honour_the_umask(tmp_path, umask022):
    io.atomic_write_text(tmp_path / "a.txt", "x")
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    pred, met = _frames()
    folder = units.write_unit(tmp_path, "t0_f1.0_x", pred, met, {})
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o644}
    os.umask(0o077)
    io.atomic_write_text(tmp_path / "b.txt", "x")
    assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o600


def test_classical_model_files_load_only_trusted_types(tmp_path):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20.0)
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    path = saved.save_classical(tmp_path / "m.skops", {"model": "ridge"}, {"age": model})
    meta, estimators = saved.load_classical(path, trusted=[])
    assert meta == {"model": "ridge"}
    np.testing.assert_array_equal(estimators["age"].predict(X), model.predict(X))

    evil = make_pipeline(FunctionTransformer(os.system))
    path = saved.save_classical(tmp_path / "evil.skops", {}, {"age": evil})
    with pytest.raises(UserError, match="does not trust: .*system"):
        saved.load_classical(path, trusted=["sklearn.pipeline.Pipeline"])


def test_a_pickle_is_not_a_model_file(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "model.skops"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(UserError, match="not a facebench model file"):
        saved.load_classical(path, trusted=[])
    assert not marker.exists()


def test_models_table_round_trip(tmp_path):
    rows = [{"name": "hog+svm", "kind": "classical", "tasks": ("gender",), "family": "hand-crafted",
             "features": "hog", "estimator": "svm", "image_size": 64, "color": None, "params": {},
             "summary": "HOG -> SVC"},
            {"name": "cnn-default", "kind": "cnn", "tasks": ("age", "gender"), "family": "learned",
             "features": "learned", "estimator": "keras", "image_size": 64, "color": "gray",
             "params": {"epochs": 3, "filters": [16, 32]}, "summary": "CNN"}]
    saved.write_models_table(tmp_path, rows)
    table = saved.read_models_table(tmp_path)
    assert list(table.columns) == layout.MODELS_COLUMNS
    assert table["tasks"].tolist() == [("gender",), ("age", "gender")]
    assert table["params"][1] == {"epochs": 3, "filters": [16, 32]}
    assert table["image_size"].tolist() == [64, 64]
    with pytest.raises(ValueError, match="family"):
        saved.write_models_table(tmp_path, [{**rows[0], "family": "guess"}])


def test_check_run_dir_says_what_is_wrong(tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        layout.check_run_dir(tmp_path / "nope")
    with pytest.raises(UserError, match="no run.json"):
        layout.check_run_dir(tmp_path)
    (tmp_path / "metrics.csv").write_text("trial\n")
    with pytest.raises(UserError, match=r"facebench 0\.1 \(run-directory format 1\).*facebench run --config"):
        layout.check_run_dir(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps({"format": 7, "facebench": "9.0"}))
    with pytest.raises(UserError, match="written by facebench 9.0 .*format 7"):
        layout.check_run_dir(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps({"format": layout.FORMAT}))
    assert layout.check_run_dir(tmp_path) == tmp_path
    with pytest.raises(UserError, match="has not finished"):
        layout.check_run_dir(tmp_path, need=("paired.csv",))


def test_a_second_holder_is_refused_with_the_first_named(tmp_path):
    script = ("import sys, time; from facebench.rundir import lock\n"
              "with lock.hold(sys.argv[1], 'facebench run --first'):\n"
              "    print('held', flush=True); time.sleep(30)\n")
    holder = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=f"in use by another facebench run \\(pid {holder.pid} "):
            with lock.hold(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    with lock.hold(tmp_path):  # a killed holder leaves the lock free
        assert (tmp_path / lock.HOLDER_FILE).exists()
    assert not (tmp_path / lock.HOLDER_FILE).exists()
