"""Choose the near-duplicate threshold by measurement: recall on planted variants, false pairs on distinct faces.

Plants variants of real faces (each one: a JPEG re-encode at quality 60-95, a resize by up
to 10 %, a crop of up to 5 % of each side, brightness and contrast within 10 %, and a
mirror for half of them, all drawn at random), hashes them as a run does
(:func:`facebench.data.neardup.image_hashes`), and prints, per threshold in bits:

* recall: the share of (face, its variant) pairs within the threshold;
* close pairs among the dataset's own faces (each distinct file), per 1,000 faces.

Each transformation is also measured alone at its extreme. With ``--sheets DIR`` it draws
contact sheets of the dataset's closest pairs at each distance (PNG files in DIR, for
looking at only: with UTKFace they hold its faces, so DIR must be outside the project),
and it times the hashing and the pair search on the dataset, with the cache cold and warm.

    python benchmarks/near_duplicates.py --data ../shared/data/utkface-5k --plant 1000 --sheets /tmp/neardup-sheets
    python benchmarks/near_duplicates.py --data ../shared/data/utkface-5k --plant 1000 --alone 10 --aligned 5

With ``--verified DIR`` it measures what a run uses instead
(:func:`facebench.data.neardup.candidate_pairs`: each face's nearest faces by thumbnail
and the hash pairs, each verified by an aligned correlation of the faces' detail): recall
of each kind of variant (the variants planted beside the dataset's own faces, so the
candidate search has to find them among all of them), the dataset's own pairs above and
around the threshold with contact sheets in DIR, and the seconds of each step.

    python benchmarks/near_duplicates.py --data ../shared/data/utkface-5k --plant 1000 --alone 300 --verified /tmp/neardup-verified

With ``--scale N`` it times the detection on N faces, the dataset's own and mosaics of them
(the full UTKFace's size is 23,708; see ``benchmarks/near_duplicates_scale.py``):

    python benchmarks/near_duplicates.py --data ../shared/data/utkface-5k --scale 23708 --plant 1000 --alone 300
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from facebench.data import load_dataset
from facebench.data.neardup import (DEFAULT_BITS, DEFAULT_SIMILARITY, candidate_pairs, close_pairs, detect_pairs,
                                    image_hashes, verify_faces)

THRESHOLDS = range(0, 13)


def variant(img: Image.Image, rng: np.random.Generator, only: str | None = None) -> tuple[Image.Image, int]:
    """One planted variant of ``img`` and its JPEG quality (all changes drawn at random, or one at its extreme)."""
    w, h = img.size
    out = img.convert("RGB")
    if only in (None, "crop"):
        # up to 5 % off each side; alone, 5 % off two sides (the largest shift of the centre)
        box = [int(round(rng.uniform(0, 0.05) * w)), int(round(rng.uniform(0, 0.05) * h)),
               w - int(round(rng.uniform(0, 0.05) * w)), h - int(round(rng.uniform(0, 0.05) * h))]
        if only:
            box = [int(0.05 * w), int(0.05 * h), w, h]
        out = out.crop(box)
    if only in (None, "resize"):
        s = rng.uniform(0.9, 1.1) if only is None else 0.9
        out = out.resize((max(8, int(round(out.size[0] * s))), max(8, int(round(out.size[1] * s)))), Image.BICUBIC)
    if only in (None, "light"):
        b = rng.uniform(0.9, 1.1) if only is None else 1.1
        c = rng.uniform(0.9, 1.1) if only is None else 0.9
        out = ImageEnhance.Contrast(ImageEnhance.Brightness(out).enhance(b)).enhance(c)
    if only == "mirror" or (only is None and rng.random() < 0.5):
        out = ImageOps.mirror(out)
    quality = int(rng.integers(60, 96)) if only is None else (60 if only == "jpeg" else 95)
    return out, quality


def plant(table: pd.DataFrame, n: int, folder: Path, seed: int, only: str | None) -> pd.DataFrame:
    """Write ``n`` variants of seeded faces of ``table`` into ``folder``; return (source row, path)."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(table), size=min(n, len(table)), replace=False)
    out = []
    for k, r in enumerate(rows):
        with Image.open(table["path"].iloc[r]) as im:
            v, quality = variant(im, rng, only)
        path = folder / f"{only or 'all'}-{k:05d}.jpg"
        buf = io.BytesIO()
        v.save(buf, "JPEG", quality=quality)
        path.write_bytes(buf.getvalue())
        out.append({"source": int(r), "path": str(path)})
    return pd.DataFrame(out)


