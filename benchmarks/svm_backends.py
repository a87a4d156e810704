"""Every RBF model under oneDAL and libsvm side by side, and the classical units' thread layout.

    .venv/bin/python benchmarks/svm_backends.py [--data ../shared/data/utkface-5k] [--trials 3] [--out DIR]

Runs the benchmark (``facebench.compare.run``, classical RBF models only, one fraction,
``--trials`` splits, no label search) three times into ``DIR``:

* ``libsvm``: ``svm_backend = "libsvm"``, two worker processes of one thread each;
* ``onedal``: ``svm_backend = "onedal"``, the same layout;
* ``onedal-1x2``: oneDAL again, one process of two threads (``CLASSICAL_THREADS = 2``,
  ``n_jobs = 1``), the layout the runner does not use.

``--side-by-side`` instead fits each model's head (features computed once) under libsvm
and then oneDAL in one process on split 0, one thread, so that the two are timed under the
same load.

``--old-new`` fits, per model and split (``--seeds``, ``make_split(seed)``), in one process
and one thread, back to back: the head on libsvm (what the commit before oneDAL fitted: the
same head, ``--check-old`` prints the digest of its test outputs to compare with that
commit's), then on oneDAL. ``--pairs`` chooses others as HEAD:LIBRARY, the first the base
of the ratio; HEAD ``pca3`` is the head with 3 power iterations in its randomized PCA
(scikit-learn's default here: 7), measured and not adopted; HEAD ``f64`` is the head with its
PCA's float32 output cast to float64 before the SVM, so that oneDAL fits in float64 (``head``:
the float32 that reaches it today; libsvm converts both to float64). Prints each fit's seconds,
metric and the dtype the SVM was fitted in, then per model the fit ratio of the first pair to
each other and the metrics per split, and writes ``old_new.csv`` into ``--out``.

``--profile MODEL`` fits MODEL's head on split 0 under libsvm and then oneDAL, one thread,
under cProfile, and prints where the seconds go: scaler, PCA fit and transforms, the
tuning's fits and scoring, the final fit, the prediction.

Then prints, per model, accuracy or MAE per split under both libraries, their difference
against the split-to-split spread, fit and predict seconds (median over splits) and the
wall time of each run's classical stage. The feature cache is shared: the first run
computes the features, the others read them. ``--models`` narrows the list.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from facebench.baselines import MODELS

RBF = [name for name, (features, head) in MODELS.items() if head in ("svm", "svr") and not name.startswith("dlib")]


def one_run(data, out, backend, trials, models, threads):
    from facebench.compare import load_config, run
    from facebench.compare.running import unit_bodies

    gender = [m for m in models if MODELS[m][1] == "svm"]
    age = [m for m in models if MODELS[m][1] == "svr"]
    n_jobs = 2 if threads == 1 else 1
    config = load_config(preset="standard", data=data, out=out, overrides=[
        f"models.gender={gender!r}", f"models.age={age!r}", "models.cnn=[]", "fractions=[1.0]",
        f"trials={trials}", "data.label_errors='off'", "bootstrap=0", f"svm_backend='{backend}'", f"n_jobs={n_jobs}"])
    unit_bodies.CLASSICAL_THREADS = threads
    started = time.perf_counter()
    try:
        run(config, quiet=True, force=True, command=f"svm_backends {backend} {threads} thread(s)")
    finally:
        unit_bodies.CLASSICAL_THREADS = 1
    wall = time.perf_counter() - started
    metrics = pd.read_csv(Path(out) / "metrics.csv")
    timings = pd.read_csv(Path(out) / "timings.csv")
    return wall, metrics, timings


def side_by_side(data, models, seed=0):
    """Fit each model's head under libsvm, then oneDAL, in this process on one split: seconds and score."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from facebench.baselines import feature_step, input_color, make_head, predict_outputs
    from facebench.baselines.svm_backend import use_backend
    from facebench.data import decode, load_dataset, make_split

    table = load_dataset(data).table.reset_index(drop=True)
    train, test = make_split(table, seed=seed)
    for model in models:
        task = "gender" if MODELS[model][1] == "svm" else "age"
        images = decode(table, size=64, color=input_color(model) or "gray")
        features = np.asarray(feature_step(model, task).transform(images), dtype=np.float32)
        y = table[task].to_numpy()
        for backend in ("libsvm", "onedal"):
            head = use_backend(make_head(model, task, random_state=seed), backend)
            with threadpool_limits(limits=1):
                t = time.perf_counter()
                head.fit(features[train], y[train])
                fit_s = time.perf_counter() - t
                t = time.perf_counter()
                out = predict_outputs(head, features[test], task)
                predict_s = time.perf_counter() - t
            score = (np.mean(out["gender"] == y[test]) if task == "gender" else np.mean(np.abs(out["age"] - y[test])))
            print(f"{model} {backend}: fit {fit_s:.1f} s, predict {predict_s:.2f} s, "
                  f"{'accuracy' if task == 'gender' else 'MAE'} {score:.4f} (load average {os.getloadavg()[0]:.1f})",
                  flush=True)


