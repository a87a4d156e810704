"""Stratified, deterministic splits and nested training fractions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from facebench.data import age_band, make_split, strata, subsample
from facebench.rundir.write import write_split


@pytest.fixture
def table():
    rng = np.random.default_rng(1)
    n = 2000
    ages = np.concatenate([rng.integers(0, 4, 300), rng.integers(20, 36, 1000), rng.integers(4, 100, 700)])
    return pd.DataFrame({
        "image_id": [f"img{i}" for i in range(n)], "path": [f"/x/img{i}" for i in range(n)],
        "age": ages, "gender": rng.integers(0, 2, n), "race": pd.array(rng.integers(0, 5, n), dtype="Int64"),
    })


def test_age_bands():
    assert age_band([0, 2, 3, 12, 13, 19, 20, 69, 70, 116]).tolist() == [
        "0-2", "0-2", "3-12", "3-12", "13-19", "13-19", "20-29", "60-69", "70+", "70+"]


def test_split_is_disjoint_complete_and_deterministic(table):
    train, test = make_split(table, seed=3, test_size=0.2)
    assert len(np.intersect1d(train, test)) == 0
    assert len(train) + len(test) == len(table)
    assert abs(len(test) - 400) <= 1
    again = make_split(table, seed=3, test_size=0.2)
    np.testing.assert_array_equal(train, again[0])
    other = make_split(table, seed=4, test_size=0.2)
    assert not np.array_equal(test, other[1])


def test_split_is_stratified_by_age_band_and_gender(table):
    train, test = make_split(table, seed=0)
    labels = strata(table)
    overall = pd.Series(labels).value_counts(normalize=True)
    in_test = pd.Series(labels[test]).value_counts(normalize=True).reindex(overall.index, fill_value=0)
    assert (overall - in_test).abs().max() < 0.01


def test_fractions_are_nested_stratified_and_keep_test_fixed(table):
    train, test = make_split(table, seed=0)
    subsets = {f: subsample(table, train, f, seed=0) for f in (0.1, 0.25, 0.5, 1.0)}
    assert set(subsets[0.1]) <= set(subsets[0.25]) <= set(subsets[0.5]) <= set(subsets[1.0]) == set(train)
    assert len(subsets[0.25]) == round(0.25 * len(train))
    labels = strata(table)
    full = pd.Series(labels[train]).value_counts(normalize=True)
    part = pd.Series(labels[subsets[0.25]]).value_counts(normalize=True).reindex(full.index, fill_value=0)
    assert (full - part).abs().max() < 0.02
    assert not set(subsets[0.5]) & set(test)
    np.testing.assert_array_equal(subsample(table, train, 0.25, seed=0), subsets[0.25])


@pytest.mark.parametrize("bad", [0, -0.1, 1.5])
def test_bad_fraction_names_value(table, bad):
    train, _ = make_split(table)
    with pytest.raises(ValueError, match=f"fraction={bad}"):
        subsample(table, train, bad)


def test_tiny_table_still_splits():
    t = pd.DataFrame({"age": [1, 30, 50, 70, 90], "gender": [0, 1, 0, 1, 0]})
    train, test = make_split(t, seed=0, test_size=0.4)
    assert len(train) + len(test) == 5 and len(test) >= 1


def test_write_split(table, tmp_path):
    splits = {0: make_split(table, seed=0), 1: make_split(table, seed=1)}
    write_split(tmp_path, table, splits)
    out = pd.read_csv(tmp_path / "split.csv")
    assert list(out.columns) == ["trial", "part", "image_id", "path", "age", "gender", "race"]
    assert len(out) == 2 * len(table)
    assert (out.groupby("trial")["part"].value_counts().unstack()["test"] == len(splits[0][1])).all()
