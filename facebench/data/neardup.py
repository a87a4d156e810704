"""Near-duplicate photos: the same photograph re-encoded, resized, re-lit or mirrored.

Exact duplicates (the same pixels) are found by the scan (:mod:`facebench.data.scan`).
UTKFace also holds the same photo again after a re-encode, a crop by a pixel or two, or a
mirror; left alone, such a pair lands on both sides of a random split and the test part
holds photos a model has memorised. This module finds them so that the split keeps each
group on one side (:func:`facebench.data.split.make_split` with ``groups``).

How
---
* Every used image is decoded once to a 32 x 32 gray face through the decode cache
  (:func:`facebench.data.decode`: centre square, area filter) and gets a 64-bit
  perceptual hash: the signs of its 8 x 8 lowest DCT coefficients against their median,
  which is ``imagehash.phash`` bit for bit (the tests check it against imagehash); its
  mirror gets one too. The stack is hashed at once with :func:`scipy.fft.dct`, 5x faster
  than calling imagehash per image (1.1 s against 6.1 s estimated for 23.7k faces with
  their mirrors, on 2 cores; benchmarks/RESULTS.md).
* Two faces are near-duplicates when the Hamming distance between one's hash and the
  other's (or its mirror's) is at most ``max_bits``. The threshold, :data:`DEFAULT_BITS`,
  was chosen by measurement on planted variants of real faces
  (``benchmarks/near_duplicates.py``): re-encoded, resized, relit and mirrored copies are
  found (97-100 % at 2 bits), but a crop of a few per cent moves this hash by 10 bits
  (median), as far as different faces, so re-cropped copies are mostly missed.
* Groups are the connected components of the near-duplicate pairs
  (:func:`scipy.sparse.csgraph.connected_components`): a chain of pairs is one group.
* The hashes are cached beside the decode cache, keyed as the decoded stack is (paths,
  sizes, modification times), so a second run reads them back.

:func:`find_near_duplicates` adds a ``near_group`` column to the dataset's table (one
id per group; a face alone keeps an id of its own), applies the rule for groups whose
labels disagree (keep all, or keep none, as the scan does for exact duplicates) and
writes ``near_duplicates`` into the audit.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.fft
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .cache import atomic_save_npy, default_cache_dir
from .decoding import cache_key, decode

log = logging.getLogger(__name__)

HASH_VERSION = 1
HASH_SIZE = 8  # 8 x 8 = 64 bits
HASH_SIDE = 32  # the face is hashed at 32 x 32 (imagehash's phash: hash_size x highfreq_factor 4)
#: The threshold in bits (at most; mirror included) that makes two faces near-duplicates.
#: Measured (benchmarks/near_duplicates.py, benchmarks/RESULTS.md): at 2 bits 3 pairs of
#: different people among the 4,972 faces of the 5k subset (0.6 per 1,000), at 4 bits 20.
#: The hash's distances are even (32 of its 64 bits are set), so 3 is the same cut as 2.
DEFAULT_BITS = 2
#: What happens to a group whose labels disagree (``data.near_duplicate_labels``).
LABEL_RULES = ("keep-all", "keep-none")
#: The name of the hash, as the audit records it.
HASH_NAME = "64-bit DCT hash of the 32x32 gray face (imagehash.phash), mirror included"
#: The audit lists the first groups in full; all are counted.
MAX_LISTED_GROUPS = 2000


def phash_bits(images) -> np.ndarray:
    """64-bit perceptual hashes of a stack of faces, as ``imagehash.phash`` computes them.

    Parameters
    ----------
    images : ndarray of shape (n_images, 32, 32), uint8 gray

    Returns
    -------
    hashes : ndarray of shape (n_images,), uint64
        Bit ``8 * row + col`` (most significant first) is set when DCT coefficient
        ``(row, col)`` of the 8 x 8 lowest frequencies is above their median.
    """
    stack = np.asarray(images)
    if stack.ndim != 3 or stack.shape[1:] != (HASH_SIDE, HASH_SIDE):
        raise ValueError(f"images of shape {stack.shape}: expected (n, {HASH_SIDE}, {HASH_SIDE}) gray faces")
    if not len(stack):
        return np.zeros(0, dtype=np.uint64)
    coeffs = scipy.fft.dct(scipy.fft.dct(stack.astype(np.float64), axis=1), axis=2)[:, :HASH_SIZE, :HASH_SIZE]
    flat = coeffs.reshape(len(stack), -1)
    bits = flat > np.median(flat, axis=1, keepdims=True)
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def image_hashes(table: pd.DataFrame, *, cache_dir=None) -> np.ndarray:
    """Hashes of every row's face and of its mirror: ``(n, 2)`` uint64, cached on disk.

    The faces come from the decode cache (32 x 32 gray); ``cache_dir=False`` caches nothing.
    """
    paths = [str(p) for p in table["path"]]
    cache_file = None
    if cache_dir is not False and paths:
        root = Path(cache_dir) if cache_dir else default_cache_dir()
        cache_file = root / "phash" / f"v{HASH_VERSION}-{cache_key(paths, HASH_SIDE, 'gray')}.npy"
        try:
            cached = np.load(cache_file)
            if cached.shape == (len(paths), 2) and cached.dtype == np.uint64:
                return cached
        except (OSError, ValueError):
            pass
    faces = np.asarray(decode(table, size=HASH_SIDE, color="gray", cache_dir=cache_dir))
    hashes = np.stack([phash_bits(faces), phash_bits(faces[:, :, ::-1])], axis=1)
    if cache_file is not None:
        try:
            atomic_save_npy(cache_file, hashes)
        except OSError as exc:  # the cache is an optimisation
            log.warning("could not write the hash cache %s: %s", cache_file, exc)
    return hashes


def hamming(a, b) -> np.ndarray:
    """Bits that differ between uint64 hashes (broadcast)."""
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64)))


def close_pairs(hashes: np.ndarray, max_bits: int) -> pd.DataFrame:
    """Every pair of rows within ``max_bits`` of each other, the mirror included.

    Two hashes within ``max_bits`` bits agree exactly on at least one of ``max_bits + 1``
    disjoint blocks of their bits (pigeonhole), so only faces that share a block's value
    with a face or its mirror are compared (multi-index hashing); the comparisons stay
    near-linear in the number of faces instead of quadratic.

    Parameters
    ----------
    hashes : ndarray of shape (n, 2), uint64
        :func:`image_hashes`: each face's hash and its mirror's.
    max_bits : int

    Returns
    -------
    pairs : DataFrame with ``i < j`` (row positions), ``bits`` (the smallest distance
        between the two faces, either mirrored) and ``mirrored`` (a mirror was closest).
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    n = len(hashes)
    empty = pd.DataFrame({"i": np.zeros(0, np.int64), "j": np.zeros(0, np.int64), "bits": np.zeros(0, np.int64),
                          "mirrored": np.zeros(0, bool)})
    if n < 2 or max_bits < 0:
        return empty
    if max_bits > 3:  # short blocks fill few, long buckets: comparing every pair is faster then
        return _all_pairs(hashes, max_bits)
    items = np.concatenate([hashes[:, 0], hashes[:, 1]])  # every face, then every mirror
    owner = np.concatenate([np.arange(n), np.arange(n)])
    edges = np.linspace(0, 64, min(max_bits + 1, 64) + 1).round().astype(int)
    found = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        keys = (items >> np.uint64(lo)) & np.uint64((1 << (hi - lo)) - 1)
        order = np.argsort(keys, kind="stable")
        sorted_keys, sorted_owner = keys[order], owner[order]
        step = 1
        while step < len(order):
            same = np.flatnonzero(sorted_keys[step:] == sorted_keys[:-step])
            if not len(same):
                break
            a, b = sorted_owner[same], sorted_owner[same + step]
            keep = a != b
            found.append(np.stack([np.minimum(a, b)[keep], np.maximum(a, b)[keep]], axis=1))
            step += 1
    if not found:
        return empty
    cand = np.unique(np.concatenate(found), axis=0)
    if not len(cand):
        return empty
    return _measured(hashes, cand[:, 0], cand[:, 1], max_bits)


