"""Does a second, different detector recover more planted gender flips? (An experiment; not adopted.)

The label-error detector (``facebench.compare.labels``) is an RBF SVC on HOG + LBP +
colour; its out-of-fold accuracy bounds how many planted flips it can find. Here a
second detector of the same kind on other features (default: the 32 x 32 pixels of
``pixels+pca+svm``) is fitted on the same folds, both decision values become
probabilities by Platt scaling, and cleanlab's ``find_label_issues`` runs on each
detector alone, on their mean and on a 2:1 weighting. 100 gender labels of the training
part are flipped (in memory), as in ``benchmarks/label_errors.py``; recall = planted
faces flagged / 100, precision = planted flagged / all flagged.

    python benchmarks/label_error_ensemble.py [--data DIR] [--second pixels+pca+svm] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from facebench.baselines import feature_step
from facebench.baselines.transformers import HFlipPairs
from facebench.compare.config import resolve
from facebench.compare.labels import detector_features, predict_out_of_fold
from facebench.compare.units import prepare_features
from facebench.data import load_dataset, make_split

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "utkface-5k"


def model_features(table, config, model):
    """The (unmirrored) features of a registry model, from the feature cache."""
    info = prepare_features(table, config, [{"model": model, "tasks": ("gender",)}])[model]
    features = np.asarray(np.load(info["file"], mmap_mode="r"))
    if isinstance(feature_step(model, "gender"), HFlipPairs):
        features = features[:, : features.shape[1] // 2]
    return features


def main(argv=None):
    from cleanlab.filter import find_label_issues

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--second", default="pixels+pca+svm", help="registry model whose features the second detector uses")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args(argv)
    table = load_dataset(args.data).table.reset_index(drop=True)
    config = resolve({"preset": "standard", "data": {"path": args.data}})
    detectors = {"svc": detector_features(table, config), "second": model_features(table, config, args.second)}
    for seed in args.seeds:
        train, test = make_split(table, seed=seed, test_size=0.2)
        planted = np.sort(np.random.default_rng(seed).choice(train, size=100, replace=False))
        noisy = table.copy()
        noisy.loc[planted, "gender"] = 1 - noisy.loc[planted, "gender"]
        y = noisy["gender"].to_numpy()[train].astype(int)
        true = table["gender"].to_numpy()[train].astype(int)
        is_planted = np.isin(train, planted)
        probs = {}
        for name, features in detectors.items():
            t = time.perf_counter()
            d = predict_out_of_fold(features, noisy, train, test, seed=seed, age=False)["gender"]
            probs[name] = LogisticRegression(C=1e4).fit(d.reshape(-1, 1), y).predict_proba(d.reshape(-1, 1))
            print(f"seed {seed}: {name} detector fitted in {time.perf_counter() - t:.0f} s")
        probs["mean"] = (probs["svc"] + probs["second"]) / 2
        probs["2:1"] = (2 * probs["svc"] + probs["second"]) / 3
        for name, p in probs.items():
            flagged = find_label_issues(y, p, filter_by="prune_by_noise_rate")
            tp = int((flagged & is_planted).sum())
            print(f"  {name:6s} out-of-fold accuracy (true labels) {np.mean((p[:, 1] > 0.5) == true):.1%}, "
                  f"flagged {flagged.sum()}, recall {tp} %, precision {tp / max(flagged.sum(), 1):.1%}")


if __name__ == "__main__":
    main()
