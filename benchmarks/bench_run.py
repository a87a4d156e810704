"""Wall time of a whole benchmark run, and where it goes.

    .venv/bin/python benchmarks/bench_run.py --preset quick [--data ../shared/data/utkface-5k] [--set KEY=VALUE ...]

Runs ``facebench run`` into a fresh temporary run directory (the decode and
feature caches are also fresh unless --warm-cache), then prints the wall time
and, per model, the fit and predict seconds from timings.csv, so a run can be
extrapolated to a larger dataset model by model.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from facebench.compare import load_config, run


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/utkface-5k"))
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--warm-cache", action="store_true", help="reuse the user cache (decode, features)")
    ap.add_argument("--keep", type=Path, default=None, help="copy the run directory here afterwards")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.warm_cache:
            os.environ["FACEBENCH_CACHE"] = str(Path(tmp) / "cache")
        config = load_config(preset=args.preset, data=args.data, out=Path(tmp) / "run", overrides=args.overrides)
        t = time.perf_counter()
        run_dir = run(config, quiet=True, command=f"bench_run --preset {args.preset}")
        wall = time.perf_counter() - t
        timings = pd.read_csv(run_dir / "timings.csv")
        size = (run_dir / "report.html").stat().st_size / 2**20
        if args.keep:
            import shutil

            shutil.copytree(run_dir, args.keep, dirs_exist_ok=True)
    load = os.getloadavg()[0]
    print(f"preset {args.preset} on {args.data}: {wall:.0f} s wall on {os.cpu_count()} cores "
          f"(load average at the end {load:.1f}); report {size:.1f} MB")
    per_model = timings.groupby(["model", "fraction"])[["n_train", "fit_s", "predict_s", "features_s"]].median()
    print(per_model.to_string(float_format=lambda v: f"{v:.1f}"))


if __name__ == "__main__":
    main()
