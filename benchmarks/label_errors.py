"""Suspected label errors on real faces: how many, planted-error recovery, and the cost.

On the 5k UTKFace subset (one split, seed 0, test_size 0.2, 64 px RGB for the
HOG + LBP + colour features of ``hog+lbp+color+svm``):

1. the number of suspected gender and age labels (training part, out-of-fold; test part,
   judged by the training folds' models), and the seconds the detection takes;
2. planted-error recovery: 100 gender labels of the training part flipped in a copy of
   the labels (in memory; no image is copied), the detector rerun, and
   recall = planted faces flagged / 100, precision = planted flagged / all flagged
   (untouched faces flagged count against it, although some of them may be real errors),
   and the same restricted to the flags that the clean labels did not already raise.

``--side-by-side`` runs 1. and 2. under libsvm (the detector before oneDAL: its SVMs' inputs
converted to float64 either way, its folds one after the other as a run fitted them) and then
oneDAL (folds in ``--n-jobs`` processes), back to back (``--repeat`` times, alternating), and
prints each one's seconds, suspects and recall, and the ratio of their times; ``--threads 1``
holds this process to one thread (the folds' fits are on one thread either way).

Usage::

    .venv/bin/python benchmarks/label_errors.py [--data DIR] [--seed 0] [--plant 100] [--n-jobs 1] [--folds 5] [--filter threshold] [--threshold 0.4] [--detector hog+lbp+color|dlib128] [--svm-backend auto|onedal|libsvm] [--side-by-side [--repeat 2] [--threads 1]]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from facebench.compare.planning.config import resolve
from facebench.compare.label_errors.detector import GENDER_THRESHOLD, detector_choice, detector_features, suspect_labels
from facebench.data import load_dataset, make_split

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "utkface-5k"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plant", type=int, default=100, help="gender labels flipped in the training part")
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--filter", default="threshold",
                    help="'threshold' (the default rule) or a cleanlab filter_by such as prune_by_noise_rate")
    ap.add_argument("--threshold", type=float, default=GENDER_THRESHOLD, help="self-confidence cut of 'threshold'")
    ap.add_argument("--folds", type=int, default=5, help="cross-validation folds of the detector (default 5)")
    ap.add_argument("--detector", default="hog+lbp+color", choices=["hog+lbp+color", "dlib128", "auto"],
                    help="the detector's features (data.label_detector; default: %(default)s)")
    ap.add_argument("--svm-backend", default="auto", choices=["auto", "onedal", "libsvm"],
                    help="the library of the detector's SVC and SVR (svm_backend; default: %(default)s)")
    ap.add_argument("--time-rows", type=int, default=0,
                    help="also time the detection on this many rows (the faces tiled, features jittered), "
                         "e.g. 23700 for the full UTKFace's size")
    ap.add_argument("--side-by-side", action="store_true",
                    help="libsvm then oneDAL in this process, back to back: seconds, suspects, recall and the ratio")
    ap.add_argument("--repeat", type=int, default=1, help="--side-by-side: rounds (libsvm, oneDAL) to run")
    ap.add_argument("--threads", type=int, default=None, help="limit every library to this many threads")
    args = ap.parse_args(argv)

    t = time.perf_counter()
    table = load_dataset(args.data).table.reset_index(drop=True)
    config = resolve({"preset": "standard", "data": {"path": args.data, "label_detector": args.detector}})
    features = detector_features(table, config)
    feat_s = time.perf_counter() - t
    train, test = make_split(table, seed=args.seed, test_size=0.2)
    print(f"{len(table)} faces ({len(train)} train, {len(test)} test), features {features.shape[1]} "
          f"({feat_s:.1f} s with scan and decode; cached after the first run)")
    opts = {"seed": args.seed, "n_jobs": args.n_jobs, "gender_filter": args.filter, "gender_threshold": args.threshold,
            "n_folds": args.folds, "features_name": detector_choice(config), "svm_backend": args.svm_backend}
    if args.side_by_side:
        side_by_side(features, table, train, test, opts, args.plant, args.repeat, args.threads)
        return

    t, cpu = time.perf_counter(), time.process_time()
    clean = suspect_labels(features, table, train, test_rows=test, **opts)
    detect_s, detect_cpu = time.perf_counter() - t, time.process_time() - cpu
    counts = clean.groupby(["task", "part"]).size()
    print(f"\nsuspected on the real labels ({detect_s:.1f} s wall, {detect_cpu:.1f} s CPU for both tasks and parts; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):")
    for (task, part), n in counts.items():
        total = len(train) if part == "train" else len(test)
        print(f"  {task:6s} {part:5s} {n:4d} of {total} ({100 * n / total:.1f} %)")
    for task in ("gender", "age"):
        top = clean[(clean["task"] == task) & (clean["part"] == "train")].head(5)
        print(f"  most confident {task}: " + "; ".join(
            f"{r.image_id} given {r.given} suggested {r.suggested} ({r.confidence:.2f})" for r in top.itertuples()))

    rng = np.random.default_rng(args.seed)
    planted_rows = np.sort(rng.choice(train, size=args.plant, replace=False))
    noisy = table.copy()
    noisy.loc[planted_rows, "gender"] = 1 - noisy.loc[planted_rows, "gender"]
    t, cpu = time.perf_counter(), time.process_time()
    found = suspect_labels(features, noisy, train, test_rows=test, tasks=("gender",), **opts)
    plant_s, plant_cpu = time.perf_counter() - t, time.process_time() - cpu
    flagged = set(found.loc[found["part"] == "train", "image_id"])
    planted = set(table["image_id"].to_numpy()[planted_rows])
    before = set(clean.loc[(clean["task"] == "gender") & (clean["part"] == "train"), "image_id"])
    tp = len(flagged & planted)
    untouched = flagged - planted
    new_untouched = untouched - before
    print(f"\nplanted {args.plant} gender flips in the training part ({plant_s:.1f} s wall, {plant_cpu:.1f} s CPU, gender only):")
    print(f"  flagged {len(flagged)}: {tp} planted, {len(untouched)} untouched "
          f"({len(untouched & before)} of them flagged on the real labels too)")
    print(f"  recall {tp / args.plant:.1%}, precision {tp / max(len(flagged), 1):.1%}; "
          f"precision against the flags the real labels did not raise {tp / max(tp + len(new_untouched), 1):.1%}")
    ranked = found[found["part"] == "train"].sort_values("confidence", ascending=False, kind="stable")["image_id"]
    for k in (25, 50, 100):
        top = set(ranked.head(k))
        print(f"  among the {k} most confident flags: {len(top & planted)} planted")
    p_given = found.set_index("image_id")["confidence"]
    missed = planted - flagged
    print(f"  planted but missed: {len(missed)}; flagged planted faces' median confidence "
          f"{np.median([p_given[i] for i in flagged & planted]) if tp else float('nan'):.2f}")

    if args.time_rows:
        time_at_scale(features, table, args.time_rows, opts)


def side_by_side(features, table, train, test, opts, plant, repeat, threads) -> None:
    """Both libraries in turn on the same split: the real labels (both tasks), then ``plant`` planted gender flips."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(opts["seed"])
    planted_rows = np.sort(rng.choice(train, size=plant, replace=False))
    noisy = table.copy()
    noisy.loc[planted_rows, "gender"] = 1 - noisy.loc[planted_rows, "gender"]
    planted = set(table["image_id"].to_numpy()[planted_rows])
    seconds = {"libsvm": [], "onedal": []}
    for round_ in range(repeat):
        for backend in ("libsvm", "onedal"):
            with threadpool_limits(limits=threads):
                t, cpu = time.perf_counter(), time.process_time()
                mine = {**opts, "svm_backend": backend, "n_jobs": 1 if backend == "libsvm" else opts["n_jobs"]}
                clean = suspect_labels(features, table, train, test_rows=test, **mine)
                real_s, real_cpu = time.perf_counter() - t, time.process_time() - cpu
                t, cpu = time.perf_counter(), time.process_time()
                found = suspect_labels(features, noisy, train, test_rows=test, tasks=("gender",), **mine)
                plant_s, plant_cpu = time.perf_counter() - t, time.process_time() - cpu
            seconds[backend].append(real_s + plant_s)
            counts = clean.groupby(["task", "part"]).size().to_dict()
            flagged = set(found.loc[found["part"] == "train", "image_id"])
            ranked = found[found["part"] == "train"].sort_values("confidence", ascending=False, kind="stable")["image_id"]
            print(f"round {round_} {backend}: real labels {real_s:.1f} s wall / {real_cpu:.1f} s CPU, planted "
                  f"{plant_s:.1f} s / {plant_cpu:.1f} s CPU (load average {os.getloadavg()[0]:.1f}); suspects "
                  + ", ".join(f"{t} {p} {n}" for (t, p), n in sorted(counts.items()))
                  + f"; planted recall {len(flagged & planted) / plant:.1%}, precision "
                  f"{len(flagged & planted) / max(len(flagged), 1):.1%}, {len(set(ranked.head(100)) & planted)} in the "
                  f"top 100", flush=True)
    old, new = sum(seconds["libsvm"]), sum(seconds["onedal"])
    print(f"\nlibsvm {old:.1f} s, oneDAL {new:.1f} s wall over {repeat} round(s) (real + planted): {old / new:.2f}x")


def time_at_scale(features, table, n_rows, opts) -> None:
    """Seconds of the detection on ``n_rows`` faces: the real ones repeated, their features jittered.

    Only the cost means anything here (duplicated faces make the labels easy to fit);
    the row cap (``max_fit_rows``) is what bounds it on a large training part.
    """
    reps = -(-n_rows // len(table))
    rng = np.random.default_rng(0)
    big = np.tile(features, (reps, 1))[:n_rows]
    big = big + rng.normal(0, 0.05 * big.std(axis=0), big.shape).astype(big.dtype)
    tiled = table.iloc[np.arange(n_rows) % len(table)].reset_index(drop=True).copy()
    tiled["image_id"] = [f"{i}:{name}" for i, name in enumerate(tiled["image_id"])]
    train, test = make_split(tiled, seed=opts["seed"], test_size=0.2)
    t, cpu = time.perf_counter(), time.process_time()
    suspect_labels(big, tiled, train, test_rows=test, **opts)
    print(f"\ndetection on {n_rows} rows ({len(train)} train, {len(test)} test), both tasks: "
          f"{time.perf_counter() - t:.1f} s wall, {time.process_time() - cpu:.1f} s CPU "
          f"(load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
