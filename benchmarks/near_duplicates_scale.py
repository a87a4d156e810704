"""The near-duplicate detection timed at the full UTKFace's size (23,708 faces) from the 5k subset.

The full UTKFace is not on this machine, so the faces are made: the subset's own faces
(4,972) and, for the rest, mosaics of them: each made face is four quadrants (32 x 32 px of
the 64-px gray face) of four different real faces drawn at random (seeded). Every quadrant
is a real face's pixels in its real place, so the thumbnails the candidate search compares
have real faces' statistics (light, contrast, where eyes, nose and mouth fall) and crowd
the real faces as more real faces would; no made face is another face or a copy of one
(at most one quadrant in four of any face is shared at its place, so the aligned
verification does not join them, which the run checks and prints). Every stage but the
verification does the same work for any faces of this size (matrix products, one per pair
of faces in step 1); the verification grows with the pairs that pass the search's floors,
which the run prints beside the rate on the subset's own faces.

Timed as a run adds it, once the faces are decoded (decoding is timed apart): the faces
are written as 64-px JPEG files beside copies of the subset's files (in a temporary folder), decoded once into a
fresh cache, then :func:`facebench.data.find_near_duplicates` runs cold (hashes, candidates,
verification, groups; caches written) and again (cached). Each stage's wall and CPU seconds
come from a second cold pass on the decoded stacks. With ``--plant N`` the benchmark's
planted variants (every change at random, and crops alone at their extreme) are added to
the 23,708 faces and their recall is measured at this size.

    python benchmarks/near_duplicates.py --data ../shared/data/utkface-5k --scale 23708 --plant 1000 --alone 300
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from facebench.data import decode, find_near_duplicates, load_dataset
from facebench.data.neardup import (DEFAULT_BITS, DEFAULT_SIMILARITY, detect_pairs, group_labels, phash_bits,
                                    two_threads)


def mosaics(faces: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` faces, each four quadrants of four different faces of ``faces`` (``(n, 64, 64)``)."""
    rng = np.random.default_rng(seed)
    n, side = faces.shape[:2]
    half = side // 2
    out = np.empty((count, side, side), dtype=faces.dtype)
    for k in range(count):
        a, b, c, d = rng.choice(n, size=4, replace=False)
        out[k, :half, :half] = faces[a, :half, :half]
        out[k, :half, half:] = faces[b, :half, half:]
        out[k, half:, :half] = faces[c, half:, :half]
        out[k, half:, half:] = faces[d, half:, half:]
    return out


def _stamp(seconds: float, cpu: float) -> str:
    return f"{seconds:.2f} s ({cpu:.2f} s CPU)"


def _timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def density(real: np.ndarray, n: int) -> None:
    """The work that grows with how alike the faces are, on real faces only: step-3 entries and verified pairs
    per face in a quarter, a half and all of the subset, their CPU cost each, and that work for ``n`` real faces
    if it kept growing as from the half to all (printed beside the mosaic run, whose faces crowd less)."""
    from facebench.data import neardup_search as ns
    from facebench.data.neardup import verify_pairs

    rng = np.random.default_rng(0)
    rates = []
    with two_threads():
        for part in (4, 2, 1):
            m = len(real) // part
            faces = real[np.sort(rng.choice(len(real), m, replace=False))] if part > 1 else real
            small = faces.reshape(m, 32, 2, 32, 2).mean(axis=(2, 4), dtype=np.float32)
            near = ns.nearest_faces(small)
            score, version = ns.aligned_scores(small, near)
            rows = np.repeat(np.arange(m), near.shape[1])
            ok = (near.ravel() >= 0) & (score.ravel() >= ns.ALIGN_FLOOR)
            c0 = time.process_time()
            ns.refined_scores(small, rows[ok], near.ravel()[ok], version.ravel()[ok], workers=1)
            refine_c = (time.process_time() - c0) / max(1, ok.sum())
            found = ns.candidates(small)
            c0 = time.process_time()
            verify_pairs(faces, found["i"], found["j"], found["mirrored"].to_numpy(), workers=1)
            verify_c = (time.process_time() - c0) / max(1, len(found))
            rates.append((m, ok.sum() / m, len(found) / m, refine_c, verify_c))
            print(f"  {m:,} real faces: {ok.sum() / m:.3f} step-3 entries a face ({refine_c * 1e6:.0f} us CPU each), "
                  f"{len(found) / m:.4f} pairs verified a face ({verify_c * 1e3:.2f} ms CPU each)")
    (m1, e1, v1, _, _), (m2, e2, v2, rc, vc) = rates[-2], rates[-1]
    grow = np.log(n / m2) / np.log(m2 / m1)  # doublings from the subset to n, in steps of the last one
    entries, pairs = e2 * (e2 / e1) ** grow * n, v2 * (v2 / v1) ** grow * n
    print(f"for {n:,} real faces, growing per face as from {m1:,} to {m2:,}: about {entries:,.0f} step-3 entries "
          f"({entries * rc:.2f} s CPU) and {pairs:,.0f} pairs to verify ({pairs * vc:.2f} s CPU); if per-face rates "
          f"grew with the faces (pairs above a floor with their square): {e2 * n / m2 * n:,.0f} entries "
          f"({e2 * n / m2 * n * rc:.2f} s CPU) and {v2 * n / m2 * n:,.0f} pairs ({v2 * n / m2 * n * vc:.2f} s CPU)")


