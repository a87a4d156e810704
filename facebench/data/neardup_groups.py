"""Near-duplicate groups once found: the audit's account of them, and how many straddle a split.

The detection (:mod:`facebench.data.neardup`) joins verified pairs into groups; this module
says what the groups hold (their labels, whether they agree, what the label rule did) and
checks a split against them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def summarise(table: pd.DataFrame, pairs: pd.DataFrame, groups: np.ndarray, labels: str, max_listed: int):
    """The audit's ``near_duplicates`` block and which rows leave (disagreeing groups under keep-none).

    ``pairs`` are the verified pairs (``i``, ``j``, ``bits``, ``similarity``), ``groups`` each
    row's group id; at most ``max_listed`` groups are listed one by one.
    """
    sizes = pd.Series(groups).value_counts()
    multi = sizes[sizes > 1].index
    pair_bits = pd.Series(pairs["bits"].to_numpy(), index=groups[pairs["i"].to_numpy()]) if len(pairs) else None
    pair_sim = pd.Series(pairs["similarity"].to_numpy(), index=groups[pairs["i"].to_numpy()]) if len(pairs) else None
    listed, drop = [], np.zeros(len(table), dtype=bool)
    n_age, n_gender, n_disagree = 0, 0, 0
    in_multi = np.flatnonzero(np.isin(groups, multi))
    members_of = {g: list(rows) for g, rows in pd.Series(in_multi).groupby(groups[in_multi])}
    for gid in sorted(multi):
        rows = table.iloc[members_of[gid]].sort_values("image_id", kind="stable")
        ages = [int(a) for a in rows["age"]]
        genders = [int(g) for g in rows["gender"]]
        races = [None if pd.isna(r) else int(r) for r in rows["race"]]
        spread = max(ages) - min(ages)
        conflict = len(set(genders)) > 1
        disagree = spread > 0 or conflict or len(set(races)) > 1
        n_age += spread > 0
        n_gender += conflict
        n_disagree += disagree
        if disagree and labels == "keep-none":
            drop[np.asarray(members_of[gid])] = True
            action = "labels disagree: all excluded"
        else:
            action = "kept together on one side of every split"
        if len(listed) < max_listed:
            bits = pair_bits.loc[[gid]] if pair_bits is not None else pd.Series([0])
            listed.append({"files": list(rows["image_id"]), "ages": ages, "genders": genders, "races": races,
                           "age_spread": int(spread), "gender_conflict": bool(conflict),
                           "max_bits": int(np.max(bits)),
                           "min_similarity": round(float(np.min(pair_sim.loc[[gid]])), 3) if pair_sim is not None else 1.0,
                           "action": action})
    summary = {"groups": int(len(multi)), "faces": int(sizes[sizes > 1].sum()), "pairs": int(len(pairs)),
               "age_disagree": int(n_age), "gender_conflict": int(n_gender), "labels_disagree": int(n_disagree),
               "excluded": int(drop.sum()), "listed": listed}
    return summary, drop


def straddling_groups(groups, train_rows, test_rows) -> int:
    """How many near-duplicate groups have faces in both the training and the test rows."""
    groups = np.asarray(groups)
    both = np.intersect1d(groups[np.asarray(train_rows, dtype=np.int64)], groups[np.asarray(test_rows, dtype=np.int64)])
    return int(len(both))


__all__ = ["straddling_groups", "summarise"]
