"""Feature extraction speed: OpenCV vs scikit-image HOG, lbp_codes vs scikit-image, all features.

Both sides of every comparison run in this one process on the same images,
interleaved, best of ``--repeat`` runs (the machine is shared: the best run is
the least disturbed one). The images are real UTKFace faces decoded to 64x64
grayscale when the folder is there (``--data``, ``$FACEBENCH_UTKFACE`` or
``../shared/data/utkface-5k``), else blurred noise.

    python benchmarks/bench_features.py            # 5,000 faces (or all there are)
    python benchmarks/bench_features.py --n 1000 --repeat 5

The "all features" line is HOG (1,764) + LBP (640) + pixels 32x32 for every
face, once in one thread and once in ``--threads`` threads
(:func:`facebench.baselines.transform_in_threads`), extrapolated linearly to the
23,705 faces of the full UTKFace. The flip-augmented models compute them for
the mirror images too: twice that.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from facebench.baselines import (
    ColorFeatures,
    HOGFeatures,
    LBPFeatures,
    OnGray,
    PixelFeatures,
    lbp_codes,
    transform_in_threads,
)
from facebench.baselines.features import hog_features

FULL_UTKFACE = 23_705


def load_faces(folder, n, size=64, color="gray"):
    """Up to ``n`` faces as a (n, size, size[, 3]) uint8 stack, or None if the folder is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    from facebench.data import decode, load_dataset

    table = load_dataset(folder).table.iloc[:n]
    return np.ascontiguousarray(decode(table, size=size, color=color))


def synthetic_faces(n, size=64, seed=0):
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.normal(128, 60, size=(n, size, size)).astype(np.float32)
    return np.stack([np.clip(cv2.GaussianBlur(im, (0, 0), 2.0), 0, 255) for im in noise]).astype(np.uint8)


def best_time(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def compare(label, ours, reference, n_ours, n_reference, repeat):
    """Time two callables interleaved; return images/s of each."""
    t_ours, t_ref = [], []
    for _ in range(repeat):
        t_ours.append(best_time(ours, 1))
        t_ref.append(best_time(reference, 1))
    ours_rate, ref_rate = n_ours / min(t_ours), n_reference / min(t_ref)
    print(f"{label:38s} {ours_rate:10,.0f} img/s  vs {ref_rate:8,.0f} img/s   speed-up {ours_rate / ref_rate:5.1f}x")
    return ours_rate, ref_rate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get("FACEBENCH_UTKFACE") or Path(__file__).resolve().parents[2] / "shared" / "data" / "utkface-5k"
    parser.add_argument("--data", default=str(default_data), help="folder of UTKFace faces (default: %(default)s)")
    parser.add_argument("--n", type=int, default=5000, help="faces for the fast paths (default: %(default)s)")
    parser.add_argument("--n-reference", type=int, default=500, help="faces for the slow scikit-image loops (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement, best kept (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="threads for the parallel 'all features' line (default: %(default)s)")
    args = parser.parse_args(argv)

    from skimage.feature import hog as skimage_hog
    from skimage.feature import local_binary_pattern

    faces = load_faces(args.data, args.n)
    source = f"real UTKFace faces from {args.data}"
    if faces is None:
        faces, source = synthetic_faces(args.n), "synthetic blurred noise (no UTKFace folder found)"
    n, n_ref = len(faces), min(args.n_reference, len(faces))
    few = faces[:n_ref]
    print(f"{n:,} images 64x64 uint8: {source}; scikit-image loops on {n_ref:,} of them; best of {args.repeat}; cpus: {os.cpu_count()}\n")

    compare(
        "HOG: OpenCV (reordered) vs skimage",
        lambda: hog_features(faces, backend="opencv"),
        lambda: [skimage_hog(im, 9, (8, 8), (2, 2), "L2-Hys") for im in few],
        n, n_ref, args.repeat,
    )
    for P, R in [(8, 1), (8, 2), (16, 2)]:
        compare(
            f"LBP codes P={P} R={R} uniform vs skimage",
            lambda: lbp_codes(faces, P, R, "uniform"),
            lambda: [local_binary_pattern(im, P, R, "uniform") for im in few],
            n, n_ref, args.repeat,
        )
    compare(
        f"LBP codes P=8 R=1, {args.threads} threads vs skimage",
        lambda: lbp_codes(faces, 8, 1, "uniform", n_jobs=args.threads),
        lambda: [local_binary_pattern(im, 8, 1, "uniform") for im in few],
        n, n_ref, args.repeat,
    )

    print()
    steps = {  # what the registry computes per face (the RBF models also do the mirror images: x2)
        "HOG (OpenCV)": HOGFeatures(),
        "LBP 8x8 grid": LBPFeatures(),
        "pixels 32x32": PixelFeatures(size=32),
    }
    total = {1: 0.0, args.threads: 0.0}
    for label, transformer in steps.items():
        for threads in total:
            t = best_time(lambda: transform_in_threads(transformer, faces, n_jobs=threads), args.repeat)
            total[threads] += t
            print(f"{label:14s} {threads} thread(s): {t:6.2f} s for {n:,} -> {n / t:8,.0f} img/s")
    colour = load_faces(args.data, args.n, color="rgb")
    if colour is None:
        colour = np.repeat(faces[..., None], 3, axis=3)
    for label, transformer in {"colour 8x8 grid": ColorFeatures(), "RGB -> gray": OnGray(PixelFeatures())}.items():
        t = best_time(lambda: transformer.transform(colour), args.repeat)
        print(f"{label:14s} 1 thread(s): {t:6.2f} s for {len(colour):,} -> {len(colour) / t:8,.0f} img/s  (colour models only)")
    print()
    for threads, t in total.items():
        print(
            f"all features ({threads} thread(s)): {t:.2f} s for {n:,} faces; "
            f"extrapolated to {FULL_UTKFACE:,} faces: {t * FULL_UTKFACE / n:.1f} s"
        )


if __name__ == "__main__":
    main()