def _all_pairs(hashes: np.ndarray, max_bits: int, block: int = 1024) -> pd.DataFrame:
    """:func:`close_pairs` by comparing every pair, ``block`` rows at a time."""
    n = len(hashes)
    found = []
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n))
        d = np.minimum(hamming(hashes[rows, 0, None], hashes[None, :, 0]),
                       np.minimum(hamming(hashes[rows, 0, None], hashes[None, :, 1]),
                                  hamming(hashes[rows, 1, None], hashes[None, :, 0])))
        d[np.arange(len(rows))[:, None] >= np.arange(n)[None, :] - start] = 255
        ii, jj = np.nonzero(d <= max_bits)
        found.append(np.stack([rows[ii], jj], axis=1))
    return _measured(hashes, *np.concatenate(found).T, max_bits)


def _measured(hashes, i, j, max_bits) -> pd.DataFrame:
    """The candidate pairs ``(i, j)`` within ``max_bits``, with their distance."""
    direct = hamming(hashes[i, 0], hashes[j, 0]).astype(np.int64)
    flipped = np.minimum(hamming(hashes[i, 0], hashes[j, 1]), hamming(hashes[i, 1], hashes[j, 0])).astype(np.int64)
    best = np.minimum(direct, flipped)
    keep = best <= max_bits
    return pd.DataFrame({"i": i[keep].astype(np.int64), "j": j[keep].astype(np.int64), "bits": best[keep],
                         "mirrored": (flipped < direct)[keep]})


