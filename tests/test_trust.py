"""Trust and crash safety: a shared run directory runs no code, and no fault loses or mixes results.

Each test works on a copy of one real run (the runner's own output, classical models
only, so it is quick) and checks what a careful user would try.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import signal
import stat
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import pandas as pd
import pytest

from facebench.cli import main
from facebench.data import synthesize
from facebench.rundir import layout, units

MODELS = ["--set", "models.gender=['dummy', 'hog+linsvm']", "--set", "models.age=['hog+ridge']",
          "--set", "models.cnn=[]", "--set", "fractions=[0.5, 1.0]", "--set", "bootstrap=100",
          "--set", "n_jobs=1"]


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces")
    synthesize(folder, n=160, seed=3, size=48)
    return folder


def _run_argv(faces, out, *extra):
    return ["run", "--data", str(faces), "--preset", "quick", "--out", str(out), "-q", *MODELS, *extra]


@pytest.fixture(scope="module")
def original(faces, tmp_path_factory):
    """The module's run, written under the umask 022 (test_output_files_honour_the_umask reads its modes)."""
    out = tmp_path_factory.mktemp("trusted") / "run"
    old = os.umask(0o022)
    try:
        assert main(_run_argv(faces, out)) == 0
    finally:
        os.umask(old)
    return out


@pytest.fixture()
def run_copy(original, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(original, copy)
    return copy


def _reseal(run_dir: Path, uid: str) -> None:
    """Rewrite a unit's manifest so that its (edited) files pass the check, as an attacker would."""
    folder = layout.unit_dir(run_dir, uid)
    manifest = json.loads((folder / layout.UNIT_MANIFEST).read_text())
    for name in manifest["files"]:
        manifest["files"][name] = {"bytes": (folder / name).stat().st_size, "sha256": units._sha256(folder / name)}
    (folder / layout.UNIT_MANIFEST).write_text(json.dumps(manifest))


def _classical_units(run_dir):
    return sorted(p.name for p in layout.units_dir(run_dir).iterdir() if (p / layout.CLASSICAL_MODEL).exists())


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_in_a_run_directory_runs_no_code(run_copy, faces, tmp_path, capsys):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Evil(marker))
    for uid in _classical_units(run_copy):
        (layout.unit_dir(run_copy, uid) / layout.CLASSICAL_MODEL).write_bytes(payload)
        _reseal(run_copy, uid)
    (run_copy / "models").mkdir()
    (run_copy / "models" / "t0_f1.0_hog-linsvm.joblib").write_bytes(payload)  # the old place of model files
    face = next(faces.glob("*.jpg"))

    assert main(["report", str(run_copy)]) == 0
    capsys.readouterr()
    assert main(["predict", "--run", str(run_copy), "--model", "hog+linsvm", str(face)]) == 2
    assert "not a facebench model file" in capsys.readouterr().err
    assert main(["explain", "--run", str(run_copy), str(face), "--out", str(tmp_path / "x.png")]) in (0, 2)
    assert main(_run_argv(faces, run_copy)) == 0  # a resume keeps the units and loads no pickle
    assert not marker.exists()


def test_a_model_file_holding_onedal_estimators_is_refused_naming_them(run_copy, faces, capsys):
    """facebench saves oneDAL-fitted models as plain scikit-learn ones; a file with sklearnex's own types is foreign."""
    onedal_svm = pytest.importorskip("sklearnex.svm")
    import skops.io as sio

    uid = "t0_f1.0_hog-linsvm"  # the unit predict answers from
    path = layout.unit_dir(run_copy, uid) / layout.CLASSICAL_MODEL
    meta = {"model": "hog+linsvm", "unit": uid, "features": {"image_size": 64, "color": "gray"}}
    path.write_bytes(sio.dumps({"meta": meta, "estimators": {"gender": onedal_svm.SVC(), "age": onedal_svm.SVR()}}))
    _reseal(run_copy, uid)
    face = next(faces.glob("*.jpg"))
    assert main(["predict", "--run", str(run_copy), "--model", "hog+linsvm", str(face)]) == 2
    err = capsys.readouterr().err
    assert "refused to load" in err and "sklearnex.svm._classes.SVC" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


#: Each kind of damage, done to a unit of its own (one rerun recomputes them all).
DAMAGES = {"truncate-metrics": "t0_f1.0_hog-linsvm", "truncate-predictions": "t0_f0.5_hog-linsvm",
           "garbage-manifest": "t0_f1.0_hog-ridge", "no-manifest": "t0_f0.5_hog-ridge"}


