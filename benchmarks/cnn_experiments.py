"""The experiment behind the ``default`` CNN preset (see benchmarks/RESULTS.md, ## CNN).

Two parts, each bounded so that it runs on a shared 2-core machine:

``speed``  training throughput of candidate architectures on random images
           (benchmarks/bench_cnn.py's timing, many configs in one process);
``train``  train configs on the UTKFace 5k subset (80/20 split stratified by age
           band x gender, seed 0, the split the baselines use) and score them on
           the test part: age MAE, gender accuracy, epochs, s/epoch, total time.
``tta``    score the CNNs a run saved (RUN/models/*.keras) on that run's test faces
           with and without test-time flip (the mean over each face and its mirror).

    python benchmarks/cnn_experiments.py speed
    python benchmarks/cnn_experiments.py train --data ../shared/data/utkface-5k \
        --configs seed128 seed64 D1 D2 D3 D4 D5 --out cnn_5k.json
    python benchmarks/cnn_experiments.py tta RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

# name -> (preset, parameter overrides)
_W32 = {"stem_filters": 32, "filters": (32, 64, 128, 256)}
SPEED_CONFIGS = {
    "seed128": ("seed", {}),
    "seed64": ("seed", {"image_size": 64}),
    "d-2conv-32..256": ("default", _W32),
    "d-2conv-32..256-nojit": ("default", {**_W32, "jit_compile": False}),
    "d-1conv-32..256": ("default", {**_W32, "convs_per_block": 1}),
    "d-2conv-16..128": ("default", {"stem_filters": 16, "filters": (16, 32, 64, 128)}),
    "d-2conv-24..192 (default)": ("default", {}),
    "d-sep-32..256": ("default", {**_W32, "separable": True}),
    "d-1conv-32..256-96px-s3": ("default", {**_W32, "convs_per_block": 1, "image_size": 96, "stem_strides": 3}),
}

_D1 = {"stem_filters": 16, "filters": (16, 32, 64, 128), "bn_momentum": 0.99}
TRAIN_CONFIGS = {
    # the study's model: a few epochs at 128 px (time per epoch and trend), its full
    # 30-epoch protocol at 64 px
    "seed128": ("seed", {"epochs": 3}),
    "seed64": ("seed", {"image_size": 64}),
    # the default's candidates (benchmarks/RESULTS.md, ## CNN); D5 is the preset
    "D1": ("default", _D1),
    "D2": ("default", {"stem_filters": 32, "filters": (32, 64, 128, 256), "convs_per_block": 1,
                       "bn_momentum": 0.99}),
    "D3": ("default", {**_D1, "bn_momentum": 0.9}),
    "D4": ("default", {**_D1, "bn_momentum": 0.9, "color": "rgb"}),
    "D5": ("default", {}),
}


def speed(args):
    from bench_cnn import bench

    names = args.configs or list(SPEED_CONFIGS)
    rows = []
    for name in names:
        preset, over = SPEED_CONFIGS[name]
        r = bench(preset, args.n_train, args.steps, args.warmup, over)
        r["config"] = name
        rows.append(r)
        print(f"{name:<28} {r['input']:>9} {r['params']:>10,} img/s {r['img_per_s']:6.0f}  "
              f"cpu-s/step {r['cpu_s_per_step']:.3f}  cpu-s/epoch(19k-equiv) "
              f"{r['cpu_s_per_step'] * 19000 / r['batch']:.0f}", flush=True)
    return rows


def load_faces(data, size, color, split_seed=0):
    """(images, age, gender, train_idx, test_idx) for the subset: facebench.data if present, else OpenCV."""
    try:
        from facebench.data import decode, load_dataset, make_split

        table = load_dataset(data).table
        images = decode(table, size=size, color=color)
        train_idx, test_idx = make_split(table, seed=split_seed, test_size=0.2)
        return images, table["age"].to_numpy(), table["gender"].to_numpy(), np.asarray(train_idx), np.asarray(test_idx), "facebench.data"
    except ImportError:
        pass
    import cv2
    from sklearn.model_selection import train_test_split

    paths, ages, genders = [], [], []
    for p in sorted(Path(data).glob("*.jpg")):
        fields = p.name.split(".")[0].split("_")
        if len(fields) != 4:
            continue
        paths.append(p)
        ages.append(int(fields[0]))
        genders.append(int(fields[1]))
    flag = cv2.IMREAD_REDUCED_GRAYSCALE_2 if color == "gray" else cv2.IMREAD_REDUCED_COLOR_2
    images = []
    for p in paths:
        im = cv2.imread(str(p), flag)
        im = cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA)
        images.append(im if color == "gray" else im[..., ::-1])
    ages, genders = np.array(ages), np.array(genders)
    bands = np.digitize(ages, [3, 13, 20, 30, 40, 50, 60, 70])
    idx = np.arange(len(paths))
    train_idx, test_idx = train_test_split(idx, test_size=0.2, random_state=split_seed, stratify=bands * 2 + genders)
    return np.stack(images), ages, genders, np.sort(train_idx), np.sort(test_idx), "opencv"


def train(args):
    from facebench import cnn

    results = []
    cache = {}
    for name in args.configs:
        if name in TRAIN_CONFIGS:
            preset, over = TRAIN_CONFIGS[name]
        else:  # ad hoc: PRESET:{"key": value}
            preset, _, js = name.partition(":")
            over = json.loads(js or "{}")
        p = cnn.resolve_params(preset, over)
        key = (p["image_size"], p["color"])
        if key not in cache:
            t = time.perf_counter()
            cache[key] = load_faces(args.data, *key, split_seed=args.split_seed)
            print(f"# decoded {key} with {cache[key][5]} in {time.perf_counter() - t:.1f}s", flush=True)
        images, age, gender, tr, te, _ = cache[key]
        t = time.perf_counter()
        fitted = cnn.fit(preset, images[tr], age[tr], gender[tr], params=over, seed=args.seed, verbose=args.verbose)
        fit_s = time.perf_counter() - t
        pred = fitted.predict(images[te])
        mae = float(np.mean(np.abs(pred["age"] - age[te])))
        acc = float(np.mean(pred["gender"] == gender[te]))
        h = fitted.history
        best = int(np.argmin(h["val_loss"])) if "val_loss" in h else -1
        row = {
            "config": name,
            "split_seed": args.split_seed,
            "precision": fitted.timings.get("precision"),
            "preset": preset,
            "overrides": over,
            "epochs_run": fitted.timings["epochs_run"],
            "s_per_epoch": fitted.timings["s_per_epoch"],
            "fit_s": fit_s,
            "val_mae_best": h.get("val_age_mae", [np.nan])[best],
            "val_acc_best": h.get("val_gender_accuracy", [np.nan])[best],
            "test_mae": mae,
            "test_acc": acc,
            "history": h,
            "params": cnn.train._jsonable(fitted.params),
        }
        results.append(row)
        print(f"{name:<40} epochs {row['epochs_run']:>3}  s/epoch {row['s_per_epoch']:6.1f}  fit {fit_s:7.1f}s  "
              f"val MAE {row['val_mae_best']:.2f} acc {row['val_acc_best']:.3f}  "
              f"TEST MAE {mae:.2f} acc {acc:.3f}", flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=1, default=float))
    return results


def tta(args):
    """Each saved CNN of each run, on its run's test faces: plain vs test-time flip."""
    import pandas as pd

    from facebench.cnn import FittedCNN, load
    from facebench.data import decode

    rows = []
    for run_dir in map(Path, args.runs):
        split = pd.read_csv(run_dir / "split.csv")
        for path in sorted((run_dir / "models").glob("*.keras")):
            trial = int(path.name.split("_")[0][1:])
            test = split[(split.trial == trial) & (split.part == "test")]
            fitted = load(path)
            x = np.asarray(decode(list(test.path), size=fitted.params.get("image_size", 64), color=fitted.params.get("color", "gray")))
            age, gender = test.age.to_numpy(float), test.gender.to_numpy(int)
            scores = {}
            for flip in (False, True):
                pred = FittedCNN(fitted.model, fitted.name, {**fitted.params, "test_time_flip": flip}).predict(x)
                scores[flip] = (np.abs(pred["age"] - age).mean(), ((pred["p_female"] >= 0.5) == gender).mean())
            rows.append((f"{run_dir.name}/{path.stem}", *scores[False], *scores[True]))
            print(f"{rows[-1][0]:<48} MAE {scores[False][0]:.3f} -> {scores[True][0]:.3f}   "
                  f"acc {100 * scores[False][1]:.2f} -> {100 * scores[True][1]:.2f} %", flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--configs", nargs="*", help=f"from {', '.join(SPEED_CONFIGS)}")
    s.add_argument("--n-train", type=int, default=2000)
    s.add_argument("--steps", type=int, default=8)
    s.add_argument("--warmup", type=int, default=2)
    t = sub.add_parser("train")
    t.add_argument("--data", required=True)
    t.add_argument("--configs", nargs="+", required=True,
                   help=f"from {', '.join(TRAIN_CONFIGS)} or PRESET:JSON overrides")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--split-seed", type=int, default=0, help="seed of the 80/20 split (default 0)")
    t.add_argument("--verbose", type=int, default=0)
    t.add_argument("--out", help="write results (with histories) to this JSON file")
    r = sub.add_parser("tta")
    r.add_argument("runs", nargs="+", help="run directories with models/*.keras and split.csv")
    args = ap.parse_args(argv)
    {"speed": speed, "train": train, "tta": tta}[args.cmd](args)


if __name__ == "__main__":
    main()
