"""The ridge head's leave-one-out: scikit-learn's default for more rows than features against one SVD.

    .venv/bin/python benchmarks/ridge_loo.py [--data ../shared/data/utkface-5k] [--seeds 0 1 2]
        [--models hog+ridge lbp+ridge hog+lbp+ridge] [--rows N]

Per model and split (``make_split(seed)``): the features computed once, scaled as the head
scales them, then ``RidgeCV(alphas=RIDGE_ALPHAS)`` with ``gcv_mode`` left to scikit-learn
(for more rows than features it eigendecomposes the covariance, then multiplies the rows by a
features x features matrix for each alpha) and with ``gcv_mode="svd"`` (what the head uses),
back to back in one process on one thread. Prints each fit's seconds, the chosen alpha, the
test MAE under both and the largest difference between their test predictions.

``--rows N`` times the two on N training rows drawn with replacement from the subset's
features, each multiplied by noise of 5 % (timing only: the full UTKFace's 18,400 training
faces at fraction 1.0 are not on this machine).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def fit_both(X, y, Xtest=None):
    """``{mode: (seconds, alpha, test predictions or None)}`` for the default and the SVD leave-one-out."""
    from sklearn.linear_model import RidgeCV
    from threadpoolctl import threadpool_limits

    from facebench.baselines.registry import RIDGE_ALPHAS

    out = {}
    for mode in ("default", "svd"):
        with threadpool_limits(limits=1):
            t = time.perf_counter()
            ridge = RidgeCV(alphas=RIDGE_ALPHAS, gcv_mode=None if mode == "default" else mode).fit(X, y)
            seconds = time.perf_counter() - t
        out[mode] = seconds, ridge.alpha_, None if Xtest is None else ridge.predict(Xtest)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data/utkface-5k")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=["hog+ridge", "lbp+ridge", "hog+lbp+ridge"])
    ap.add_argument("--rows", type=int, help="time the two on this many rows drawn from the features (timing only)")
    args = ap.parse_args()

    from sklearn.preprocessing import StandardScaler

    from facebench.baselines import feature_step, input_color
    from facebench.data import decode, load_dataset, make_split

    table = load_dataset(args.data).table.reset_index(drop=True)
    age = table["age"].to_numpy().astype(float)
    print(f"# {len(table)} faces; load average {os.getloadavg()[0]:.1f}", flush=True)
    for model in args.models:
        X = np.asarray(feature_step(model, "age").transform(decode(table, size=64, color=input_color(model) or "gray")))
        if args.rows:
            rng = np.random.default_rng(0)
            rows = rng.integers(0, len(X), args.rows)
            Xb = StandardScaler().fit_transform(X[rows] * rng.normal(1, 0.05, size=(args.rows, X.shape[1])).astype(np.float32))
            r = fit_both(Xb, age[rows])
            print(f"{model} on {args.rows} x {X.shape[1]} drawn rows: default {r['default'][0]:.1f} s, "
                  f"svd {r['svd'][0]:.1f} s ({r['default'][0] / r['svd'][0]:.2f}x), alpha {r['default'][1]:.4g} / "
                  f"{r['svd'][1]:.4g} (load average {os.getloadavg()[0]:.1f})", flush=True)
            continue
        for seed in args.seeds:
            train, test = make_split(table, seed=seed)
            scaler = StandardScaler().fit(X[train])
            r = fit_both(scaler.transform(X[train]), age[train], scaler.transform(X[test]))
            (s0, a0, p0), (s1, a1, p1) = r["default"], r["svd"]
            mae = [np.mean(np.abs(p - age[test])) for p in (p0, p1)]
            print(f"{model} split {seed} ({len(train)} x {X.shape[1]}): default {s0:.1f} s, svd {s1:.1f} s "
                  f"({s0 / s1:.2f}x), alpha {a0:.4g} / {a1:.4g}, MAE {mae[0]:.6f} / {mae[1]:.6f}, largest "
                  f"prediction difference {np.max(np.abs(p0 - p1)):.1e} years (load average {os.getloadavg()[0]:.1f})",
                  flush=True)


if __name__ == "__main__":
    main()
