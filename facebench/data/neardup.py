"""Near-duplicate photos: the same photograph re-encoded, resized, re-cropped, re-lit or mirrored.

Exact duplicates (the same pixels) are found by the scan (:mod:`facebench.data.scan`).
UTKFace also holds the same photo again after a re-encode, a crop by a pixel or two, or a
mirror; left alone, such a pair lands on both sides of a random split and the test part
holds photos a model has memorised. This module finds them so that the split keeps each
group on one side (:func:`facebench.data.split.make_split` with ``groups``).

How
---
* Candidates, cheap and crop-tolerant (:func:`neighbour_pairs`, in
  :mod:`facebench.data.neardup_search`): each face's 24 nearest faces by an 8 x 8
  thumbnail of its central region, mirror included (the only comparison of every pair,
  one product of 64 numbers each); of those, the pairs whose thumbnails still correlate
  at 0.97 or more once aligned over zooms of 0.9-1.1 and shifts of a pixel or two (at 8
  px a crop of 5 % moves a face by a fraction of a pixel). Besides, the pairs whose
  64-bit DCT hashes (``imagehash.phash`` bit for bit, mirror included;
  :func:`phash_bits`) are within ``max_bits`` are candidates (:func:`close_pairs`,
  multi-index hashing).
* Verification, strict, of each candidate pair only (:func:`pair_similarity`): the best
  normalised cross-correlation of the two faces' detail (the face minus its Gaussian blur,
  so light and the face's shape do not count) over scales 0.9-1.1 and shifts of 3 px,
  mirror included. The same photograph re-encoded, resized, re-cropped or re-lit keeps its
  detail in place; another photo, even of the same person, does not. The threshold,
  :data:`DEFAULT_SIMILARITY`, was chosen by measurement on planted variants of real faces
  and on contact sheets of the closest pairs (``benchmarks/near_duplicates.py``,
  benchmarks/RESULTS.md).
* Groups are the connected components of the verified pairs
  (:func:`scipy.sparse.csgraph.connected_components`): a chain of pairs is one group.
* The hashes and the verified candidates are cached beside the decode cache, keyed as the
  decoded stack is (paths, sizes, modification times), so a second run reads them back.
* The detection uses two cores at most (it runs before the run's workers start): BLAS and
  OpenCV on one thread each, and two threads of its own for the search and the
  verification (:func:`two_threads`, :func:`detect_pairs`). At the full UTKFace's size
  (23.7k faces) it is 6-12 s of CPU, most of it in the two threads
  (``benchmarks/near_duplicates.py --scale 23708``, benchmarks/RESULTS.md).

:func:`find_near_duplicates` adds a ``near_group`` column to the dataset's table (one
id per group; a face alone keeps an id of its own), applies the rule for groups whose
labels disagree (keep all, or keep none, as the scan does for exact duplicates) and
writes ``near_duplicates`` into the audit.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from . import neardup_search
from .neardup_groups import straddling_groups, summarise
from .cache import atomic_save_npy, default_cache_dir
from .decoding import cache_key, decode

log = logging.getLogger(__name__)

HASH_VERSION = 1
HASH_SIZE = 8  # 8 x 8 = 64 bits
HASH_SIDE = 32  # the face is hashed at 32 x 32 (imagehash's phash: hash_size x highfreq_factor 4)
#: The first HASH_SIZE rows of the unnormalised DCT-II of HASH_SIDE points (``scipy.fft.dct``, type 2).
_DCT = 2 * np.cos(np.pi * np.arange(HASH_SIZE)[:, None] * (2 * np.arange(HASH_SIDE)[None, :] + 1) / (2 * HASH_SIDE))
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
#: The verification's faces: 64 x 64 gray (the decode cache's default), compared on their
#: central 48 x 48, shifted by up to 3 pixels, at these scales, after removing what a
#: Gaussian of this many pixels keeps (so brightness, contrast and the face's shape do not count).
VERIFY_SIDE, CENTRE, SHIFT, SCALES, HIGHPASS_SIGMA = 64, 48, 3, (0.9, 0.95, 1.0, 1.05, 1.1), 2.0
#: A candidate pair is the same photo at this similarity or above (``data.near_duplicate_similarity``).
#: Measured (benchmarks/near_duplicates.py, benchmarks/RESULTS.md): on the 5k subset the
#: same-photo pairs score 0.925 and up, different faces 0.822 and below (one pair of babies
#: at 0.822, the rest under 0.81); planted variants with every change drawn at random are
#: recalled at 99.0 % at 0.82 and 97.9 % at 0.83.
DEFAULT_SIMILARITY = 0.82
VERIFY_VERSION = 2
#: The verification, as the audit records it.
VERIFY_NAME = ("best normalised cross-correlation of the high-passed 64x64 gray faces over scales 0.9-1.1 and "
               "shifts of 3 px, mirror included, of hash pairs and of each face's 24 nearest by 8x8 thumbnail "
               "whose thumbnails, aligned, correlate at 0.94 or more")


def phash_bits(images, mirrored: bool = False) -> np.ndarray:
    """64-bit perceptual hashes of a stack of faces, as ``imagehash.phash`` computes them.

    Parameters
    ----------
    images : ndarray of shape (n_images, 32, 32), uint8 gray
    mirrored : bool
        Also return the hashes of the mirrored faces, as a second column. Mirroring a face
        flips the sign of its DCT coefficients of odd column frequency and changes nothing
        else, so the mirror's hash costs a second median, not a second transform.

    Returns
    -------
    hashes : ndarray of shape (n_images,) (``(n_images, 2)`` with ``mirrored``), uint64
        Bit ``8 * row + col`` (most significant first) is set when DCT coefficient
        ``(row, col)`` of the 8 x 8 lowest frequencies is above their median.
    """
    stack = np.asarray(images)
    if stack.ndim != 3 or stack.shape[1:] != (HASH_SIDE, HASH_SIDE):
        raise ValueError(f"images of shape {stack.shape}: expected (n, {HASH_SIDE}, {HASH_SIDE}) gray faces")
    if not len(stack):
        return np.zeros((0, 2) if mirrored else 0, dtype=np.uint64)
    # the 8 lowest frequencies of scipy's (and imagehash's) unnormalised DCT-II on each axis, as two matrix products
    cols = (stack.astype(np.float64).reshape(-1, HASH_SIDE) @ _DCT.T).reshape(len(stack), HASH_SIDE, HASH_SIZE)
    flat = np.tensordot(_DCT, cols, axes=(1, 1)).transpose(1, 0, 2).reshape(len(stack), -1)
    out = [_bits(flat)]
    if mirrored:
        out.append(_bits(flat * np.tile((-1.0) ** np.arange(HASH_SIZE), HASH_SIZE)))
    return np.stack(out, axis=1) if mirrored else out[0]


def _bits(flat: np.ndarray) -> np.ndarray:
    """Each row of DCT coefficients as 64 bits: set where above the row's median."""
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
    hashes = phash_bits(faces, mirrored=True)
    if cache_file is not None:
        try:
            atomic_save_npy(cache_file, hashes)
        except OSError as exc:  # the cache is an optimisation
            log.warning("could not write the hash cache %s: %s", cache_file, exc)
    return hashes