def pca3(head):
    """The head with 3 power iterations in its randomized PCA (the variant measured, not adopted)."""
    params = head.get_params(deep=True)
    return head.set_params(**{key: 3 for key in ("reduce__transformer__pca__iterated_power", "pca__iterated_power")
                              if key in params})


def _as_float64(X):
    return np.asarray(X, dtype=np.float64)


def f64(head):
    """The head with float64 reaching its SVM: a cast between the PCA and the tuned SVM (measured, not adopted)."""
    from sklearn.preprocessing import FunctionTransformer

    head.steps.insert(len(head.steps) - 1, ("float64", FunctionTransformer(_as_float64)))
    return head


def svm_dtype(head):
    """The dtype the fitted head's final SVM holds its support vectors in (oneDAL: the dtype it fitted in)."""
    inner = head[-1].estimator_
    inner = getattr(inner, "estimator_", inner)  # HFlipAugmented
    inner = getattr(inner, "regressor_", inner)  # TransformedTargetRegressor
    return str(getattr(inner, "support_vectors_", np.empty(0)).dtype)


def _features(table, model, task):
    from facebench.baselines import feature_step, input_color
    from facebench.data import decode

    images = decode(table, size=64, color=input_color(model) or "gray")
    return np.asarray(feature_step(model, task).transform(images), dtype=np.float32)