def scale(args, plant, markdown) -> int:
    """Time the detection on ``args.scale`` faces (see the module docstring); recall of planted variants there."""
    source = load_dataset(args.data).table.reset_index(drop=True)
    real = np.asarray(decode(source, size=64, color="gray"))
    made = mosaics(real, max(0, args.scale - len(real)), args.seed)
    work = Path(tempfile.mkdtemp(prefix="neardup-scale-"))
    cache = work / "cache"
    folder = work / "faces"
    folder.mkdir()
    try:
        for p in source["path"]:
            shutil.copy(p, folder / Path(p).name)  # a temporary folder, removed at the end
        names = source["image_id"].to_numpy()
        rng = np.random.default_rng(args.seed)
        for k, face in enumerate(made):
            age, gender, race = str(names[rng.integers(len(names))]).split("_")[:3]
            cv2.imwrite(str(folder / f"{age}_{gender}_{race}_3000{k:013d}.jpg.chip.jpg"), face,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
        dataset = load_dataset(folder, cache_dir=cache)
        table = dataset.table.reset_index(drop=True)
        n = len(table)
        _, dec_s, dec_c = _timed(lambda: (decode(table, size=32, color="gray", cache_dir=cache),
                                          decode(table, size=64, color="gray", cache_dir=cache)))
        load = os.getloadavg()
        cold, cold_s, cold_c = _timed(lambda: find_near_duplicates(load_dataset(folder, cache_dir=cache),
                                                                   cache_dir=cache))
        _, warm_s, warm_c = _timed(lambda: find_near_duplicates(load_dataset(folder, cache_dir=cache),
                                                                cache_dir=cache))
        scan_s = _timed(lambda: load_dataset(folder, cache_dir=cache))[1]
        print(f"{n:,} faces ({len(source):,} real, {len(made):,} mosaics of them), decoded once at 32 and 64 px in "
              f"{dec_s:.1f} s (not counted). Load average before: {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}.")
        near = cold.audit["near_duplicates"]
        print(f"find_near_duplicates, cold: {_stamp(cold_s, cold_c)} including the folder scan ({scan_s:.2f} s, "
              f"cached: a run scans anyway); its own clock: {near['seconds']:.2f} s; {near['candidates']:,} "
              f"candidate pairs, {near['pairs']} verified, {near['groups']} groups. Cached second run: "
              f"{_stamp(warm_s, warm_c)} (its own clock: "
              f"{find_near_duplicates(load_dataset(folder, cache_dir=cache), cache_dir=cache).audit['near_duplicates']['seconds']:.2f} s)")

        small = np.asarray(decode(table, size=32, color="gray", cache_dir=cache))
        faces = np.asarray(decode(table, size=64, color="gray", cache_dir=cache))
        with two_threads():
            hashes, hash_s, hash_c = _timed(lambda: phash_bits(small, mirrored=True))
        seconds = {}
        pairs, det_s, det_c = _timed(lambda: detect_pairs(hashes, faces, DEFAULT_BITS, seconds=seconds))
        verified = pairs[pairs["similarity"] >= DEFAULT_SIMILARITY]
        _, group_s, group_c = _timed(lambda: group_labels(n, verified))
        is_real = table["path"].map(lambda p: "_3000" not in Path(p).name).to_numpy()
        both_real = is_real[verified["i"]] & is_real[verified["j"]]
        print(f"stages, wall (CPU over the whole call): DCT hashes {_stamp(hash_s, hash_c)}; candidates and "
              f"verification {_stamp(det_s, det_c)}: " + ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items())
              + f"; groups {_stamp(group_s, group_c)}; total {hash_s + det_s + group_s:.2f} s wall")
        print(f"pairs verified: {len(pairs):,} ({len(pairs) / n:.3f} per face), {len(verified)} at or above "
              f"{DEFAULT_SIMILARITY}: {int(both_real.sum())} between real faces, {int((~both_real).sum())} with a "
              f"made face; load average after: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
        density(real, n)
        if args.plant:
            rows = []
            for label, only, count in (("all changes at random", None, args.plant), ("crop alone at its extreme",
                                                                                     "crop", args.alone)):
                sub = work / (only or "all")
                sub.mkdir()
                planted = plant(source, count, sub, args.seed, only)
                variants = np.asarray(decode(planted, size=64, color="gray", cache_dir=False))
                small_v = np.asarray(decode(planted, size=32, color="gray", cache_dir=False))
                every = np.concatenate([faces, variants])
                every_small = np.concatenate([small, small_v])
                hv = phash_bits(every_small, mirrored=True)
                got = detect_pairs(hv, every, DEFAULT_BITS).set_index(["i", "j"])["similarity"]
                at = table["path"].map(lambda p: Path(p).name).reset_index().set_index("path")["index"]
                src = at.loc[source["path"].map(lambda p: Path(p).name).to_numpy()[planted["source"]]].to_numpy()
                sims = np.array([got.get((s, n + v), -1.0) for v, s in enumerate(src)])
                rows.append({"variant": label, "n": count, "candidate found": f"{np.mean(sims > -1):.1%}",
                             f"recall at {DEFAULT_SIMILARITY}": f"{np.mean(sims >= DEFAULT_SIMILARITY):.1%}"})
            print(f"planted beside the {n:,} faces:")
            print(markdown(pd.DataFrame(rows)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0
