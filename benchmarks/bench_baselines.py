"""Accuracy, MAE and fit/predict times of the classical models on real faces.

Loads a UTKFace folder (default: the 5k subset at ``../shared/data/utkface-5k``
or ``$FACEBENCH_UTKFACE``), decodes 64x64 grayscale, splits 80/20 stratified
by age band x gender (``facebench.data.make_split``, seed 0), computes each
distinct feature step once for all images (as the compare module does), then
fits every model's ``model[1:]`` on the training part and scores the test part.

    python benchmarks/bench_baselines.py                          # every registry model
    python benchmarks/bench_baselines.py --models hog+lbp+svm hog+lbp+svr --n-jobs 2
    python benchmarks/bench_baselines.py --hog-backend skimage --models hog+svm

Fit times include the hyperparameter search. Times are wall-clock seconds on
whatever else the machine is doing; the printout says how many CPUs there are.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from facebench.baselines import feature_step, input_color, list_models, make_head, predict_outputs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get("FACEBENCH_UTKFACE") or Path(__file__).resolve().parents[2] / "shared" / "data" / "utkface-5k"
    parser.add_argument("--data", default=str(default_data), help="UTKFace folder (default: %(default)s)")
    parser.add_argument("--models", nargs="*", help="registry names (default: all, both tasks)")
    parser.add_argument("--seed", type=int, default=0, help="split and model seed (default: %(default)s)")
    parser.add_argument("--n-jobs", type=int, default=1, help="parallel fits in the searches (default: %(default)s)")
    parser.add_argument("--hog-backend", choices=["opencv", "skimage"], default="opencv", help="HOG backend (default: %(default)s)")
    args = parser.parse_args(argv)

    from facebench.data import decode, load_dataset, make_split

    dataset = load_dataset(args.data)
    table = dataset.table
    start = time.perf_counter()
    images = {"gray": np.ascontiguousarray(decode(dataset, size=64, color="gray"))}
    decode_s = time.perf_counter() - start
    train, test = make_split(table, seed=args.seed)
    labels = {"age": table["age"].to_numpy(), "gender": table["gender"].to_numpy()}
    print(
        f"{len(table):,} faces from {args.data} (decoded in {decode_s:.1f} s); train {len(train):,}, test {len(test):,}; "
        f"seed {args.seed}; cpus {os.cpu_count()}; n_jobs {args.n_jobs}; HOG backend {args.hog_backend}\n"
    )

    units = [(name, task) for task in ("gender", "age") for name in list_models(task) if not args.models or name in args.models]
    features_cache = {}
    print(f"{'model':18s} {'task':6s} {'score':>22s} {'features s':>10s} {'fit s':>7s} {'predict s':>9s}  chosen")
    for name, task in units:
        features = feature_step(name, task)
        for key in [k for k in features.get_params() if k.endswith("backend")]:
            features.set_params(**{key: args.hog_backend})
        color = input_color(name) or "gray"  # colour models take RGB stacks
        if color not in images:
            images[color] = np.ascontiguousarray(decode(dataset, size=64, color=color))
        key = f"{color}|{features!r}"
        if key not in features_cache:
            start = time.perf_counter()
            features_cache[key] = (features.transform(images[color]), time.perf_counter() - start)
        F, features_s = features_cache[key]
        y = labels[task]
        start = time.perf_counter()
        tail = make_head(name, task, random_state=args.seed, n_jobs=args.n_jobs).fit(F[train], y[train])
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        out = predict_outputs(tail, F[test], task)
        predict_s = time.perf_counter() - start
        if task == "gender":
            score = f"acc {np.mean(out['gender'] == y[test]) * 100:5.2f}% AUC {roc_auc_score(y[test], out['p_female']):.3f}"
        else:
            score = f"MAE {np.mean(np.abs(out['age'] - y[test])):6.2f}"
        last = tail.steps[-1][1]
        chosen = getattr(last, "best_params_", None) or ({"alpha": last.alpha_} if hasattr(last, "alpha_") else "")
        print(f"{name:18s} {task:6s} {score:>22s} {features_s:10.1f} {fit_s:7.1f} {predict_s:9.1f}  {chosen}", flush=True)


if __name__ == "__main__":
    main()