def verify_faces(table: pd.DataFrame, *, cache_dir=None) -> np.ndarray:
    """The ``(n, 64, 64)`` gray faces the verification compares (the decode cache's default stack)."""
    return np.asarray(decode(table, size=VERIFY_SIDE, color="gray", cache_dir=cache_dir))


def neighbour_pairs(faces: np.ndarray, k: int = neardup_search.NEAREST,
                    floor: float = neardup_search.REFINE_FLOOR, workers: int = 2) -> pd.DataFrame:
    """Candidate pairs, found without comparing every pair in detail (:mod:`facebench.data.neardup_search`).

    Each face's ``k`` nearest faces by a wide thumbnail (mirror included), kept where their
    thumbnails, aligned over zooms 0.9-1.1 and shifts of up to 2.25 px, correlate at
    ``floor`` or more. ``faces`` is the verification's ``(n, 64, 64)`` stack; the search
    reads it at 32 px (each pixel the mean of four). Call it under :func:`two_threads`.

    Returns
    -------
    pairs : DataFrame with ``i < j`` (row positions), ``mirrored`` (the thumbnails agree
        better with one face mirrored) and ``score`` (the aligned thumbnails' correlation).
    """
    faces = np.asarray(faces)
    if len(faces) < 2:
        return pd.DataFrame({"i": np.zeros(0, np.int64), "j": np.zeros(0, np.int64), "mirrored": np.zeros(0, bool),
                             "score": np.zeros(0, np.float32)})
    n, side = faces.shape[:2]
    small = faces.reshape(n, side // 2, 2, side // 2, 2).mean(axis=(2, 4), dtype=np.float32)
    found = neardup_search.candidates(small, k, floor, workers)
    return found[["i", "j", "mirrored", "score"]]


def _highpass(face: np.ndarray) -> np.ndarray:
    f = face.astype(np.float32)
    return f - cv2.GaussianBlur(f, (0, 0), HIGHPASS_SIGMA)


def _search_windows(face: np.ndarray, mirrored: bool) -> list:
    """The face's detail (high-passed), as is or mirrored, at every scale of :data:`SCALES`, each cut to the
    central region plus :data:`SHIFT` pixels on every side."""
    detail = _highpass(np.ascontiguousarray(face[:, ::-1]) if mirrored else face)
    versions = []
    for scale in SCALES:
        side = int(round(VERIFY_SIDE * scale))
        res = detail if side == VERIFY_SIDE else cv2.resize(
            detail, (side, side), interpolation=cv2.INTER_AREA if side < VERIFY_SIDE else cv2.INTER_LINEAR)
        lo = (side - CENTRE) // 2 - SHIFT
        versions.append(np.ascontiguousarray(res[lo:lo + CENTRE + 2 * SHIFT, lo:lo + CENTRE + 2 * SHIFT]))
    return versions


def pair_similarity(faces_a: np.ndarray, faces_b: np.ndarray, i, j, mirrored=None) -> np.ndarray:
    """How alike the details of faces ``faces_a[i]`` and ``faces_b[j]`` are, once aligned: ``(m,)`` float32.

    The normalised cross-correlation of face ``i``'s high-passed central 48 px with face
    ``j``'s at scales 0.9-1.1 and shifts of up to :data:`SHIFT` pixels (of 64); the best.
    ``mirrored`` (one flag per pair, from :func:`neighbour_pairs`) says which way round
    ``j`` is compared; ``None`` tries both. The same photograph re-encoded, resized,
    re-cropped, re-lit or mirrored keeps its fine detail (skin, hair, edges) in place; a
    different photo, even of the same person, does not.
    """
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    out = np.empty(len(i), np.float32)
    lo = (VERIFY_SIDE - CENTRE) // 2
    last, windows = -1, {}
    for p in np.argsort(j, kind="stable"):
        if j[p] != last:
            last, windows = j[p], {}
        template = np.ascontiguousarray(_highpass(faces_a[i[p]])[lo:lo + CENTRE, lo:lo + CENTRE])
        ways = (False, True) if mirrored is None else (bool(mirrored[p]),)
        best = -1.0
        for way in ways:
            if way not in windows:
                windows[way] = _search_windows(faces_b[j[p]], way)
            best = max(best, max(float(cv2.matchTemplate(w, template, cv2.TM_CCOEFF_NORMED).max())
                                 for w in windows[way]))
        out[p] = best
    return out


def verify_pairs(faces: np.ndarray, i, j, mirrored=None, workers: int = 2) -> np.ndarray:
    """:func:`pair_similarity` of the pairs ``(i, j)`` of ``faces``, in ``workers`` threads (OpenCV lets go
    of the interpreter while it correlates); the pairs are split by ``j`` so each face's windows are cut once."""
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    flags = None if mirrored is None else np.asarray(mirrored, dtype=bool)
    if workers <= 1 or len(i) < 64:
        return pair_similarity(faces, faces, i, j, flags)
    order = np.argsort(j, kind="stable")
    parts = np.array_split(order, workers)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = list(pool.map(lambda part: pair_similarity(faces, faces, i[part], j[part],
                                                          None if flags is None else flags[part]), parts))
    out = np.empty(len(i), np.float32)
    for part, sims in zip(parts, done):
        out[part] = sims
    return out


@contextmanager
def two_threads():
    """BLAS and OpenCV on one thread each while the detection runs its own two (restored after)."""
    from threadpoolctl import threadpool_limits

    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        cv2.setNumThreads(cv_threads)


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


def candidate_pairs(table: pd.DataFrame, max_bits: int = DEFAULT_BITS, *, cache_dir=None) -> pd.DataFrame:
    """Every candidate pair of rows with its verified similarity, cached on disk.

    The hashes come from :func:`image_hashes`, the faces from :func:`verify_faces`; the
    rest is :func:`detect_pairs`.

    Returns
    -------
    pairs : DataFrame with ``i < j``, ``bits`` (the hashes' distance, mirror included),
        ``mirrored`` and ``similarity``; the caller keeps those above its threshold.
    """
    paths = [str(p) for p in table["path"]]
    if len(paths) < 2:
        return pd.DataFrame({"i": np.zeros(0, np.int64), "j": np.zeros(0, np.int64), "bits": np.zeros(0, np.int64),
                             "mirrored": np.zeros(0, bool), "similarity": np.zeros(0)})
    cache_file = None
    if cache_dir is not False:
        root = Path(cache_dir) if cache_dir else default_cache_dir()
        key = cache_key(paths, VERIFY_SIDE, "gray")
        cache_file = root / "neardup" / f"v{VERIFY_VERSION}-{key}-b{max_bits}.npy"
        try:
            cached = np.load(cache_file)
            if cached.ndim == 2 and cached.shape[1] == 5 and cached.dtype == np.float64:
                return pd.DataFrame({"i": cached[:, 0].astype(np.int64), "j": cached[:, 1].astype(np.int64),
                                     "bits": cached[:, 2].astype(np.int64), "mirrored": cached[:, 3] > 0,
                                     "similarity": cached[:, 4]})
        except (OSError, ValueError):
            pass
    with two_threads():
        hashes = image_hashes(table, cache_dir=cache_dir)
        pairs = detect_pairs(hashes, verify_faces(table, cache_dir=cache_dir), max_bits)
    if cache_file is not None:
        try:
            atomic_save_npy(cache_file, pairs.to_numpy(dtype=np.float64))
        except OSError as exc:  # the cache is an optimisation
            log.warning("could not write the near-duplicate cache %s: %s", cache_file, exc)
    return pairs


def detect_pairs(hashes: np.ndarray, faces: np.ndarray, max_bits: int = DEFAULT_BITS, *, workers: int = 2,
                 seconds: dict | None = None) -> pd.DataFrame:
    """Candidate pairs of ``faces`` (``(n, 64, 64)``) and of their ``hashes`` (``(n, 2)``), each verified.

    Candidates are each face's nearest faces by thumbnail that align at the floor
    (:func:`neighbour_pairs`) and the pairs whose DCT hashes are within ``max_bits``
    (:func:`close_pairs`); each is verified by :func:`pair_similarity`, in ``workers``
    threads. BLAS and OpenCV run one thread each meanwhile, so the detection uses
    ``workers`` cores at most. ``seconds``, when given, receives each step's wall seconds.

    Returns
    -------
    pairs : DataFrame with ``i < j``, ``bits``, ``mirrored`` and ``similarity``.
    """
    seconds = {} if seconds is None else seconds
    with two_threads():
        started = time.perf_counter()
        near = neighbour_pairs(faces, workers=workers)
        seconds["search"] = time.perf_counter() - started
        started = time.perf_counter()
        close = close_pairs(hashes, max_bits)
        pairs = pd.concat([near[["i", "j", "mirrored"]], close[["i", "j", "mirrored"]]])
        pairs = pairs.drop_duplicates(["i", "j"]).reset_index(drop=True)
        i, j = pairs["i"].to_numpy(), pairs["j"].to_numpy()
        pairs["bits"] = np.minimum(hamming(hashes[i, 0], hashes[j, 0]),
                                   np.minimum(hamming(hashes[i, 0], hashes[j, 1]),
                                              hamming(hashes[i, 1], hashes[j, 0]))).astype(np.int64)
        seconds["hash_pairs"] = time.perf_counter() - started
        started = time.perf_counter()
        pairs["similarity"] = verify_pairs(faces, i, j, pairs["mirrored"].to_numpy(), workers).astype(np.float64)
        seconds["verification"] = time.perf_counter() - started
    return pairs[["i", "j", "bits", "mirrored", "similarity"]]


def find_near_duplicates(dataset, *, max_bits: int = DEFAULT_BITS, labels: str = "keep-all",
                         min_similarity: float = DEFAULT_SIMILARITY, cache_dir=None):
    """Group the dataset's near-duplicate faces; add ``near_group`` to its table and the groups to its audit.

    Parameters
    ----------
    dataset : Dataset
        From :func:`facebench.data.load_dataset`; changed in place and returned.
    max_bits : int
        Faces whose DCT hashes are at most this many bits (of 64) apart are candidates,
        besides each face's nearest faces by thumbnail; ``-1`` looks for none (every face
        is a group of its own).
    labels : {"keep-all", "keep-none"}
        A group whose labels (age, gender, ethnicity) disagree keeps all its faces, or
        none of them (each is added to the audit's ``skipped`` with the reason).
    min_similarity : float
        A candidate pair is the same photo when :func:`pair_similarity` reaches this.
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
    candidates = candidate_pairs(table, max_bits, cache_dir=cache_dir)
    pairs = candidates[candidates["similarity"] >= min_similarity].reset_index(drop=True)
    groups = group_labels(n, pairs)
    table["near_group"] = groups
    summary, drop = summarise(table, pairs, groups, labels, MAX_LISTED_GROUPS)
    summary |= {"max_bits": int(max_bits), "hash": HASH_NAME, "verification": VERIFY_NAME,
                "min_similarity": float(min_similarity), "candidates": int(len(candidates)), "labels_rule": labels,
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


__all__ = ["DEFAULT_BITS", "DEFAULT_SIMILARITY", "HASH_NAME", "LABEL_RULES", "candidate_pairs", "close_pairs",
           "detect_pairs", "find_near_duplicates", "group_labels", "hamming", "image_hashes",
           "neighbour_pairs", "pair_similarity", "phash_bits", "straddling_groups", "two_threads",
           "verify_pairs"]
