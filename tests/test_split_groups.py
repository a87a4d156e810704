"""Leakage-free splits: near-duplicate groups never straddle training and test, in runs, sweeps and folds."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from facebench.data import find_near_duplicates, load_dataset, make_split, run_splits, subsample, synthesize
from facebench.data.neardup import straddling_groups
from planted import plant, relabel


@pytest.fixture
def grouped_table():
    rng = np.random.default_rng(2)
    n = 1500
    table = pd.DataFrame({"image_id": [f"img{i}" for i in range(n)], "path": [f"/x/img{i}" for i in range(n)],
                          "age": rng.integers(0, 90, n), "gender": rng.integers(0, 2, n)})
    groups = np.arange(n)
    for start in range(0, 600, 3):  # 200 groups of three faces, and some of two
        groups[start:start + 3] = start
    for start in range(600, 800, 2):
        groups[start + 1] = start
    table["near_group"] = groups
    return table


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """Synthetic faces plus a relabelled near-copy of 40 of them: a folder with 40 near-duplicate pairs."""
    folder = tmp_path_factory.mktemp("twins")
    synthesize(folder, n=160, seed=5, size=128)
    names = sorted(p.name for p in folder.glob("*.jpg"))
    for k, name in enumerate(names[:80:2]):
        plant(folder / name, folder / relabel(name, int(name.split("_")[0]), k), "mirror")
    return folder


@pytest.mark.parametrize("seed", [0, 1, 2, 7])
def test_a_group_never_straddles_the_split(grouped_table, seed):
    groups = grouped_table["near_group"].to_numpy()
    train, test = make_split(grouped_table, seed=seed, test_size=0.2, groups=groups)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(grouped_table)
    assert straddling_groups(groups, train, test) == 0
    assert abs(len(test) / len(grouped_table) - 0.2) < 0.02
    old_train, old_test = make_split(grouped_table, seed=seed, test_size=0.2)
    assert straddling_groups(groups, old_train, old_test) > 0  # the ungrouped split does let them straddle
    again = make_split(grouped_table, seed=seed, test_size=0.2, groups=groups)
    np.testing.assert_array_equal(test, again[1])


def test_faces_alone_split_as_before(grouped_table):
    alone = np.arange(len(grouped_table))
    for seed in (0, 3):
        grouped = make_split(grouped_table, seed=seed, test_size=0.25, groups=alone)
        plain = make_split(grouped_table, seed=seed, test_size=0.25)
        np.testing.assert_array_equal(grouped[0], plain[0])
        np.testing.assert_array_equal(grouped[1], plain[1])


def test_the_grouped_split_stays_stratified_and_fractions_stay_nested(grouped_table):
    from facebench.data import strata

    train, test = make_split(grouped_table, seed=0, groups=grouped_table["near_group"].to_numpy())
    labels = strata(grouped_table)
    overall = pd.Series(labels).value_counts(normalize=True)
    in_test = pd.Series(labels[test]).value_counts(normalize=True).reindex(overall.index, fill_value=0)
    assert (overall - in_test).abs().max() < 0.03
    subsets = [subsample(grouped_table, train, f, seed=0) for f in (0.1, 0.25, 0.5, 1.0)]
    assert set(subsets[0]) <= set(subsets[1]) <= set(subsets[2]) <= set(subsets[3]) == set(train)
    assert not set(subsets[3]) & set(test)


def test_run_splits_record_their_rule(grouped_table):
    splits, record = run_splits(grouped_table, trials=3, seed=0, test_size=0.2)
    assert record["rule"] == "verified" and record["straddling_groups"] == {"0": 0, "1": 0, "2": 0}
    assert len({tuple(test) for _, test in splits.values()}) == 3
    _, record = run_splits(grouped_table.drop(columns="near_group"), trials=1, seed=0, test_size=0.2)
    assert record["rule"] == "ungrouped" and "straddling_groups" not in record


def test_near_duplicates_of_real_folder_land_on_one_side(twins):
    dataset = find_near_duplicates(load_dataset(twins, cache_dir=False), cache_dir=False)
    assert dataset.audit["near_duplicates"]["groups"] >= 38  # 40 planted mirrors
    splits, record = run_splits(dataset.table, trials=3, seed=0, test_size=0.3)
    assert record["straddling_groups"] == {"0": 0, "1": 0, "2": 0}


def test_label_detector_folds_keep_groups_whole(grouped_table):
    from facebench.compare.label_errors.detector import _folds

    train = np.arange(len(grouped_table))
    groups = grouped_table["near_group"].to_numpy()
    for fit, held in _folds(grouped_table, train, 5, seed=0):
        assert not set(groups[fit]) & set(groups[held])


def test_sweep_validation_part_keeps_groups_whole(twins, tmp_path):
    from facebench.compare.search.study import validation_data
    from facebench.compare.search.sweep_config import load_sweep_config

    grid = tmp_path / "grid.toml"
    grid.write_text('base = "hog+ridge"\nmethod = "grid"\nobjective = "age_mae"\n[space]\norientations = [6, 9]\n')
    data = validation_data(load_sweep_config(path=grid, data=twins, out=tmp_path / "sweep"))
    groups = data["table"]["near_group"].to_numpy()
    assert straddling_groups(groups, data["fit"], data["val"]) == 0
    whole = find_near_duplicates(load_dataset(twins, cache_dir=False), cache_dir=False).table
    (_, test), = run_splits(whole, trials=1, seed=0, test_size=0.2)[0].values()
    left = set(whole["near_group"].iloc[test])
    assert not left & set(groups)  # no group of the run's test part reaches the sweep


def test_a_real_run_records_its_split_and_audit(tiny_run):
    info = json.loads((tiny_run / "run.json").read_text())
    assert info["split"]["rule"] == "verified"
    assert info["split"]["straddling_groups"] == {"0": 0}
    audit = json.loads((tiny_run / "audit.json").read_text())
    assert audit["near_duplicates"]["max_bits"] == 2 and audit["near_duplicates"]["groups"] == 0
    assert audit["split"]["rule"] == "verified"
    html = (tiny_run / "report.html").read_text(encoding="utf-8")
    assert "Near-duplicate photos" in html and "near-duplicate groups kept whole" in html


def test_a_run_split_by_the_old_rule_is_not_grown(tiny_run, tmp_path, capsys):
    from conftest import TINY_RUN_OVERRIDES
    from facebench.cli import main

    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    info = json.loads((old / "run.json").read_text())
    del info["split"]  # as a run made before the rule was recorded
    (old / "run.json").write_text(json.dumps(info))
    before = {p: p.stat().st_mtime_ns for p in old.rglob("*") if p.is_file() and p.name != "run.log"}
    faces = json.loads((old / "audit.json").read_text())["root"]
    argv = ["run", "--data", faces, "--preset", "quick", "--out", str(old), "-q", "--set", "trials=2"]
    for item in TINY_RUN_OVERRIDES:
        argv += ["--set", item]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "older rule" in err[0] and f"--out {old}-grouped" in err[0]
    changed = [p for p, t in before.items() if p.exists() and p.stat().st_mtime_ns != t and p.name != ".lock"]
    assert not changed, changed


def test_a_sweep_cut_by_the_old_rule_is_not_grown(twins, tmp_path):
    from facebench.compare.search.study import sweep
    from facebench.compare.search.sweep_config import load_sweep_config
    from facebench.errors import UserError

    grid = tmp_path / "grid.toml"
    grid.write_text('base = "hog+ridge"\nmethod = "grid"\nobjective = "age_mae"\nbootstrap = 0\nn_jobs = 1\n'
                    '[space]\norientations = [6, 9]\n')
    out = tmp_path / "sweep"
    sweep(load_sweep_config(path=grid, data=twins, out=out), quiet=True)
    info = json.loads((out / "sweep.json").read_text())
    assert info["validation"]["split"] == "verified"
    rows = info["validation"]["rows"]
    del info["validation"]["split"]  # as a sweep made before the rule was recorded
    (out / "sweep.json").write_text(json.dumps(info))
    config_before = (out / "sweep.toml").read_text()
    with pytest.raises(UserError, match=f"older rule .*--out {out}-grouped"):
        sweep(load_sweep_config(path=grid, data=twins, out=out, overrides=["n=3"]), quiet=True)
    # fit and validation faces this version would draw otherwise (other near-duplicate groups)
    info["validation"] |= {"split": "verified", "rows": "0" * len(rows)}
    (out / "sweep.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match=f"near-duplicate groups changed.*--out {out}-resplit"):
        sweep(load_sweep_config(path=grid, data=twins, out=out, overrides=["n=3"]), quiet=True)
    assert (out / "sweep.toml").read_text() == config_before  # refused before anything changed
    info["validation"]["rows"] = rows  # the same faces: grown
    (out / "sweep.json").write_text(json.dumps(info))
    sweep(load_sweep_config(path=grid, data=twins, out=out, overrides=["n=3"]), quiet=True)