def planted_distances(hashes_src: np.ndarray, hashes_var: np.ndarray) -> np.ndarray:
    """Distance from each variant to its face (the smaller of face and mirror)."""
    from facebench.data.neardup import hamming

    return np.minimum(hamming(hashes_src[:, 0], hashes_var[:, 0]), hamming(hashes_src[:, 0], hashes_var[:, 1]))


def aligned_similarity(a: np.ndarray, b: np.ndarray, chunk: int = 300) -> np.ndarray:
    """Normalised correlation of each face ``a[k]`` (centre 28 px of 40) with ``b[k]``, best over 5 scales
    (0.9-1.1) x 7 x 7 one-pixel shifts, mirrored or not: an alignment-tolerant comparison of candidate pairs."""
    import cv2
    from numpy.lib.stride_tricks import sliding_window_view

    side, w, r = a.shape[1], 28, 3

    def unit(x):
        x = x.reshape(*x.shape[:-2], -1).astype(np.float32)
        x = x - x.mean(-1, keepdims=True)
        return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-6)

    def versions(imgs):
        out = []
        for scale in (0.9, 0.95, 1.0, 1.05, 1.1):
            n = int(round(side * scale))
            res = imgs if n == side else np.stack([cv2.resize(im, (n, n), interpolation=cv2.INTER_AREA if n < side
                                                              else cv2.INTER_LINEAR) for im in imgs])
            c = (n - w) // 2
            win = sliding_window_view(res, (w, w), axis=(1, 2))[:, c - r:c + r + 1, c - r:c + r + 1]
            out.append(win.reshape(len(imgs), -1, w, w))
        return unit(np.concatenate(out, 1))

    c = (side - w) // 2
    centre = unit(a[:, c:c + w, c:c + w].astype(np.float32))
    best = np.empty(len(a), np.float32)
    for k in range(0, len(a), chunk):
        part = b[k:k + chunk].astype(np.float32)
        for flipped in (part, part[:, :, ::-1].copy()):
            sim = np.einsum("md,mkd->mk", centre[k:k + chunk], versions(flipped)).max(1)
            best[k:k + chunk] = sim if flipped is part else np.maximum(best[k:k + chunk], sim)
    return best


def aligned_check(table: pd.DataFrame, planted: pd.DataFrame, k: int) -> None:
    """Print recall and close distinct pairs of :func:`aligned_similarity` on the ``k`` nearest 8-px neighbours."""
    from facebench.data import decode

    def unit(x):
        x = x.reshape(len(x), -1).astype(np.float32)
        x = x - x.mean(1, keepdims=True)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    faces = np.asarray(decode(table, size=40, color="gray"))
    variants = np.asarray(decode(planted, size=40, color="gray", cache_dir=False))
    t0 = time.perf_counter()
    planted_sim = aligned_similarity(faces[planted["source"].to_numpy()], variants)
    small = np.asarray(decode(table, size=8, color="gray"))
    s8 = np.maximum(unit(small) @ unit(small).T, unit(small) @ unit(small[:, :, ::-1].copy()).T)
    np.fill_diagonal(s8, -9)
    nn = np.argsort(-s8, axis=1)[:, :k]
    pairs = np.unique(np.sort(np.stack([np.repeat(np.arange(len(table)), k), nn.ravel()], 1), axis=1), axis=0)
    distinct = aligned_similarity(faces[pairs[:, 0]], faces[pairs[:, 1]])
    print(f"aligned correlation of the {k} nearest 8-px neighbours: {len(pairs):,} candidate pairs, "
          f"{time.perf_counter() - t0:.0f} s")
    for cut in (0.9, 0.93, 0.95, 0.96, 0.97):
        print(f"  at {cut}: recall (all changes at random) {np.mean(planted_sim >= cut):.1%}, "
              f"distinct pairs {int((distinct >= cut).sum())}")