def test_a_damaged_unit_is_recomputed_never_used(run_copy, faces):
    before = pd.read_csv(run_copy / "metrics.csv")
    for damage, uid in DAMAGES.items():
        folder = layout.unit_dir(run_copy, uid)
        if damage == "truncate-metrics":
            data = (folder / "metrics.csv").read_bytes()
            (folder / "metrics.csv").write_bytes(data[: len(data) // 2])
        elif damage == "truncate-predictions":
            data = (folder / "predictions.csv.gz").read_bytes()
            (folder / "predictions.csv.gz").write_bytes(data[:40])
        elif damage == "garbage-manifest":
            (folder / "manifest.json").write_text("not json at all")
        else:
            (folder / "manifest.json").unlink()
        assert units.check_unit(run_copy, uid) is not None, damage
    assert main(_run_argv(faces, run_copy)) == 0
    log = (run_copy / "run.log").read_text()
    for damage, uid in DAMAGES.items():
        assert f"unit {uid} is damaged" in log, damage
        assert units.check_unit(run_copy, uid) is None, damage
    # the damaged units and none other are run again
    assert any(f"{len(DAMAGES)} to run" in line for line in log.splitlines()[-30:])
    after = pd.read_csv(run_copy / "metrics.csv")
    pd.testing.assert_frame_equal(before, after)


def test_a_run_without_its_config_next_to_finished_units_stops(run_copy, faces, capsys):
    (run_copy / "config.toml").unlink()
    split = (run_copy / "split.csv").read_bytes()
    assert main(_run_argv(faces, run_copy, "--set", "test_size=0.3")) == 2
    err = capsys.readouterr().err
    assert "no config.toml" in err and err.count("\n") == 1
    assert (run_copy / "split.csv").read_bytes() == split


def test_a_changed_config_is_refused_naming_the_key(run_copy, faces, capsys):
    assert main(_run_argv(faces, run_copy, "--set", "test_size=0.3")) == 2
    assert "test_size" in capsys.readouterr().err


def test_a_second_run_on_the_same_directory_is_refused(run_copy, faces, capsys):
    script = ("import sys, time; from facebench.rundir import lock\n"
              "with lock.hold(sys.argv[1], 'facebench run'):\n    print('held', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", script, str(run_copy)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(_run_argv(faces, run_copy)) == 2
        err = capsys.readouterr().err
        assert f"in use by another facebench run (pid {holder.pid}" in err and err.count("\n") == 1
    finally:
        holder.kill()
        holder.wait()


def test_workers_do_not_outlive_a_killed_run(faces, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent("""
        import os
        if os.environ.get("FB_SLOW_UNITS"):
            import time
            import facebench.compare.running.unit_bodies as units
            def slow(*args, **kwargs):
                open(os.path.join(os.environ["FB_SLOW_UNITS"], f"worker-{os.getpid()}"), "w").close()
                time.sleep(300)
            units.run_classical_unit = slow
    """))
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "FB_SLOW_UNITS": str(marks)}
    argv = [a if a != "n_jobs=1" else "n_jobs=2" for a in _run_argv(faces, tmp_path / "run")]
    proc = subprocess.Popen([sys.executable, "-m", "facebench.cli", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while len(list(marks.iterdir())) < 2 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        workers = [int(p.name.split("-")[1]) for p in marks.iterdir()]
        assert len(workers) == 2, "the run did not start two workers"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 10
        while any(_alive(pid) for pid in workers) and time.time() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in workers if _alive(pid)]
    finally:
        if proc.poll() is None:
            proc.kill()


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def test_output_files_honour_the_umask(original):
    out = original  # written under the umask 022
    paths = [out / n for n in ("report.html", "metrics.csv", "predictions.csv.gz", "audit.json", "run.json",
                               "config.toml", "split.csv", "models.csv")]
    paths += list((out / "tables").iterdir()) + [p for d in (out / "units").iterdir() for p in d.iterdir()]
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in paths} == {oct(0o644)}
    folders = [out / "units", out / "tables", *(out / "units").iterdir()]
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in folders} == {oct(0o755)}


def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(faces, tmp_path, monkeypatch, capsys):
    import facebench.rundir.units as unit_writer

    real = unit_writer.share_tree

    def full(folder):
        raise OSError(errno.ENOSPC, "No space left on device", str(folder))

    monkeypatch.setattr(unit_writer, "share_tree", full)
    out = tmp_path / "run"
    assert main(_run_argv(faces, out)) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    assert [p for p in (out / "units").iterdir()] == []
    monkeypatch.setattr(unit_writer, "share_tree", real)

    import facebench.io as io_module

    def full_write(path, write):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(io_module, "atomic_write", full_write)
    assert main(_run_argv(faces, tmp_path / "run2")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "Traceback" not in err


@pytest.mark.parametrize("case", ["file", "under-file"])
def test_an_invalid_out_is_one_line(faces, tmp_path, capsys, case):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    out = blocker if case == "file" else blocker / "run"
    assert main(_run_argv(faces, out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err


def test_a_binary_config_is_one_line(faces, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_bytes(bytes(range(256)) * 4)
    assert main(["run", "--data", str(faces), "--config", str(config), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--config" in err


def _png_claiming(path: Path, width: int, height: int) -> None:
    """A small valid PNG whose header claims ``width x height`` pixels."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def test_image_bombs_are_refused_by_predict_and_explain(original, tmp_path, capsys):
    bomb = tmp_path / "bomb.png"
    _png_claiming(bomb, 50_000, 50_000)
    assert main(["predict", "--run", str(original), str(bomb)]) == 2
    err = capsys.readouterr().err
    assert "too large" in err and "Traceback" not in err
    assert main(["explain", "--run", str(original), str(bomb), "--out", str(tmp_path / "e.png")]) == 2
    assert "too large" in capsys.readouterr().err


def test_predict_says_when_it_answers_from_a_smaller_training_set(run_copy, faces, capsys):
    shutil.rmtree(layout.unit_dir(run_copy, "t0_f1.0_hog-linsvm"))
    face = next(faces.glob("*.jpg"))
    assert main(["predict", "--run", str(run_copy), "--model", "hog+linsvm", str(face)]) == 0
    captured = capsys.readouterr()
    assert "fraction 0.5" in captured.err
    line = json.loads(captured.out.splitlines()[0])
    assert line["models"]["hog+linsvm"]["fraction"] == 0.5
