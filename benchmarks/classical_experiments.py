"""Variants of the best classical models, scored on several splits of a UTKFace folder.

Each variant is the registry's flip-augmented RBF pipeline (``hog+lbp+svm`` for
gender, ``hog6+lbp+svr`` for age: scaler -> PCA 256 -> SVC / SVR, C tuned by CV on
the training part) fitted on a different feature set or target. Features are
computed once per image and per mirror image; every variant of a split sees the
same training and test faces (``facebench.data.make_split(seed)``). Printed per
split and variant: test accuracy or MAE, and the same with test-time flip (the
mean of the decisions / predictions for each face and its mirror image).

    python benchmarks/classical_experiments.py --data ../shared/data/utkface-5k \\
        --seeds 0 1 2 --variants gender gender+color age age+color

Variants (``VARIANTS``): ``gender``, ``age`` (the registry's features); ``+sqrt``
(square-rooted LBP histograms, the Hellinger map); ``+color`` (CIELAB mean/std per
cell of an 8x8 grid; ``+color4``, ``+color16`` other grids); ``age+log`` (SVR on
log(1 + age), epsilon 0.05, C in 0.3/1/3); ``age+hog8`` (HOG with 6- and 8-pixel cells).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from facebench.baselines import ColorFeatures, make_head
from facebench.baselines.registry import FEATURES as REGISTRY_FEATURES
from facebench.data import decode, load_dataset, make_split

# the registry's extractors (hog, hog6, lbp, color, ...) and two other colour grids
FEATURES = {
    **REGISTRY_FEATURES,
    "color4": lambda: ColorFeatures(grid=(4, 4)),
    "color16": lambda: ColorFeatures(grid=(16, 16)),
}
# name -> (task, feature names, options)
VARIANTS = {
    "gender": ("gender", ("hog", "lbp"), {}),
    "gender+sqrt": ("gender", ("hog", "lbp"), {"sqrt_lbp": True}),
    "gender+color": ("gender", ("hog", "lbp", "color"), {}),
    "gender+color4": ("gender", ("hog", "lbp", "color4"), {}),
    "gender+color16": ("gender", ("hog", "lbp", "color16"), {}),
    "age": ("age", ("hog6", "lbp"), {}),
    "age+sqrt": ("age", ("hog6", "lbp"), {"sqrt_lbp": True}),
    "age+log": ("age", ("hog6", "lbp"), {"log_target": True}),
    "age+color": ("age", ("hog6", "lbp", "color"), {}),
    "age+hog8": ("age", ("hog6", "hog", "lbp"), {}),
}


def features(name, gray, rgb):
    """(features of the faces, features of their mirror images), float64."""
    stack = rgb if name.startswith("color") else gray
    extractor = FEATURES[name]()
    return (extractor.transform(stack).astype(np.float64),
            extractor.transform(np.ascontiguousarray(stack[:, :, ::-1])).astype(np.float64))


def score(variant, feats, labels, train, test, seed):
    task, names, options = VARIANTS[variant]
    parts = [feats[n] for n in names]
    if options.get("sqrt_lbp"):
        parts = [(np.sqrt(f), np.sqrt(m)) if n == "lbp" else (f, m) for n, (f, m) in zip(names, parts)]
    faces = np.hstack([f for f, _ in parts])
    mirrors = np.hstack([m for _, m in parts])
    paired, swapped = np.hstack([faces, mirrors]), np.hstack([mirrors, faces])
    tail = make_head("hog+lbp+svm" if task == "gender" else "hog6+lbp+svr", task, random_state=seed)
    tuned = tail.named_steps["model"]
    tuned.estimator.set_params(average_mirror=False)  # test-time flip is scored separately below
    y = labels[task]
    target = y[train]
    if options.get("log_target"):
        tuned.estimator.estimator.set_params(epsilon=0.05)
        tuned.param_grid = {"estimator__C": [0.3, 1.0, 3.0]}
        target = np.log1p(target)
    t = time.perf_counter()
    tail.fit(paired[train], target)
    fit_s = time.perf_counter() - t
    row = {"seed": seed, "variant": variant, "fit_s": round(fit_s, 1), "chosen": str(tuned.best_params_)}
    if task == "gender":
        d1, d2 = tail.decision_function(paired[test]), tail.decision_function(swapped[test])
        row["accuracy"] = round(100 * ((d1 > 0) == y[test]).mean(), 2)
        row["accuracy_flip"] = round(100 * (((d1 + d2) / 2 > 0) == y[test]).mean(), 2)
    else:
        p1, p2 = tail.predict(paired[test]), tail.predict(swapped[test])
        if options.get("log_target"):
            p1, p2 = np.expm1(p1), np.expm1(p2)
        p1, p2 = np.clip(p1, 0, 116), np.clip(p2, 0, 116)
        row["mae"] = round(np.abs(p1 - y[test]).mean(), 3)
        row["mae_flip"] = round(np.abs((p1 + p2) / 2 - y[test]).mean(), 3)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/utkface-5k"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=["gender", "gender+color", "age", "age+color"],
                    choices=list(VARIANTS))
    args = ap.parse_args(argv)
    table = load_dataset(args.data).table
    gray = np.asarray(decode(table, size=64, color="gray"))
    rgb = np.asarray(decode(table, size=64, color="rgb"))
    needed = dict.fromkeys(n for v in args.variants for n in VARIANTS[v][1])
    feats = {name: features(name, gray, rgb) for name in needed}
    labels = {"age": table["age"].to_numpy(float), "gender": table["gender"].to_numpy(int)}
    rows = []
    for seed in args.seeds:
        train, test = (np.asarray(part) for part in make_split(table, seed=seed))
        for variant in args.variants:
            rows.append(score(variant, feats, labels, train, test, seed))
            print(json.dumps(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    main()