def contact_sheet(table: pd.DataFrame, pairs: pd.DataFrame, path: Path, per_sheet: int = 24) -> None:
    """Pairs side by side (96 px each) with their labels and distance."""
    side, pad = 96, 18
    pairs = pairs.head(per_sheet)
    cols = 4
    rows = (len(pairs) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * (2 * side + 12), max(1, rows) * (side + pad)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, p in enumerate(pairs.itertuples(index=False)):
        x, y = (k % cols) * (2 * side + 12), (k // cols) * (side + pad)
        for m, i in enumerate((p.i, p.j)):
            with Image.open(table["path"].iloc[i]) as im:
                sheet.paste(ImageOps.fit(im.convert("RGB"), (side, side)), (x + m * side, y))
        a, b = table.iloc[p.i], table.iloc[p.j]
        draw.text((x, y + side + 2), f"{p.bits}b  {a.age}/{a.gender} vs {b.age}/{b.gender}", fill="black")
    sheet.save(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--plant", type=int, default=1000, help="variants with every change drawn at random")
    ap.add_argument("--alone", type=int, default=300, help="variants per change alone at its extreme")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sheets", default="", help="folder for contact sheets of the closest distinct pairs")
    ap.add_argument("--aligned", type=int, default=0,
                    help="also measure an alignment-tolerant correlation on this many nearest neighbours per face")
    ap.add_argument("--verified", default="",
                    help="measure the verified pairs a run uses; contact sheets of pairs near the threshold go here")
    ap.add_argument("--scale", type=int, default=0,
                    help="time the detection on this many faces: the dataset's and mosaics of them "
                         "(benchmarks/near_duplicates_scale.py); with --plant, recall at that size")
    args = ap.parse_args(argv)
    if args.scale:
        from near_duplicates_scale import scale

        return scale(args, plant, markdown)
    if args.verified:
        return verified(args)

    dataset = load_dataset(args.data)
    table = dataset.table
    n = len(table)
    cache = Path(tempfile.mkdtemp(prefix="neardup-cache-"))
    work = Path(tempfile.mkdtemp(prefix="neardup-planted-"))
    try:
        from facebench.data import decode

        t0 = time.perf_counter()
        decode(table, size=32, color="gray", cache_dir=cache)
        decode_s = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        hashes = image_hashes(table, cache_dir=cache)
        hash_s, hash_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        close_pairs(hashes, DEFAULT_BITS)
        pair_s, pair_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        image_hashes(table, cache_dir=cache)
        close_pairs(hashes, DEFAULT_BITS)
        warm_s = time.perf_counter() - t0
        print(f"{n} faces: decode at 32 px {decode_s:.2f} s (cold, once); hashing faces and mirrors {hash_s:.2f} s "
              f"({n / hash_s:,.0f} faces/s); pair search at {DEFAULT_BITS} bits {pair_s:.2f} s; second run "
              f"(cached hashes + pair search) {warm_s:.2f} s")
        scale = 23_700 / n
        print(f"CPU seconds (other jobs on the machine stretch the wall clock, not these): hashing {hash_cpu:.2f}, "
              f"pair search {pair_cpu:.2f}")
        print(f"extrapolated to 23.7k faces (both grow about linearly): hashing {hash_s * scale:.1f} s "
              f"({hash_cpu * scale:.1f} s CPU), pair search {pair_s * scale:.1f} s ({pair_cpu * scale:.1f} s CPU)")
        own = close_pairs(hashes, max(THRESHOLDS))

        kinds = [("all changes at random", None, args.plant)] + [
            (f"{k} alone at its extreme", k, args.alone) for k in ("jpeg", "resize", "crop", "light", "mirror")]
        recall = {}
        for label, only, count in kinds:
            folder = work / (only or "all")
            folder.mkdir()
            planted = plant(table, count, folder, args.seed, only)
            hv = image_hashes(planted, cache_dir=False)
            d = planted_distances(hashes[planted["source"].to_numpy()], hv)
            recall[label] = {t: float(np.mean(d <= t)) for t in THRESHOLDS}
            if only is None and args.aligned:
                aligned_check(table, planted, args.aligned)
            print(f"{label}: {len(d)} variants, distance median {np.median(d):.0f}, 99th pct "
                  f"{np.percentile(d, 99):.0f}, max {d.max()}")

        counts = own["bits"].value_counts().sort_index()
        rows = []
        for t in THRESHOLDS:
            close = int((own["bits"] <= t).sum())
            rows.append({"bits": t, **{f"recall: {k}": f"{v[t]:.1%}" for k, v in recall.items()},
                         "close pairs": close, "per 1,000 faces": f"{close / n * 1000:.2f}"})
        frame = pd.DataFrame(rows)
        print(markdown(frame))
        print("pairs among the dataset's own faces at each distance:",
              ", ".join(f"{int(b)}: {int(c)}" for b, c in counts.items()))
        if args.sheets:
            out = Path(args.sheets)
            out.mkdir(parents=True, exist_ok=True)
            for b in sorted(set(own["bits"])):
                sub = own[own["bits"] == b].sort_values(["i", "j"])
                contact_sheet(table, sub, out / f"pairs-{int(b):02d}bits.png")
            print(f"contact sheets in {out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
    return 0


def verified(args) -> int:
    """Recall per kind of planted variant and the dataset's own pairs, for the verified pairs a run uses."""
    from facebench.data import decode

    table = load_dataset(args.data).table.reset_index(drop=True)
    n = len(table)
    cache = Path(tempfile.mkdtemp(prefix="neardup-cache-"))
    work = Path(tempfile.mkdtemp(prefix="neardup-planted-"))
    try:
        t0 = time.perf_counter()
        decode(table, size=32, color="gray", cache_dir=cache)
        faces = verify_faces(table, cache_dir=cache)
        decode_s = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        image_hashes(table, cache_dir=cache)
        hash_s, hash_c = time.perf_counter() - t0, time.process_time() - c0
        hashes = image_hashes(table, cache_dir=cache)
        seconds = {}
        t0, c0 = time.perf_counter(), time.process_time()
        detect_pairs(hashes, faces, DEFAULT_BITS, seconds=seconds)
        detect_s, detect_c = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        own = candidate_pairs(table, DEFAULT_BITS, cache_dir=cache)
        total_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        candidate_pairs(table, DEFAULT_BITS, cache_dir=cache)
        warm_s = time.perf_counter() - t0
        print(f"{n} faces, decoded once (32 and 64 px) in {decode_s:.1f} s. Wall (CPU) seconds: hashes {hash_s:.2f} "
              f"({hash_c:.2f}); candidates and verification {detect_s:.2f} ({detect_c:.2f}: "
              + ", ".join(f"{k} {v:.2f}" for k, v in seconds.items()) + f" wall); all of candidate_pairs, cold "
              f"{total_s:.2f}, cached {warm_s:.3f} (the time at 23.7k faces: --scale)")
        cuts = (0.78, 0.8, 0.82, DEFAULT_SIMILARITY, 0.84, 0.86, 0.9)
        kinds = [("all changes at random", None, args.plant)] + [
            (f"{k} alone at its extreme", k, args.alone) for k in ("jpeg", "resize", "crop", "light", "mirror")]
        rows = []
        for label, only, count in kinds:
            folder = work / (only or "all")
            folder.mkdir()
            planted = plant(table, count, folder, args.seed, only)
            both = pd.concat([table[["path"]], planted[["path"]]], ignore_index=True)
            pairs = candidate_pairs(both, DEFAULT_BITS, cache_dir=False)
            sim = pairs.set_index(["i", "j"])["similarity"]
            key = list(zip(planted["source"], n + np.arange(len(planted))))
            got = np.array([sim.get(k, -1.0) for k in key])
            rows.append({"variant": label, "n": len(planted), "candidate found": f"{np.mean(got > -1):.1%}",
                         **{f"recall at {c}": f"{np.mean(got >= c):.1%}" for c in cuts}})
            print(rows[-1], flush=True)
        print(markdown(pd.DataFrame(rows)))
        above = {c: int((own["similarity"] >= c).sum()) for c in cuts}
        print(f"the dataset's own candidate pairs ({len(own):,}) at or above each similarity:",
              ", ".join(f"{c}: {v}" for c, v in above.items()))
        print("closest pairs around the threshold:",
              ", ".join(f"{v:.3f}" for v in np.sort(own["similarity"].to_numpy())[::-1][:40]))
        out = Path(args.verified)
        out.mkdir(parents=True, exist_ok=True)
        ranked = own.sort_values("similarity", ascending=False)
        shown = ranked.assign(bits=(ranked["similarity"] * 1000).round().astype(int))  # the sheet's label: x 1000
        accepted = shown[shown["similarity"] >= DEFAULT_SIMILARITY]
        contact_sheet(table, accepted.tail(24), out / "accepted-closest-to-threshold.png")
        contact_sheet(table, shown[shown["similarity"] < DEFAULT_SIMILARITY], out / "rejected-closest.png")
        print(f"contact sheets in {out} (label: similarity x 1000)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
    return 0


def markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a markdown table (for benchmarks/RESULTS.md)."""
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
