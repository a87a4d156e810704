"""The effect of keeping near-duplicate photos on one side of the split: every classical model, old and new split.

Runs the ``standard`` preset's classical models (no CNN, no label-error search, the whole
training part) twice on the same data and seeds: once with the split drawn as before
(``data.near_duplicate_bits = -1``: near-duplicates not looked for) and once grouped (the
default), then prints one markdown table of the metrics side by side (median over the
trials, each trial in brackets) and how many test faces had a near-duplicate among the
training faces in the old split.

    python benchmarks/split_leakage.py --data ../shared/data/utkface-5k --trials 3 --out /tmp/split-leakage
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from facebench.compare import run
from facebench.data import find_near_duplicates, load_dataset

METRICS = (("gender", "accuracy", "{:.3f}"), ("gender", "roc_auc", "{:.3f}"), ("age", "mae", "{:.2f}"))


def run_once(data: str, out: Path, trials: int, bits: int, n_jobs: int) -> tuple[Path, float]:
    started = time.perf_counter()
    config = {"preset": "standard", "trials": trials, "fractions": [1.0], "n_jobs": n_jobs, "out": str(out),
              "data": {"path": data, "label_errors": "off", "near_duplicate_bits": bits}, "models": {"cnn": []}}
    return run(config, quiet=True), time.perf_counter() - started


def twins_in_test(data: str, run_dir: Path) -> list[int]:
    """Per trial of ``run_dir``: test faces whose near-duplicate group has a face in the training part."""
    table = find_near_duplicates(load_dataset(data)).table.set_index("image_id")["near_group"]
    split = pd.read_csv(run_dir / "split.csv")
    out = []
    for _, rows in split.groupby("trial"):
        groups = rows["image_id"].map(table)
        train = set(groups[rows["part"] == "train"])
        out.append(int(groups[rows["part"] == "test"].isin(train).sum()))
    return out


def twin_faces(data: str, run_dir: Path) -> pd.DataFrame:
    """``(trial, image_id)`` of the test faces with a near-duplicate among the training faces."""
    groups = find_near_duplicates(load_dataset(data)).table.set_index("image_id")["near_group"]
    split = pd.read_csv(run_dir / "split.csv")
    rows = []
    for trial, part in split.groupby("trial"):
        g = part["image_id"].map(groups)
        train = set(g[part["part"] == "train"])
        test = part[(part["part"] == "test") & g.isin(train)]
        rows += [{"trial": trial, "image_id": i} for i in test["image_id"]]
    return pd.DataFrame(rows, columns=["trial", "image_id"])


def on_twins(data: str, old: Path) -> pd.DataFrame:
    """On the old split, each model's accuracy and MAE on the test faces with a training twin and on the rest
    (the same models, the same predictions: what the twins alone do to the figures)."""
    twins = twin_faces(data, old)
    pred = pd.read_csv(old / "predictions.csv.gz")
    pred["twin"] = pd.MultiIndex.from_frame(pred[["trial", "image_id"]]).isin(
        pd.MultiIndex.from_frame(twins)) if len(twins) else False
    rows = []
    for model, p in pred.groupby("model"):
        row = {"model": model, "twin test faces": int(p["twin"].sum())}
        for name, part in (("twins", p[p["twin"]]), ("the rest", p[~p["twin"]]), ("all", p)):
            if p["gender_pred"].notna().any():
                row[f"gender accuracy, {name}"] = f"{(part['gender_pred'] == part['gender']).mean():.3f}"
            if p["age_pred"].notna().any():
                row[f"age MAE, {name}"] = f"{(part['age_pred'] - part['age']).abs().mean():.2f}"
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def side_by_side(old: Path, new: Path) -> pd.DataFrame:
    frames = {name: pd.read_csv(d / "metrics.csv") for name, d in (("old", old), ("grouped", new))}
    rows = []
    for task, metric, fmt in METRICS:
        for model in sorted(set(frames["old"]["model"])):
            cells = {}
            for name, m in frames.items():
                v = m[(m.model == model) & (m.task == task) & (m.group == "all") & (m.metric == metric)]
                cells[name] = v.sort_values("trial")["value"].to_numpy()
            if not len(cells["old"]):
                continue
            show = {k: f"{fmt.format(np.median(v))} [{', '.join(fmt.format(x) for x in v)}]" for k, v in cells.items()}
            diff = np.median(cells["grouped"] - cells["old"])
            rows.append({"model": model, "metric": f"{task} {metric}", "old split": show["old"],
                         "grouped split": show["grouped"], "grouped - old (median)": f"{diff:+.3f}"})
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a markdown table (for benchmarks/RESULTS.md)."""
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--out", default="/tmp/split-leakage")
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args(argv)
    out = Path(args.out)
    old, old_s = run_once(args.data, out / "old", args.trials, -1, args.n_jobs)
    new, new_s = run_once(args.data, out / "grouped", args.trials, 2, args.n_jobs)
    table = side_by_side(old, new)
    print(markdown(table))
    info = json.loads((new / "run.json").read_text())
    print(f"\ntest faces with a near-duplicate among the training faces, per trial: old split "
          f"{twins_in_test(args.data, old)}, grouped split {twins_in_test(args.data, new)} "
          f"(run.json: {info['split']['straddling_groups']} straddling groups)")
    print("\nOn the old split, the same predictions on the test faces with a training twin and on the rest "
          "(pooled over the trials):")
    print(markdown(on_twins(args.data, old)))
    print(f"seconds: old {old_s:.0f}, grouped {new_s:.0f} (a second run of this script reuses both run directories)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