def old_new(data, models, seeds, pairs, out):
    """Each model's head under each of ``pairs`` (HEAD:LIBRARY), per split, back to back."""
    from threadpoolctl import threadpool_limits

    from facebench.baselines import make_head, predict_outputs
    from facebench.baselines.svm_backend import use_backend
    from facebench.data import load_dataset, make_split

    for pair in pairs:
        variant, _, backend = pair.partition(":")
        if variant not in ("head", "pca3", "f64") or backend not in ("libsvm", "onedal"):
            raise SystemExit(f"--pairs: {pair!r} is not HEAD:LIBRARY (HEAD: head, pca3 or f64; LIBRARY: libsvm or onedal)")
    table = load_dataset(data).table.reset_index(drop=True)
    rows = []
    for model in models:
        task = "gender" if MODELS[model][1] == "svm" else "age"
        features = _features(table, model, task)
        y = table[task].to_numpy()
        for seed in seeds:
            train, test = make_split(table, seed=seed)
            for pair in pairs:
                variant, backend = pair.split(":")
                head = use_backend(make_head(model, task, random_state=seed), backend)
                if variant == "pca3":
                    head = pca3(head)
                elif variant == "f64":
                    head = f64(head)
                with threadpool_limits(limits=1):
                    t = time.perf_counter()
                    head.fit(features[train], y[train])
                    fit_s = time.perf_counter() - t
                    t = time.perf_counter()
                    outputs = predict_outputs(head, features[test], task)
                    predict_s = time.perf_counter() - t
                score = (np.mean(outputs["gender"] == y[test]) if task == "gender"
                         else np.mean(np.abs(outputs["age"] - y[test])))
                rows.append({"model": model, "seed": seed, "head": pair, "fit_s": fit_s, "predict_s": predict_s,
                             "metric": "accuracy" if task == "gender" else "mae", "value": score,
                             "C": head[-1].best_params_, "svm_dtype": svm_dtype(head), "load": os.getloadavg()[0]})
                print(f"{model} split {seed} {pair}: fit {fit_s:.1f} s, predict {predict_s:.2f} s, {rows[-1]['metric']} "
                      f"{score:.4f}, {rows[-1]['C']}, SVM in {rows[-1]['svm_dtype']} "
                      f"(load average {rows[-1]['load']:.1f})", flush=True)
            pd.DataFrame(rows).to_csv(Path(out) / "old_new.csv", index=False)
    frame = pd.DataFrame(rows)
    base = pairs[0]
    for new in pairs[1:]:
        print(f"\nfit ratio {base} / {new} per split, and the metric per split ({base} | {new}):")
        for model, part in frame.groupby("model", sort=False):
            a = part[part["head"] == base].set_index("seed")
            b = part[part["head"] == new].set_index("seed")
            ratios = a.fit_s / b.fit_s
            print(f"  {model}: fit {' '.join(f'{r:.2f}x' for r in ratios)} (sum {a.fit_s.sum():.1f} s / {b.fit_s.sum():.1f} s = "
                  f"{a.fit_s.sum() / b.fit_s.sum():.2f}x); {a.metric.iloc[0]} "
                  f"{' '.join(f'{v:.4f}' for v in a.value)} | {' '.join(f'{v:.4f}' for v in b.value)}; "
                  f"largest difference {np.max(np.abs(a.value - b.value)):.4f}", flush=True)
    return frame


def check_old(data, model, seed=0):
    """The digest of the head's test decision values (or ages) on libsvm: compare with the older commit's."""
    import hashlib

    from threadpoolctl import threadpool_limits

    from facebench.baselines import make_head
    from facebench.data import load_dataset, make_split

    table = load_dataset(data).table.reset_index(drop=True)
    task = "gender" if MODELS[model][1] == "svm" else "age"
    features = _features(table, model, task)
    train, test = make_split(table, seed=seed)
    head = make_head(model, task, random_state=seed)
    try:
        from facebench.baselines.svm_backend import use_backend
    except ImportError:  # a commit before oneDAL: libsvm only
        pass
    else:
        head = use_backend(head, "libsvm")
    with threadpool_limits(limits=1):
        head.fit(features[train], table[task].to_numpy()[train])
        values = head.decision_function(features[test]) if task == "gender" else head.predict(features[test])
    print(f"{model} split {seed}: digest {hashlib.sha256(np.asarray(values, np.float64).tobytes()).hexdigest()[:16]}")


