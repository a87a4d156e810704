"""Biologically inspired features (BIF) and a C / gamma search, scored on several splits of a UTKFace folder.

Every model is a registry pipeline (``feature_step`` + ``make_head``, which is what
``make_model`` fits), or a variant of one: other BIF settings (``BIF_VARIANTS``), or
the RBF head's C tuned together with gamma by successive halving (``--search halving``).
Features are computed once per image and per mirror image (cached in ``--cache``) and
laid out as ``HFlipPairs`` lays them out, so the head sees exactly what ``make_model``
would give it; gray features of RGB models are computed on the gray conversion, as
``OnGray`` does. Every model of a split sees the same training and test faces
(``facebench.data.make_split(seed)``). One JSON line per split and model: test MAE or
accuracy, fit seconds (the head, tuning included; features apart), the chosen
parameters, and the features' milliseconds per image (one pass; flip models take two).

    python benchmarks/bif_experiments.py --data ../shared/data/utkface-5k --seeds 0 1 2 \\
        --models hog6+lbp+svr bif+svr --out bif.jsonl
    python benchmarks/bif_experiments.py --summary bif.jsonl     # the table: mean and each split

Model names: any registry name; a registry name with one feature replaced by a BIF
variant, e.g. ``bif.max+svr`` (see ``BIF_VARIANTS``); add ``@halving`` to tune C and gamma by
``HalvingGridSearchCV`` (3-fold, factor 3, on the training part only) instead of the
registry's C grid. ``vote:A,B[,C]`` is the equal-weight soft vote of those models (each
fitted as above): the mean of their decision values for gender (the sign decides), the
mean of their predicted ages for age; no weight is tuned, so nothing looks at a test face.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import cv2
import numpy as np

from facebench.baselines import make_head, predict_outputs
from facebench.baselines.bif import BIFFeatures, bif_shape
from facebench.baselines.registry import COLOR_FEATURES, FEATURES, HEADS, MODELS
from facebench.data import decode, load_dataset, make_split

#: BIF settings besides the registry's ``bif`` (``.c``: contrast-normalised faces).
BIF_VARIANTS = {
    "bif.c": lambda: BIFFeatures(contrast=True),
    "bif.nooverlap": lambda: BIFFeatures(overlap=False),
    "bif.c.nooverlap": lambda: BIFFeatures(overlap=False, contrast=True),
    "bif.o4": lambda: BIFFeatures(orientations=4),
}
#: One pooling statistic only: the columns of a "both" variant (the same values as pooling="max" / "std").
BIF_SLICES = {"bif.max": ("bif", "max"), "bif.std": ("bif", "std"), "bif.c.max": ("bif.c", "max"),
              "bif.c.std": ("bif.c", "std")}
EXTRACTORS = {**FEATURES, **BIF_VARIANTS}
#: Halving search grids: C, and gamma as multiples of "scale" (1 / (n_features * variance)).
HALVING_C = {"svm": [0.3, 1.0, 3.0, 10.0, 30.0], "svr": [3.0, 10.0, 30.0, 100.0, 300.0]}
HALVING_GAMMA_X = [0.25, 0.5, 1.0, 2.0]


def parse(model):
    """(task, feature names, head, search) of a model name."""
    name, _, search = model.partition("@")
    label, head = name.rsplit("+", 1)
    names = tuple(label.split("+"))
    if name in MODELS:
        names, head = MODELS[name]
    if head not in ("svm", "svr", "ridge", "linsvm") or any(n not in EXTRACTORS and n not in BIF_SLICES for n in names):
        raise SystemExit(f"unknown model {model!r}")
    return HEADS[head][0][0], names, head, search or "grid"


def _reference(head):
    """A registry model with this head, to build the head from."""
    return next(name for name, (_, h) in MODELS.items() if h == head)


def features(name, source, stacks, cache):
    """(faces, mirror images, ms per image of one pass) for one extractor on one source stack."""
    if name in BIF_SLICES:
        base, stat = BIF_SLICES[name]
        faces, mirrors, ms = features(base, source, stacks, cache)
        extractor = EXTRACTORS[base]()
        cells, _ = bif_shape(stacks[source].shape[1:], extractor.n_bands, extractor.orientations, "both", extractor.overlap)
        keep = np.concatenate([np.full(extractor.orientations * r * c, s == stat) for r, c in cells for s in ("max", "std")])
        return faces[:, keep], mirrors[:, keep], ms
    images = stacks[source]
    key = hashlib.sha256(f"{stacks['key']}|{source}|{EXTRACTORS[name]()!r}".encode()).hexdigest()[:20]
    files = [cache / f"{key}.{part}.npy" for part in ("faces", "mirrors")]
    meta = cache / f"{key}.json"
    if all(f.exists() for f in files) and meta.exists():
        return (*(np.load(f, mmap_mode="r") for f in files), json.loads(meta.read_text())["ms_per_image"])
    extractor = EXTRACTORS[name]()
    t = time.perf_counter()
    faces = extractor.transform(images)
    ms = (time.perf_counter() - t) / len(images) * 1e3
    mirrors = extractor.transform(np.ascontiguousarray(images[:, :, ::-1]))
    cache.mkdir(parents=True, exist_ok=True)
    for f, values in zip(files, (faces, mirrors)):
        np.save(f, values)
    meta.write_text(json.dumps({"ms_per_image": ms, "extractor": repr(extractor)}))
    return faces, mirrors, ms


def model_inputs(model, stacks, cache):
    """The ``HFlipPairs`` rows ``[f(x), f(mirror x)]`` of a model (or ``f(x)`` for unflipped heads)."""
    task, names, head, _ = parse(model)
    color = bool(COLOR_FEATURES & set(names))
    parts = [features(n, "rgb" if n in COLOR_FEATURES else ("rgb2gray" if color else "gray"), stacks, cache) for n in names]
    faces = np.hstack([p[0] for p in parts])
    if head in ("svm", "svr"):
        faces = np.hstack([faces, np.hstack([p[1] for p in parts])])
    return faces, sum(p[2] for p in parts)


def halving(tail, task, seed):
    """The head with C and gamma chosen by successive halving on the training part."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV, KFold, StratifiedKFold

    class Search:
        def fit(self, X, y):
            reduce = tail[:-1].fit(X, y)
            Z = reduce.transform(X)
            first = Z[:, : Z.shape[1] // 2]
            scale = 1.0 / (first.shape[1] * first.var())
            augmented = tail.named_steps["model"].estimator
            head = "svm" if task == "gender" else "svr"
            grid = {"estimator__C": HALVING_C[head], "estimator__gamma": [scale * g for g in HALVING_GAMMA_X]}
            cv = (StratifiedKFold if task == "gender" else KFold)(3, shuffle=True, random_state=seed)
            scoring = "accuracy" if task == "gender" else "neg_mean_absolute_error"
            self.search = HalvingGridSearchCV(augmented, grid, factor=3, cv=cv, scoring=scoring, random_state=seed,
                                              n_jobs=1, refit=True).fit(Z, y)
            self.reduce, self.best_params_ = reduce, {k.split("__")[-1]: (round(v / scale, 3) if "gamma" in k else v)
                                                      for k, v in self.search.best_params_.items()}
            self.classes_ = getattr(self.search, "classes_", None)
            return self

        def predict(self, X):
            return self.search.predict(self.reduce.transform(X))

        def decision_function(self, X):
            return self.search.decision_function(self.reduce.transform(X))

    return Search()


def members(model):
    """The models of a ``vote:A,B`` spec (all of one task), or ``[model]``."""
    if not model.startswith("vote:"):
        return [model]
    names = model[len("vote:"):].split(",")
    if len(names) < 2 or len({parse(n)[0] for n in names}) != 1:
        raise SystemExit(f"{model!r}: a vote needs two or more models of one task")
    return names


def vote(model, inputs, labels, train, test, seed):
    """Fit every member of ``vote:A,B``, then score the mean of their test outputs."""
    task = parse(members(model)[0])[0]
    outputs, fit_s, alone = [], 0.0, {}
    for name in members(model):
        row, out = score(name, inputs[name], labels, train, test, seed, outputs=True)
        outputs.append(out)
        fit_s += row["fit_s"]
        alone[name] = row.get("accuracy", row.get("mae"))
    y = labels[task][test]
    mean = np.mean(outputs, axis=0)
    value = ({"accuracy": round(100 * float(((mean > 0).astype(int) == y).mean()), 2)} if task == "gender"
             else {"mae": round(float(np.abs(np.clip(mean, 0, 116) - y).mean()), 3)})
    return {"seed": seed, "model": model, **value, "fit_s": round(fit_s, 1), "chosen": "equal weights",
            "members": alone}


def score(model, X, labels, train, test, seed, outputs=False):
    task, _, head, search = parse(model)
    tail = make_head(model if model in MODELS else _reference(head), task, random_state=seed, n_jobs=1)
    y = labels[task]
    fitted = halving(tail, task, seed) if search == "halving" else tail
    t = time.perf_counter()
    fitted.fit(X[train], y[train])
    fit_s = time.perf_counter() - t
    if search == "halving":
        chosen = fitted.best_params_
    else:
        tuned = tail.named_steps["model"]
        chosen = getattr(tuned, "best_params_", getattr(tuned, "alpha_", None))
        chosen = {k.split("__")[-1]: v for k, v in chosen.items()} if isinstance(chosen, dict) else chosen
    if task == "gender":
        if search == "halving":
            decision = fitted.decision_function(X[test])
        else:
            p = np.clip(predict_outputs(tail, X[test], task)["p_female"], 1e-12, 1 - 1e-12)
            decision = np.log(p / (1 - p))  # the decision value (p_female is its logistic)
        out = decision
        value = {"accuracy": round(100 * float(((decision > 0).astype(int) == y[test]).mean()), 2)}
    else:
        out = np.clip(fitted.predict(X[test]), 0, 116)
        value = {"mae": round(float(np.abs(out - y[test]).mean()), 3)}
    row = {"seed": seed, "model": model, **value, "fit_s": round(fit_s, 1), "chosen": str(chosen)}
    return (row, out) if outputs else row


def summary(rows):
    """Markdown table: per model, each split and the mean; fit seconds; feature ms/image."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    lines = ["| model | metric | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | fit s (mean) | features ms/img |",
             "|---|---|" + "---:|" * (len(seeds) + 3)]
    for model in models:
        mine = {r["seed"]: r for r in rows if r["model"] == model}
        metric = "accuracy" if "accuracy" in next(iter(mine.values())) else "mae"
        values = [mine[s][metric] if s in mine else float("nan") for s in seeds]
        fmt = "{:.2f} %" if metric == "accuracy" else "{:.3f}"
        fit = np.mean([r["fit_s"] for r in mine.values()])
        ms = next(iter(mine.values())).get("features_ms", float("nan"))
        lines.append(f"| {model} | {metric} | " + " | ".join(fmt.format(v) for v in values)
                     + f" | **{fmt.format(np.mean(values))}** | {fit:.1f} | {ms:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/utkface-5k"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=["hog6+lbp+svr", "bif+svr"])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/facebench-bif-features"),
                    help="feature cache (outside the project: the faces' features are derived data)")
    ap.add_argument("--out", type=Path, help="append the JSON lines to this file")
    ap.add_argument("--summary", type=Path, nargs="+", help="print the table of these JSON-lines files and exit")
    args = ap.parse_args(argv)
    if args.summary:
        print(summary([json.loads(line) for f in args.summary for line in f.read_text().splitlines() if line.strip()]))
        return None
    for model in args.models:
        for name in members(model):
            parse(name)
    cv2.setNumThreads(1)
    table = load_dataset(args.data).table
    rgb = np.asarray(decode(table, size=64, color="rgb"))
    stacks = {"gray": np.asarray(decode(table, size=64, color="gray")), "rgb": rgb,
              "rgb2gray": np.stack([cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in rgb]),
              "key": hashlib.sha256("\n".join(table["path"]).encode()).hexdigest()[:16]}
    labels = {"age": table["age"].to_numpy(float), "gender": table["gender"].to_numpy(int)}
    splits = {seed: tuple(np.asarray(p) for p in make_split(table, seed=seed, test_size=0.2)) for seed in args.seeds}
    rows = []
    for model in args.models:
        inputs, ms = {}, 0.0
        for name in members(model):
            X, name_ms = model_inputs(name, stacks, args.cache)
            inputs[name], ms = np.ascontiguousarray(X), ms + name_ms
        for seed, (train, test) in splits.items():
            row = (vote(model, inputs, labels, train, test, seed) if model.startswith("vote:")
                   else score(model, inputs[model], labels, train, test, seed))
            rows.append({**row, "features_ms": round(ms, 2), "n_features": sum(X.shape[1] for X in inputs.values())})
            print(json.dumps(rows[-1]), flush=True)
            if args.out:
                with args.out.open("a") as fh:
                    fh.write(json.dumps(rows[-1]) + "\n")
    return rows


if __name__ == "__main__":
    main()
