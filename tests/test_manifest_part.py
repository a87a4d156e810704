"""Splits a user brings: a manifest's part (and trial) columns fix the split; bad columns stop with one line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from facebench.cli import main
from facebench.data import find_near_duplicates, load_dataset, run_splits, synthesize
from facebench.errors import UserError
from planted import plant, relabel

MODELS = ["--set", "models.gender=['dummy','hog+linsvm']", "--set", "models.age=['dummy','hog+ridge']",
          "--set", "models.cnn=[]", "--set", "bootstrap=100", "--set", "n_jobs=1"]


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces")
    synthesize(folder, n=80, seed=7, size=128)
    names = sorted(p.name for p in folder.glob("*.jpg"))
    plant(folder / names[0], folder / relabel(names[0], 30, 0), "mirror")  # a twin of the first face
    return folder


def _manifest(faces, tmp_path, part=None, trial=None, name="faces.csv"):
    """A manifest of every face: part test for every fifth face (and the twin), else train."""
    rows = []
    for k, path in enumerate(sorted(faces.glob("*.jpg"))):
        age, gender = path.name.split("_")[:2]
        rows.append({"path": str(path), "age": age, "gender": gender,
                     "part": "test" if k % 5 == 1 or path.name.startswith("30_") else "train"})
    frame = pd.DataFrame(rows)
    if part is not None:
        part(frame)
    if trial is not None:
        frame = trial(frame)
    out = tmp_path / name
    frame.to_csv(out, index=False)
    return out, frame


def test_the_manifest_split_is_used_as_given(faces, tmp_path):
    manifest, frame = _manifest(faces, tmp_path)
    dataset = find_near_duplicates(load_dataset(manifest, cache_dir=False), cache_dir=False)
    splits, record = run_splits(dataset.table, trials=2, seed=0, test_size=0.2, user_split=dataset.user_split)
    assert record["rule"] == "user"
    by_id = dataset.table["image_id"].to_numpy()
    for train, test in splits.values():  # no trial column: the one split serves every trial
        assert set(by_id[test]) == set(frame.loc[frame.part == "test", "path"])
        assert set(by_id[train]) == set(frame.loc[frame.part == "train", "path"])
    assert record["straddling_groups"] == {"0": 1, "1": 1}  # the first face trains, its twin tests


def test_a_trial_column_gives_each_trial_its_split(faces, tmp_path):
    def two_trials(frame):
        other = frame.copy()
        other["part"] = np.where(np.arange(len(frame)) % 4 == 2, "test", "train")
        return pd.concat([frame.assign(trial=0), other.assign(trial=1)], ignore_index=True)

    manifest, frame = _manifest(faces, tmp_path, trial=two_trials)
    dataset = load_dataset(manifest, cache_dir=False)
    assert len(dataset.table) == len(frame) // 2  # each face listed once per trial, used once
    splits, _ = run_splits(dataset.table, trials=2, seed=0, test_size=0.2, user_split=dataset.user_split)
    ids = dataset.table["image_id"].to_numpy()
    for trial in (0, 1):
        rows = frame[(frame.trial == trial) & (frame.part == "test")]
        assert set(ids[splits[trial][1]]) == set(rows["path"])
    with pytest.raises(UserError, match="trials = 3, but the manifest's trial column numbers 2"):
        run_splits(dataset.table, trials=3, seed=0, test_size=0.2, user_split=dataset.user_split)


def test_a_run_uses_the_manifest_split_and_says_so(faces, tmp_path):
    manifest, frame = _manifest(faces, tmp_path)
    out = tmp_path / "run"
    assert main(["run", "--data", str(manifest), "--preset", "quick", "--out", str(out), "-q", *MODELS]) == 0
    split = pd.read_csv(out / "split.csv")
    assert set(split.loc[split.part == "test", "image_id"]) == set(frame.loc[frame.part == "test", "path"])
    info = json.loads((out / "run.json").read_text())
    assert info["split"]["rule"] == "user" and info["split"]["straddling_groups"] == {"0": 1}
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "the manifest&#39;s part column, as given" in html or "the manifest's part column, as given" in html
    assert "trial 0: 1 (the split is used as given)" in html


def _unknown_part(frame):
    frame.loc[6, "part"] = "tset"


def _no_female_test(frame):
    frame.loc[(frame.part == "test") & (frame.gender == "1"), "part"] = "train"


def _gap(frame):
    return pd.concat([frame.assign(trial=0), frame.assign(trial=2)], ignore_index=True)


def _empty_trial(frame):
    frame = frame.assign(trial="0")
    frame.loc[3, "trial"] = ""
    return frame


def _bad_trial(frame):
    frame = frame.assign(trial="0")
    frame.loc[4, "trial"] = "1.5"
    return frame


@pytest.mark.parametrize("part, trial, message", [
    (_unknown_part, None, "line 8: part = 'tset' is invalid: expected train or test"),
    (_no_female_test, None, "the split has no female face with part = test"),
    (None, _gap, "trial = 2 leaves a gap: no line has trial 1"),
    (None, _empty_trial, "line 5: trial is empty"),
    (None, _bad_trial, "line 6: trial = '1.5' is invalid: expected a whole number"),
])
def test_a_bad_split_column_stops_with_one_line_and_writes_nothing(faces, tmp_path, capsys, part, trial, message):
    manifest, _ = _manifest(faces, tmp_path, part=part, trial=trial)
    out = tmp_path / "run"
    assert main(["run", "--data", str(manifest), "--preset", "quick", "--out", str(out), "-q", *MODELS]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert str(manifest) in err[0]
    assert not out.exists()
    with pytest.raises(UserError, match="line|trial|split"):
        load_dataset(manifest, cache_dir=False)