def profile(data, model, seed=0):
    """Seconds of each step of ``model``'s head under both libraries (cProfile, one thread)."""
    import cProfile
    import pstats

    from threadpoolctl import threadpool_limits

    from facebench.baselines import make_head, predict_outputs
    from facebench.baselines.svm_backend import use_backend
    from facebench.data import load_dataset, make_split

    table = load_dataset(data).table.reset_index(drop=True)
    task = "gender" if MODELS[model][1] == "svm" else "age"
    features = _features(table, model, task)
    y = table[task].to_numpy()
    train, test = make_split(table, seed=seed)
    for backend in ("libsvm", "onedal"):
        head = use_backend(make_head(model, task, random_state=seed), backend)
        profiler = cProfile.Profile()
        with threadpool_limits(limits=1):
            t = time.perf_counter()
            profiler.runcall(head.fit, features[train], y[train])
            fit_s = time.perf_counter() - t
            t = time.perf_counter()
            profiler.runcall(predict_outputs, head, features[test], task)
            predict_s = time.perf_counter() - t
        print(f"\n{model} {backend}: fit {fit_s:.1f} s, predict {predict_s:.2f} s "
              f"(load average {os.getloadavg()[0]:.1f}); cumulative seconds of the steps:", flush=True)
        # scaler fit, PCA fit / transform, the search (tuning fits and their scoring), every SVM fit, predictions
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(
            r"_data.py:\d+\(fit\)|_pca.py:\d+\((fit|transform)\)|_search.py:\d+\(fit\)|_validation.py:\d+\(_score\)"
            r"|estimators.py:\d+\((fit|fit_transform|transform|predict|decision_function)\)|svm/_base.py:\d+\(fit\)"
            r"|svm/svm.py:\d+\(fit\)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/utkface-5k"))
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--models", nargs="*", default=RBF)
    ap.add_argument("--out", type=Path, default=Path("runs/svm-backends"))
    ap.add_argument("--no-layout", action="store_true", help="skip the one-process, two-thread run")
    ap.add_argument("--side-by-side", action="store_true",
                    help="only fit each model's head under libsvm then oneDAL in one process, on split 0")
    ap.add_argument("--old-new", action="store_true",
                    help="each head on libsvm, then on oneDAL, per model and split, back to back")
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--pairs", nargs="*", default=["head:libsvm", "head:onedal"],
                    help="HEAD:LIBRARY pairs --old-new fits (HEAD: head, pca3 or f64), base of the ratios first (default: %(default)s)")
    ap.add_argument("--profile", metavar="MODEL", help="where MODEL's head spends its seconds under each library")
    ap.add_argument("--check-old", metavar="MODEL", help="print the digest of MODEL's head's test outputs on libsvm (split 0)")
    args = ap.parse_args()
    if args.check_old:
        check_old(args.data, args.check_old)
        return
    if args.profile:
        profile(args.data, args.profile)
        return
    if args.side_by_side:
        side_by_side(args.data, args.models)
        return
    if args.old_new:
        args.out.mkdir(parents=True, exist_ok=True)
        old_new(args.data, args.models, args.seeds, args.pairs, args.out)
        return
    plans = [("libsvm", 1), ("onedal", 1)] + ([] if args.no_layout else [("onedal", 2)])
    results = {}
    for backend, threads in plans:
        name = backend if threads == 1 else f"{backend}-1x{threads}"
        results[name] = one_run(args.data, args.out / name, backend, args.trials, args.models, threads)
        print(f"{name}: {results[name][0]:.0f} s wall (load average {os.getloadavg()[0]:.1f})", flush=True)

    rows = []
    for model in args.models:
        metric = "accuracy" if MODELS[model][1] == "svm" else "mae"
        row = {"model": model, "metric": metric}
        values = {}
        for name in ("libsvm", "onedal"):
            m = results[name][1]
            v = m[(m.model == model) & (m.group == "all") & (m.metric == metric)].sort_values("trial")["value"]
            values[name] = v.to_numpy()
            t = results[name][2]
            t = t[t.model == model]
            row[f"{name} per split"] = " ".join(f"{x:.4f}" for x in v)
            row[f"{name} fit s"] = t.fit_s.median()
            row[f"{name} predict s"] = t.predict_s.median()
        diff = values["onedal"] - values["libsvm"]
        row["mean diff"] = diff.mean()
        row["max |diff|"] = abs(diff).max()
        row["split spread (libsvm sd)"] = values["libsvm"].std(ddof=1) if len(values["libsvm"]) > 1 else float("nan")
        row["fit speed-up"] = row["libsvm fit s"] / row["onedal fit s"]
        rows.append(row)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    for name, (wall, _, timings) in results.items():
        print(f"{name}: classical run {wall:.0f} s wall; sum of fit {timings.fit_s.sum():.0f} s, "
              f"predict {timings.predict_s.sum():.0f} s over {len(timings)} units")
    table.to_csv(args.out / "svm_backends.csv", index=False)


if __name__ == "__main__":
    main()
