"""The near-duplicate candidate search: every face's likely twins, found without comparing every pair in detail.

:mod:`facebench.data.neardup` verifies candidate pairs by an aligned correlation of the
faces' detail, which is strict but costs about half a millisecond a pair; this module
finds the few pairs worth verifying, in three cheap steps, so that the whole detection of
the full UTKFace's size (23.7k faces) is 6-12 s of CPU, most of it in two threads, instead
of about 70 s (``benchmarks/near_duplicates.py --scale``, benchmarks/RESULTS.md).

1. **Nearest faces** (:func:`nearest_faces`). Each face's central 56 px (of 64) shrunk to
   an 8 x 8 thumbnail, centred and normalised; two faces' likeness is the thumbnails'
   correlation, the better of as is and mirrored. The mirror costs nothing extra: split
   each thumbnail into its symmetric and its antisymmetric half, and the better of the
   two correlations is ``sym . sym + |anti . anti|``, one product of 64 numbers per pair as
   for one orientation. Every face keeps its :data:`NEAREST` nearest, chosen above a
   threshold per row read from every :data:`SAMPLE_STEP`-th face, so no row is sorted;
   the matrix is computed once per pair, in small tiles, in two threads. The wide region
   keeps a re-cropped copy (5 % off a side moves the face by 1.6 px of 64) among the
   nearest. This is the only step that compares every pair of faces (its time grows
   with their square).
2. **Aligned thumbnails** (:func:`aligned_scores`). Each face's central 48 px at
   :data:`ALIGN_ZOOMS` (0.9-1.1) x :data:`ALIGN_SHIFTS` (1.5 px either way, both axes),
   as is and mirrored, 90 thumbnails, against each of its nearest faces' central 48 px,
   unshifted; the pairs at :data:`ALIGN_FLOOR` or more go on.
3. **Finer alignment** (:func:`refined_scores`). Around the version that won, zooms of
   +-2.5 % and shifts of +-0.75 px (27 thumbnails); the pairs at :data:`REFINE_FLOOR` or
   more are verified. Aligned this closely, a face and its re-cropped, resized, re-lit,
   re-encoded or mirrored copy correlate at 0.988 or more (every planted variant of the
   5k subset), and different faces rarely reach 0.97 (0.018 pairs per face in the 5k
   subset, most of them other photos of the same baby or person).

All thumbnails are area averages written as small matrices (:func:`area_matrix`), so a
shift or a zoom of a fraction of a pixel is a matrix product; the input is the 32 x 32
gray face (regions and shifts are given in pixels of 64). The caller holds BLAS to one
thread (:func:`facebench.data.neardup.two_threads`) and the steps run in ``workers``
threads of their own.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pandas as pd

#: Step 1: the region (of :data:`SEARCH_SIDE` px) and how many nearest faces each face keeps.
SEARCH_CENTRE, NEAREST = 56, 24
#: Step 1: the threshold of each row is read from every this-many-th column.
SAMPLE_STEP = 8
#: Step 2: the region (of 64 px) compared, its zooms and its shifts (in px of 64).
ALIGN_CENTRE = 48
ALIGN_ZOOMS = (0.9, 0.95, 1.0, 1.05, 1.1)
ALIGN_SHIFTS = (-1.5, 0.0, 1.5)
#: Step 2: the aligned-thumbnail correlation a pair needs to go on to step 3 (planted variants
#: of the 5k subset score 0.958 and up; benchmarks/RESULTS.md).
ALIGN_FLOOR = 0.94
#: Step 3: the finer search around step 2's best version (zoom step, shift step in px of 64),
#: and the correlation a pair needs to be verified (planted variants: 0.988 and up).
REFINE_ZOOM, REFINE_SHIFT, REFINE_FLOOR = 0.025, 0.75, 0.97
#: The faces the thumbnails are made from: the decode cache's 32 x 32 gray stack; the
#: regions above are in pixels of a 64-px face.
SEARCH_SIDE, REFERENCE_SIDE, THUMB = 32, 64, 8


def area_matrix(centre: float, shift: float = 0.0, side: int = SEARCH_SIDE, out: int = THUMB) -> np.ndarray:
    """The ``(out, side)`` matrix that averages a face's rows (or columns) into ``out`` cells.

    Cell ``k`` averages ``[a + k w, a + (k + 1) w)`` with ``w = centre / out`` and
    ``a = (reference - centre) / 2 + shift``, where ``centre`` and ``shift`` are given in
    pixels of a :data:`REFERENCE_SIDE`-px face and scaled to ``side``; pixels cut by an edge
    count by the part inside (OpenCV's ``INTER_AREA``).
    """
    scale = side / REFERENCE_SIDE
    w = centre * scale / out
    a = ((REFERENCE_SIDE - centre) / 2 + shift) * scale
    lo = a + np.arange(out)[:, None] * w
    p = np.arange(side)[None, :]
    overlap = np.clip(np.minimum(lo + w, p + 1) - np.maximum(lo, p), 0, None)
    return (overlap / w).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    """Flatten the last two axes, centre and scale to unit length (float32)."""
    flat = x.reshape(*x.shape[:-2], -1).astype(np.float32, copy=False)
    flat = flat - flat.mean(axis=-1, keepdims=True)
    return flat / (np.linalg.norm(flat, axis=-1, keepdims=True) + 1e-3)


def _thumbs(faces: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``rows @ face @ cols.T`` of every face, normalised: ``(n, 64)`` (two matrix products for the whole stack)."""
    x = np.asarray(faces, dtype=np.float32)
    n, side = len(x), x.shape[1]
    half = (x.reshape(-1, side) @ cols.T).reshape(n, side, -1)  # (n, side, 8)
    cells = rows @ half.transpose(1, 0, 2).reshape(side, -1)  # (8, n * 8)
    return _unit(cells.reshape(len(rows), n, -1).transpose(1, 0, 2))


def search_halves(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each face's step-1 thumbnail split into its symmetric and antisymmetric halves: two ``(n, 32)``.

    ``t_i . t_j = s_i . s_j + a_i . a_j`` and ``t_i . mirror(t_j) = s_i . s_j - a_i . a_j``
    (the halves are orthogonal), so the better orientation scores ``s_i . s_j + |a_i . a_j|``.
    Only the left columns are kept (the right ones repeat them, with the sign for ``a``),
    scaled by sqrt(2) so the products stay those of the whole thumbnails.
    """
    m = area_matrix(SEARCH_CENTRE)
    t = _thumbs(faces, m, m).reshape(-1, THUMB, THUMB)
    mirrored = t[:, :, ::-1]
    half = THUMB // 2
    sym = ((t + mirrored) / 2)[:, :, :half].reshape(len(t), -1) * np.float32(np.sqrt(2))
    anti = ((t - mirrored) / 2)[:, :, :half].reshape(len(t), -1) * np.float32(np.sqrt(2))
    return np.ascontiguousarray(sym), np.ascontiguousarray(anti)


def nearest_faces(faces: np.ndarray, k: int = NEAREST, tile: int = 256, workers: int = 2) -> np.ndarray:
    """Each face's ``k`` nearest faces by step-1 thumbnail, mirror included: ``(n, k)`` row positions.

    Each row's threshold is its ``k / 3``-th best similarity among every
    :data:`SAMPLE_STEP`-th face (about ``2.7 k`` faces of the row reach it); then the
    similarity matrix is computed once per pair of faces (upper tiles only: it is
    symmetric), tile by tile (small tiles stay in the cache), in ``workers`` threads, and
    each row keeps its ``k`` best faces at or above its threshold. A row may hold fewer
    than ``k`` faces; the rest is ``-1``. Call it with BLAS on one thread
    (:func:`single_threaded`): the threads here share the cores.
    """
    n = len(faces)
    k = min(k, n - 1)
    if k < 1:
        return np.zeros((n, 0), dtype=np.int64)
    sym, anti = search_halves(faces)
    sample = np.arange(0, n, SAMPLE_STEP)
    nth = min(len(sample), max(1, -(-k // 3)))
    cuts = np.empty(n, dtype=np.float32)
    upper = np.triu(np.ones((tile, tile), dtype=bool), 1)

    def threshold(start):
        stop = min(start + tile * 8, n)
        sim = _similarity(sym, anti, slice(start, stop), sample)
        own = np.flatnonzero((sample >= start) & (sample < stop))
        sim[sample[own] - start, own] = -np.inf
        cuts[start:stop] = np.partition(sim, len(sample) - nth, axis=1)[:, len(sample) - nth]

    def row_tile(start):
        stop = min(start + tile, n)
        found = []
        for other in range(start, n, tile):
            end = min(other + tile, n)
            sim = _similarity(sym, anti, slice(start, stop), slice(other, end))
            near = (sim >= cuts[start:stop, None]) | (sim >= cuts[None, other:end])
            if other == start:
                near &= upper[:stop - start, :end - other]  # each pair once, never a face with itself
            at = np.flatnonzero(near)
            r, c = np.divmod(at, end - other)
            found.append((r + start, c + other, sim.ravel()[at]))
        return found

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(threshold, range(0, n, tile * 8)))
        tiles = [t for part in pool.map(row_tile, range(0, n, tile)) for t in part]
    i = np.concatenate([t[0] for t in tiles])
    j = np.concatenate([t[1] for t in tiles])
    v = np.concatenate([t[2] for t in tiles])
    # each pair counts for the row whose threshold it reaches (both, often)
    mine, theirs = v >= cuts[i], v >= cuts[j]
    row = np.concatenate([i[mine], j[theirs]])
    col = np.concatenate([j[mine], i[theirs]])
    val = np.concatenate([v[mine], v[theirs]])
    order = np.lexsort((-val, row))
    row, col = row[order], col[order]
    rank = np.arange(len(row)) - np.searchsorted(row, row)
    keep = rank < k
    out = np.full((n, k), -1, dtype=np.int64)
    out[row[keep], rank[keep]] = col[keep]
    return out


def _similarity(sym: np.ndarray, anti: np.ndarray, rows, cols) -> np.ndarray:
    """Step 1's similarities of faces ``rows`` with faces ``cols``: the better of as is and mirrored."""
    sim = sym[rows] @ sym[cols].T
    cross = anti[rows] @ anti[cols].T
    np.abs(cross, out=cross)
    sim += cross
    return sim


def align_versions(faces: np.ndarray) -> np.ndarray:
    """Step 2's thumbnails of each face, not yet centred: ``(n, V, 64)``, its central 48 px at every zoom of
    :data:`ALIGN_ZOOMS` x y-shift x x-shift of :data:`ALIGN_SHIFTS`, as is and mirrored (see :func:`version_of`)."""
    x = np.asarray(faces, dtype=np.float32)
    n, side = len(x), x.shape[1]
    s = len(ALIGN_SHIFTS)
    out = np.empty((n, len(ALIGN_ZOOMS), s, 2 * s, THUMB, THUMB), dtype=np.float32)
    for z, zoom in enumerate(ALIGN_ZOOMS):
        cells = [area_matrix(ALIGN_CENTRE * zoom, d, side) for d in ALIGN_SHIFTS]
        rows = np.concatenate(cells)  # (8 s, side)
        cols = np.concatenate(cells + [c[:, ::-1] for c in cells])  # (8 * 2s, side): as is, then mirrored
        tall = np.tensordot(rows, x, axes=(1, 1))  # (8 s, n, side)
        both = tall.reshape(-1, side) @ cols.T  # (8 s * n, 8 * 2s)
        out[:, z] = both.reshape(s, THUMB, n, 2 * s, THUMB).transpose(2, 0, 3, 1, 4)
    return out.reshape(n, -1, THUMB * THUMB)


def version_of(index):
    """``(zoom, y-shift, x-shift, mirrored)`` of version ``index`` of :func:`align_versions`."""
    s = len(ALIGN_SHIFTS)
    z, rest = np.divmod(np.asarray(index), s * 2 * s)
    dy, b = np.divmod(rest, 2 * s)
    mirrored, dx = np.divmod(b, s)
    return np.asarray(ALIGN_ZOOMS)[z], np.asarray(ALIGN_SHIFTS)[dy], np.asarray(ALIGN_SHIFTS)[dx], mirrored.astype(bool)


def align_query(faces: np.ndarray) -> np.ndarray:
    """Each face's central 48 px as an 8 x 8 thumbnail, centred and normalised: ``(n, 64)``."""
    m = area_matrix(ALIGN_CENTRE, 0.0, np.asarray(faces).shape[1])
    return _thumbs(np.asarray(faces), m, m)


def aligned_scores(faces: np.ndarray, near: np.ndarray, chunk: int = 256,
                   workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Step 2 for each face ``i`` and each of its nearest ``near[i]`` (``-1``: none): ``(score, version)``, ``(n, k)``.

    The score is the best correlation of face ``j``'s central thumbnail (unshifted) with
    any version of face ``i``'s (:func:`align_versions`); the zooms (0.9-1.1, both ways)
    and shifts cover a copy of ``j`` cut from ``i`` and the other way round, so one
    direction serves both. ``version`` says which version won (:func:`version_of`).
    """
    faces = np.asarray(faces)
    n, k = near.shape
    score = np.full((n, k), -1.0, dtype=np.float32)
    version = np.zeros((n, k), dtype=np.int64)
    if not n or not k:
        return score, version
    query = align_query(faces)

    def work(lo):
        hi = min(lo + chunk, n)
        raw = align_versions(faces[lo:hi])  # (c, V, 64)
        total = raw.sum(axis=2)
        spread = np.sqrt(np.maximum(np.einsum("cvd,cvd->cv", raw, raw) - total * total / raw.shape[2], 0)) + 1e-3
        partners = query[np.maximum(near[lo:hi], 0)]  # (c, k, 64), centred: the versions' means drop out
        sims = np.matmul(raw, partners.transpose(0, 2, 1)) / spread[:, :, None]  # (c, V, k)
        best = sims.argmax(axis=1)
        score[lo:hi] = np.take_along_axis(sims, best[:, None, :], axis=1)[:, 0, :]
        version[lo:hi] = best

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(work, range(0, n, chunk)))
    score[near < 0] = -1.0
    return score, version


def candidates(faces: np.ndarray, k: int = NEAREST, floor: float = REFINE_FLOOR, workers: int = 2) -> pd.DataFrame:
    """Pairs worth verifying: ``i < j``, ``score`` and ``mirrored``. Each face's nearest (step 1) whose
    aligned thumbnails correlate at :data:`ALIGN_FLOOR` or more (step 2) and, aligned finer, at ``floor``
    or more (step 3). A pair scored both ways in step 2 (each among the other's nearest) goes on in its
    better direction only."""
    near = nearest_faces(faces, k, workers=workers)
    score, version = aligned_scores(faces, near, workers=workers)
    rows = np.repeat(np.arange(len(faces)), near.shape[1])
    cols, score, version = near.ravel(), score.ravel(), version.ravel()
    ok = (cols >= 0) & (score >= ALIGN_FLOOR)
    rows, cols, version, score = rows[ok], cols[ok], version[ok], score[ok]
    lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
    order = np.lexsort((-score, hi, lo))
    first = np.ones(len(order), dtype=bool)
    first[1:] = (lo[order][1:] != lo[order][:-1]) | (hi[order][1:] != hi[order][:-1])
    once = order[first]
    rows, cols, version = rows[once], cols[once], version[once]
    fine = refined_scores(faces, rows, cols, version, workers=workers)
    ok = fine >= floor
    frame = pd.DataFrame({"i": np.minimum(rows, cols)[ok], "j": np.maximum(rows, cols)[ok], "score": fine[ok],
                          "mirrored": version_of(version[ok])[3]})
    frame = frame.sort_values("score", ascending=False, kind="stable").drop_duplicates(["i", "j"])
    return frame.sort_values(["i", "j"]).reset_index(drop=True)


def _refine_tables(side: int) -> tuple[np.ndarray, np.ndarray]:
    """Every area matrix step 3 can ask for: ``(zooms x 3, shifts x 3, 8, side)``, as is and mirrored.

    Step 3 moves step 2's zoom by -1, 0 or +1 :data:`REFINE_ZOOM` and its shifts by -1, 0 or +1
    :data:`REFINE_SHIFT`, so the matrices come from a fixed set and are looked up, not made per pair.
    """
    steps = (-1.0, 0.0, 1.0)
    table = np.stack([np.stack([area_matrix(ALIGN_CENTRE * zoom * (1 + REFINE_ZOOM * a), shift + REFINE_SHIFT * b, side)
                                for shift in ALIGN_SHIFTS for b in steps])
                      for zoom in ALIGN_ZOOMS for a in steps])
    return table, np.ascontiguousarray(table[..., ::-1])


def refined_scores(faces: np.ndarray, i, j, version, chunk: int = 2048, workers: int = 2) -> np.ndarray:
    """Step 3: step 2 again, finer, for the pairs ``(i, j)`` only. Around the version that won
    (:func:`version_of`), zooms of +-2.5 % and shifts of +-0.75 px on each axis (27 thumbnails of face
    ``i``, its orientation kept), against face ``j``'s central thumbnail; the best correlation, ``(m,)``."""
    faces = np.asarray(faces)
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    out = np.empty(len(i), dtype=np.float32)
    if not len(i):
        return out
    side = faces.shape[1]
    plain, flipped = _refine_tables(side)
    s = len(ALIGN_SHIFTS)
    z, rest = np.divmod(np.asarray(version, dtype=np.int64), s * 2 * s)
    dy, b = np.divmod(rest, 2 * s)
    mirrored, dx = np.divmod(b, s)
    near = np.arange(3)
    zi = z[:, None] * 3 + near  # (m, 3): the refined zooms
    yi = dy[:, None] * 3 + near
    xi = dx[:, None] * 3 + near

    plain = plain.reshape(-1, THUMB, side)  # (zoom, shift) flattened
    flipped = flipped.reshape(-1, THUMB, side)
    per_zoom = 3 * s

    def work(lo):
        sl = slice(lo, min(lo + chunk, len(i)))
        p = sl.stop - sl.start
        rows = np.take(plain, zi[sl, :, None] * per_zoom + yi[sl, None, :], axis=0)  # (p, 3 zooms, 3 dy, 8, side)
        at = zi[sl, :, None] * per_zoom + xi[sl, None, :]
        cols = np.where(mirrored[sl, None, None, None, None] == 1, np.take(flipped, at, axis=0),
                        np.take(plain, at, axis=0))  # (p, 3 zooms, 3 dx, 8, side)
        x = faces[i[sl]].astype(np.float32, copy=False)
        tall = np.matmul(rows.reshape(p, -1, side), x).reshape(p, 3, 3 * THUMB, side)
        cells = np.matmul(tall, cols.reshape(p, 3, 3 * THUMB, side).transpose(0, 1, 3, 2))  # (p, 3, 3*8, 3*8)
        # (p, zoom, dy, dx, 64): the 27 thumbnails, not yet centred
        cells = np.ascontiguousarray(cells.reshape(p, 3, 3, THUMB, 3, THUMB).transpose(0, 1, 2, 4, 3, 5))
        cells = cells.reshape(p, 27, THUMB * THUMB)
        # the query is centred and of unit length, so the correlation is its product with the raw thumbnail
        # over the thumbnail's spread
        query = align_query(faces[j[sl]])
        dot = np.matmul(cells, query[:, :, None])[:, :, 0]
        total = cells.sum(axis=2)
        power = np.einsum("pvd,pvd->pv", cells, cells)
        spread = np.sqrt(np.maximum(power - total * total / THUMB ** 2, 0)) + 1e-3
        out[sl] = (dot / spread).max(axis=1)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(work, range(0, len(i), chunk)))
    return out


# The exhaustive search the three steps replaced (the tests hold them to it).
#: Its nearest faces per face and the zooms (central px of 64) it compared the central 48 px with.
EXHAUSTIVE_NEIGHBOURS, EXHAUSTIVE_ZOOMS = 3, (46, 50)


def thumbnails(faces: np.ndarray, centre: int = ALIGN_CENTRE) -> np.ndarray:
    """Each face's central ``centre`` pixels shrunk to 8 x 8, centred and scaled to unit length: ``(n, 64)`` float32.

    At 8 px a crop of a few per cent moves the face by a fraction of a pixel, so a face and
    its re-cropped copy stay close, where the DCT hash moves by 10 bits.
    """
    lo = (REFERENCE_SIDE - centre) // 2
    small = np.stack([cv2.resize(np.ascontiguousarray(f[lo:lo + centre, lo:lo + centre]), (THUMB, THUMB),
                                 interpolation=cv2.INTER_AREA) for f in faces]) if len(faces) else \
        np.zeros((0, THUMB, THUMB), np.uint8)
    flat = small.reshape(len(small), -1).astype(np.float32)
    flat -= flat.mean(axis=1, keepdims=True)
    return flat / (np.linalg.norm(flat, axis=1, keepdims=True) + 1e-3)


def exhaustive_pairs(faces: np.ndarray, k: int = EXHAUSTIVE_NEIGHBOURS, block: int = 1024) -> pd.DataFrame:
    """The search :func:`candidates` replaced, kept as the reference the tests hold it to: each face
    with its ``k`` nearest faces by thumbnail correlation, mirror included, comparing every pair.

    A face's thumbnail (its central 48 px) is compared with every other face's at two zooms
    (its central 46 and 50 px), so that a copy cropped or resized by a few per cent is still
    among the nearest. A pair is a candidate when either face is among the other's ``k``
    nearest. Its time grows with the square of the faces (about 80 s for 23.7k).

    Returns
    -------
    pairs : DataFrame with ``i < j`` (row positions) and ``mirrored`` (the thumbnails agree
        better with one face mirrored).
    """
    n = len(faces)
    k = min(k, n - 1)
    if k < 1:
        return pd.DataFrame({"i": np.zeros(0, np.int64), "j": np.zeros(0, np.int64), "mirrored": np.zeros(0, bool)})
    flipped = np.ascontiguousarray(faces[:, :, ::-1])
    query = thumbnails(faces)
    zooms = [(thumbnails(faces, c), thumbnails(flipped, c)) for c in EXHAUSTIVE_ZOOMS]
    found = []
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n))
        direct = np.max([query[rows] @ z.T for z, _ in zooms], axis=0)
        mirror = np.max([query[rows] @ m.T for _, m in zooms], axis=0)
        sim = np.maximum(direct, mirror)
        sim[np.arange(len(rows)), rows] = -np.inf
        near = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        found.append(np.stack([np.repeat(rows, k), near.ravel()], axis=1))
    pairs = np.unique(np.sort(np.concatenate(found), axis=1), axis=0).astype(np.int64)
    i, j = pairs[:, 0], pairs[:, 1]
    direct = np.max([np.maximum((query[i] * z[j]).sum(1), (query[j] * z[i]).sum(1)) for z, _ in zooms], axis=0)
    mirror = np.max([np.maximum((query[i] * m[j]).sum(1), (query[j] * m[i]).sum(1)) for _, m in zooms], axis=0)
    return pd.DataFrame({"i": i, "j": j, "mirrored": mirror > direct})
