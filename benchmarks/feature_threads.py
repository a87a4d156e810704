"""A run's feature stage on one thread against the run's threads, each with a fresh cache.

    .venv/bin/python benchmarks/feature_threads.py [--data ../shared/data/utkface-5k] [--n-jobs 1 2 1 2]

Computes the features of the ``standard`` preset's hand-crafted models
(``facebench.compare.running.unit_bodies.prepare_features``, what a run does before its
units) once per ``--n-jobs`` value, in this process, each time into a new empty cache
directory, so that every pass decodes and extracts everything. Prints wall and CPU seconds
and checks that every pass wrote the same features.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data/utkface-5k")
    ap.add_argument("--n-jobs", type=int, nargs="+", default=[1, 2, 1, 2])
    args = ap.parse_args()

    from facebench.compare import load_config
    from facebench.compare.planning.plan import model_specs
    from facebench.compare.running.unit_bodies import prepare_features
    from facebench.data import load_dataset

    config = load_config(preset="standard", data=args.data, out=tempfile.mkdtemp())
    table = load_dataset(args.data).table.reset_index(drop=True)
    specs = [s for s in model_specs(config).values() if s.kind == "classical" and not s.name.startswith("dlib")]
    first = None
    for n_jobs in args.n_jobs:
        os.environ["FACEBENCH_CACHE"] = tempfile.mkdtemp(prefix="facebench-cache-")
        cpu, t = os.times(), time.perf_counter()
        files = prepare_features(table, specs, {"n_jobs": n_jobs, "dask": ""})
        wall, cpu2 = time.perf_counter() - t, os.times()
        features = {name: np.load(info["file"]) for name, info in files.items()}
        first = first or features
        same = all(np.array_equal(features[name], first[name]) for name in features)
        print(f"n_jobs {n_jobs}: {wall:.1f} s wall, {cpu2.user - cpu.user + cpu2.system - cpu.system:.1f} s CPU, "
              f"{len(specs)} models, {len(table)} faces, the same features as the first pass: {same} "
              f"(load average {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
