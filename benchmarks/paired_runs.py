"""Two models from two run directories, compared trial by trial on the same test faces.

A lever tried on a CNN (fewer epochs, smaller faces early, ...) is a variant run on the
splits of an earlier run (its ``split.csv`` given back as the manifest, so the training and
test faces are the same); this prints, per trial, each model's accuracy, ROC-AUC and MAE,
the paired tests of facebench's own statistics (exact McNemar for gender, Wilcoxon with a
bootstrap interval for the age errors) and the fit seconds from each run's ``timings.csv``.

    python benchmarks/paired_runs.py /work/exp/levers cnn-default /work/exp/lr32 cnn-lr32
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from facebench.compare.stats import metrics as fm


def predictions(run_dir: Path, model: str) -> pd.DataFrame:
    pred = pd.read_csv(run_dir / "predictions.csv.gz")
    pred = pred[(pred["model"] == model) & (pred["fraction"] == pred["fraction"].max())]
    if pred.empty:
        sys.exit(f"{run_dir}: no test predictions of {model!r} at the largest fraction")
    # a run on a manifest names its faces by path: the file name is what both runs share
    pred = pred.assign(face=pred["path"].map(lambda path: Path(path).name))
    return pred.set_index(["trial", "face"]).sort_index()


def fit_seconds(run_dir: Path, model: str) -> pd.Series:
    timings = pd.read_csv(run_dir / "timings.csv")
    timings = timings[timings["model"] == model]
    return timings.groupby("trial")["fit_s"].sum()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_a", type=Path)
    ap.add_argument("model_a")
    ap.add_argument("run_b", type=Path)
    ap.add_argument("model_b")
    args = ap.parse_args(argv)
    a, b = predictions(args.run_a, args.model_a), predictions(args.run_b, args.model_b)
    if not a.index.equals(b.index):
        sys.exit("the two runs' test faces differ: run the second on the first's split.csv as its manifest")
    fit_a, fit_b = fit_seconds(args.run_a, args.model_a), fit_seconds(args.run_b, args.model_b)
    print(f"| trial | accuracy a / b | ROC-AUC a / b | MAE a / b | gender: McNemar p | age: Wilcoxon p, MAE(a) - MAE(b) [95 % CI] "
          f"| fit s a / b |\n|---|---|---|---|---|---|---|")
    for trial in a.index.get_level_values("trial").unique():
        pa, pb = a.loc[trial], b.loc[trial]
        ga = fm.gender_metrics(pa["gender"], pa["gender_pred"], pa["p_female"])
        gb = fm.gender_metrics(pb["gender"], pb["gender_pred"], pb["p_female"])
        aa, ab = fm.age_metrics(pa["age"], pa["age_pred"]), fm.age_metrics(pb["age"], pb["age_pred"])
        mc = fm.mcnemar(pa["gender_pred"].to_numpy() == pa["gender"].to_numpy(),
                        pb["gender_pred"].to_numpy() == pb["gender"].to_numpy())
        age = fm.paired_age_test(np.abs(pa["age_pred"] - pa["age"]).to_numpy(), np.abs(pb["age_pred"] - pb["age"]).to_numpy())
        print(f"| {trial} | {ga['accuracy']:.4f} / {gb['accuracy']:.4f} | {ga['roc_auc']:.4f} / {gb['roc_auc']:.4f} "
              f"| {aa['mae']:.3f} / {ab['mae']:.3f} | {mc['p_value']:.3g} | {age['p_value']:.3g}, {age['effect']:+.3f} "
              f"[{age['effect_ci_low']:+.3f}, {age['effect_ci_high']:+.3f}] "
              f"| {fit_a.get(trial, float('nan')):.0f} / {fit_b.get(trial, float('nan')):.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