def group_labels(n: int, pairs: pd.DataFrame) -> np.ndarray:
    """The group of each of ``n`` rows: the connected components of ``pairs`` (``i``, ``j``).

    A group's id is the smallest row position in it, so a face alone keeps its own position.
    """
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(pairs)), (pairs["i"].to_numpy(), pairs["j"].to_numpy())), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    first = np.full(comp.max() + 1, n, dtype=np.int64)
    np.minimum.at(first, comp, np.arange(n))
    return first[comp]


def find_near_duplicates(dataset, *, max_bits: int = DEFAULT_BITS, labels: str = "keep-all", cache_dir=None):
    """Group the dataset's near-duplicate faces; add ``near_group`` to its table and the groups to its audit.

    Parameters
    ----------
    dataset : Dataset
        From :func:`facebench.data.load_dataset`; changed in place and returned.
    max_bits : int
        Hamming distance (of 64 bits) at or under which two faces are the same photo;
        ``-1`` looks for none (every face is a group of its own).
    labels : {"keep-all", "keep-none"}
        A group whose labels (age, gender, ethnicity) disagree keeps all its faces, or
        none of them (each is added to the audit's ``skipped`` with the reason).
    cache_dir : str, Path, None or False
        As :func:`facebench.data.decode`.

    Returns
    -------
    Dataset
    """
    if labels not in LABEL_RULES:
        raise ValueError(f"labels={labels!r}: expected one of {', '.join(LABEL_RULES)}")
    table = dataset.table.reset_index(drop=True)
    n = len(table)
    if max_bits < 0:  # no near_group column: the split is drawn as before the rule
        dataset.table = table
        dataset.audit["near_duplicates"] = {"max_bits": -1, "hash": "none: near-duplicates not looked for"}
        return dataset
    started = time.perf_counter()
    hashes = image_hashes(table, cache_dir=cache_dir)
    pairs = close_pairs(hashes, max_bits)
    groups = group_labels(n, pairs)
    table["near_group"] = groups
    summary, drop = _summarise(table, pairs, groups, labels)
    summary |= {"max_bits": int(max_bits), "hash": HASH_NAME, "labels_rule": labels,
                "seconds": round(time.perf_counter() - started, 2)}
    if drop.any():
        skipped = dataset.audit.setdefault("skipped", [])
        for row in table[drop].itertuples(index=False):
            skipped.append({"file": row.image_id, "reason": "near-duplicate with disagreeing labels "
                                                             f"(group of {int((groups == row.near_group).sum())})"})
        dataset.audit["skipped"] = sorted(skipped, key=lambda s: s["file"])
        table = table[~drop].reset_index(drop=True)
        dataset.audit["used"] = int(len(table))
    dataset.table = table
    dataset.audit["near_duplicates"] = summary
    return dataset


def _summarise(table: pd.DataFrame, pairs: pd.DataFrame, groups: np.ndarray, labels: str):
    """The audit's ``near_duplicates`` block and which rows leave (disagreeing groups under keep-none)."""
    sizes = pd.Series(groups).value_counts()
    multi = sizes[sizes > 1].index
    pair_bits = pd.Series(pairs["bits"].to_numpy(), index=groups[pairs["i"].to_numpy()]) if len(pairs) else None
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
        if len(listed) < MAX_LISTED_GROUPS:
            bits = pair_bits.loc[[gid]] if pair_bits is not None else pd.Series([0])
            listed.append({"files": list(rows["image_id"]), "ages": ages, "genders": genders, "races": races,
                           "age_spread": int(spread), "gender_conflict": bool(conflict),
                           "max_bits": int(np.max(bits)), "action": action})
    summary = {"groups": int(len(multi)), "faces": int(sizes[sizes > 1].sum()), "pairs": int(len(pairs)),
               "age_disagree": int(n_age), "gender_conflict": int(n_gender), "labels_disagree": int(n_disagree),
               "excluded": int(drop.sum()), "listed": listed}
    return summary, drop


def straddling_groups(groups, train_rows, test_rows) -> int:
    """How many near-duplicate groups have faces in both the training and the test rows."""
    groups = np.asarray(groups)
    both = np.intersect1d(groups[np.asarray(train_rows, dtype=np.int64)], groups[np.asarray(test_rows, dtype=np.int64)])
    return int(len(both))


__all__ = ["DEFAULT_BITS", "HASH_NAME", "LABEL_RULES", "close_pairs", "find_near_duplicates", "group_labels",
           "hamming", "image_hashes", "phash_bits", "straddling_groups"]
