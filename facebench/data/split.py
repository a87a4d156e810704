"""Deterministic stratified splits, and nested training fractions.

Strata are age band x gender. The test part of a trial is fixed; a training
fraction takes the first ``ceil(fraction * n)`` images of each stratum in one
seeded order, so the subsets are nested (the 10 % subset lies inside the 50 %
one) and every model of a trial sees the same images.

With ``groups`` (a table's ``near_group`` column, :mod:`facebench.data.neardup`) the
split is drawn over groups, each stratified by its first face: a group of
near-duplicate photos lands whole in the training or the test part, never in both.
When every face is a group of its own, the grouped split is the ungrouped one.
A split a user brings (a manifest's ``part`` column) is used as given
(:func:`user_splits`).
"""

from __future__ import annotations


import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from .labels import age_band


def strata(table: pd.DataFrame) -> np.ndarray:
    """Stratum label ``"<age band>|<gender>"`` of each row."""
    return age_band(table["age"]).astype(str) + "|" + table["gender"].astype(str).to_numpy()


def make_split(table: pd.DataFrame, seed: int = 0, test_size: float = 0.2, groups=None):
    """Split rows into train and test positions, stratified by age band x gender.

    Parameters
    ----------
    table : DataFrame with ``age`` and ``gender``
    seed : int
    test_size : float in (0, 1)
    groups : array of int, optional
        One group id per row (e.g. ``table["near_group"]``): a group's rows all go to
        the same part. The test part then holds ``test_size`` of the groups, which is
        ``test_size`` of the rows to within the few groups of more than one face.

    Returns
    -------
    train_idx, test_idx : ndarray of int
        Sorted row positions into ``table``.
    """
    if not 0 < test_size < 1:
        raise ValueError(f"test_size={test_size}: expected a fraction between 0 and 1")
    n = len(table)
    if n < 4:
        raise ValueError(f"need at least 4 images to split, got {n}")
    if groups is None:
        return _stratified(table, np.arange(n), seed, test_size)
    groups = np.asarray(groups)
    if len(groups) != n:
        raise ValueError(f"{len(groups)} group ids for {n} rows")
    # one row per group (its first), split as rows are; then every row follows its group
    ids, first = np.unique(groups, return_index=True)
    order = np.argsort(first, kind="stable")
    ids, first = ids[order], first[order]
    if len(ids) < 4:
        raise ValueError(f"need at least 4 groups of images to split, got {len(ids)}")
    train_g, test_g = _stratified(table.iloc[first].reset_index(drop=True), np.arange(len(ids)), seed, test_size)
    in_test = np.isin(groups, ids[test_g])
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)


def _stratified(table: pd.DataFrame, idx: np.ndarray, seed: int, test_size: float):
    labels = _mergeable_strata(table, min_count=2)
    try:
        train, test = train_test_split(idx, test_size=test_size, random_state=seed, stratify=labels)
    except ValueError:  # a tiny table whose strata cannot all reach both parts
        train, test = train_test_split(idx, test_size=test_size, random_state=seed)
    return np.sort(train), np.sort(test)


#: How a run's splits were made, as ``run.json`` records them (runs before the rules record none).
SPLIT_RULES = {
    "verified": "stratified by age band x gender; near-duplicate groups kept whole on one side (candidates by hash "
                "and thumbnail verified by an aligned correlation: re-cropped copies included)",
    "grouped": "stratified by age band x gender; near-duplicate groups (DCT hash within 2 bits) kept whole on one side",
    "ungrouped": "stratified by age band x gender; near-duplicates not looked for",
    "user": "the manifest's part column, as given",
}


def run_splits(table: pd.DataFrame, *, trials: int, seed: int, test_size: float, user_split=None):
    """Every trial's split of a run, and the record of how they were made.

    Trial ``t`` is drawn with ``seed + t``. A manifest's split (``user_split``, see
    :mod:`facebench.data.manifest_split`) is used as given; otherwise the split is
    grouped by the table's ``near_group`` column when it has one with a group of more
    than one face.

    Returns
    -------
    splits : dict of int to (train_rows, test_rows)
    record : dict
        ``rule`` (a key of :data:`SPLIT_RULES`), ``description`` and, when the table has
        near-duplicate groups, ``straddling_groups``: per trial, how many groups have
        faces on both sides (0 for a grouped split; a user's split may have some).
    """
    from .manifest_split import user_splits
    from .neardup import straddling_groups

    groups = table["near_group"].to_numpy() if "near_group" in table else None
    if user_split is not None:
        splits, rule = user_splits(table, user_split, trials), "user"
    else:
        grouped = groups is not None and len(np.unique(groups)) < len(groups)
        rule = "verified" if groups is not None else "ungrouped"
        splits = {t: make_split(table, seed=seed + t, test_size=test_size, groups=groups if grouped else None)
                  for t in range(trials)}
    record = {"rule": rule, "description": SPLIT_RULES[rule]}
    if groups is not None:
        record["straddling_groups"] = {str(t): straddling_groups(groups, *s) for t, s in splits.items()}
    return splits, record


def subsample(table: pd.DataFrame, train_idx, fraction: float, seed: int = 0) -> np.ndarray:
    """A stratified, nested subset of ``train_idx`` holding ``round(fraction * n)`` rows.

    Each stratum is shuffled (seeded) and its i-th member gets the key
    ``(i + u) / n_stratum`` with one random offset ``u`` per stratum; the subset
    is the prefix of all rows sorted by key. So every stratum gives its share
    to within one image, the size is exact, and for one seed the subset of a
    smaller fraction lies inside the subset of a larger one.
    """
    train_idx = np.asarray(train_idx)
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction={fraction}: expected 0 < fraction <= 1")
    if fraction == 1:
        return np.sort(train_idx)
    labels = strata(table.iloc[train_idx])
    rng = np.random.default_rng(seed)
    keys = np.empty(len(train_idx))
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        ranks = rng.permutation(len(members))
        keys[members] = (ranks + rng.random()) / len(members)
    n_keep = max(1, int(round(fraction * len(train_idx))))
    order = np.lexsort((np.arange(len(keys)), keys))
    return np.sort(train_idx[order[:n_keep]])


def _mergeable_strata(table: pd.DataFrame, min_count: int) -> np.ndarray:
    """Strata, with those too small to stratify folded into their gender."""
    labels = strata(table)
    counts = pd.Series(labels).value_counts()
    small = np.isin(labels, counts[counts < min_count].index)
    labels = labels.astype(object)
    labels[small] = "rare|" + table["gender"].astype(str).to_numpy()[small]
    counts = pd.Series(labels).value_counts()
    if (counts < min_count).any():
        labels[np.isin(labels, counts[counts < min_count].index)] = "rare"
    return labels
