"""Does a second, different detector recover more planted gender flips? (An experiment; not adopted.)

The label-error detector (``facebench.compare.label_errors.detector``) is an RBF SVC on HOG + LBP +
colour; its out-of-fold accuracy bounds how many planted flips it can find. Here a
second detector of the same kind on other features (default: the 32 x 32 pixels of
``pixels+pca+svm``) is fitted on the same folds, both decision values become
probabilities by Platt scaling, and cleanlab's ``find_label_issues`` runs on each
detector alone, on their mean and on a 2:1 weighting. 100 gender labels of the training
part are flipped (in memory), as in ``benchmarks/label_errors.py``; recall = planted
faces flagged / 100, precision = planted flagged / all flagged.

``--cuts`` prints, for the first detector alone, where the missed flips lie and what a
plain cut ``p(given label) < t`` would find instead: recall, the faces flagged, and the
precision among the flags that the planting added (the untouched faces flagged that the
same detector does not flag on the true labels count against it).

    python benchmarks/label_error_ensemble.py [--data DIR] [--second pixels+pca+svm] [--seeds 0 1 2] [--cuts]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from facebench.baselines import feature_step
from facebench.baselines.transformers import HFlipPairs
from facebench.compare.planning.config import resolve
from facebench.compare.label_errors.detector import detector_features, predict_out_of_fold
from facebench.compare.planning.plan import classical_spec
from facebench.compare.running.unit_bodies import prepare_features
from facebench.data import load_dataset, make_split

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "utkface-5k"


def model_features(table, config, model):
    """The (unmirrored) features of a registry model, from the feature cache."""
    info = prepare_features(table, [classical_spec(config, model, ("gender",))])[model]
    features = np.asarray(np.load(info["file"], mmap_mode="r"))
    if isinstance(feature_step(model, "gender"), HFlipPairs):
        features = features[:, : features.shape[1] // 2]
    return features


def platt_probabilities(features, labels_table, train, test, y, seed):
    d = predict_out_of_fold(features, labels_table, train, test, seed=seed, age=False)["gender"]
    return LogisticRegression(C=1e4).fit(d.reshape(-1, 1), y).predict_proba(d.reshape(-1, 1))


def cuts(features, table, noisy, train, test, y, is_planted, seed):
    from cleanlab.filter import find_label_issues

    p = platt_probabilities(features, noisy, train, test, y, seed)
    true = table["gender"].to_numpy()[train].astype(int)
    p_true_run = platt_probabilities(features, table, train, test, true, seed)
    raised = p_true_run[np.arange(len(true)), true]  # what the true labels' own run doubts
    p_given = p[np.arange(len(y)), y]
    flagged = find_label_issues(y, p, filter_by="prune_by_noise_rate")
    missed = np.sort(p_given[is_planted & ~flagged])
    print(f"seed {seed}: cleanlab flags {flagged.sum()} (p(given) <= {p_given[flagged].max():.2f}), "
          f"recall {(flagged & is_planted).sum()} %; {len(missed)} missed, p(given) of them: "
          + " ".join(f"{v:.2f}" for v in missed))
    for t in (0.3, 0.35, 0.4, 0.45, 0.5):
        cut = p_given < t
        added = cut & ~is_planted & ~(raised < t)
        tp = int((cut & is_planted).sum())
        print(f"  p(given) < {t:.2f}: flagged {cut.sum()}, recall {tp} %, untouched {int((cut & ~is_planted).sum())} "
              f"({int(added.sum())} not doubted on the true labels), precision among added {tp / max(tp + added.sum(), 1):.1%}")


def main(argv=None):
    from cleanlab.filter import find_label_issues

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--second", default="pixels+pca+svm", help="registry model whose features the second detector uses")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--cuts", action="store_true", help="the first detector's misses and plain cuts instead")
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
        if args.cuts:
            cuts(detectors["svc"], table, noisy, train, test, y, is_planted, seed)
            continue
        probs = {}
        for name, features in detectors.items():
            t = time.perf_counter()
            probs[name] = platt_probabilities(features, noisy, train, test, y, seed)
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
