"""How oneDAL's RBF solver gains on libsvm's as the rows grow: one SVC and one SVR fit per size.

    .venv/bin/python benchmarks/svm_solver_scaling.py [--data ../shared/data/utkface-5k] [--sizes 1000 2000 4000 7954]

The features are those of ``hog6+lbp`` (the SVR heads') on split 0's 3,977 training faces and
their mirror images (7,954 rows), scaled and reduced by PCA to 256 numbers as the heads do,
float32 as the heads give them. For each size, the first rows (faces, then mirrors) are
fitted once by scikit-learn's libsvm and once by scikit-learn-intelex's oneDAL, back to back, one
thread, with the heads' settings (SVC C=3; SVR C=30, epsilon=1, on the age; gamma "scale";
the heads' kernel cache). Prints the seconds, the ratio and how far the two libraries' outputs on
the test faces are apart. The RBF heads' own fit (tuning included) is measured by
``svm_backends.py --old-new``; this isolates the solver.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/utkface-5k"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000, 7954])
    args = ap.parse_args()

    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, SVR
    from sklearnex.svm import SVC as OneDALSVC
    from sklearnex.svm import SVR as OneDALSVR
    from threadpoolctl import threadpool_limits

    from facebench.baselines import feature_step
    from facebench.baselines.building import svm_cache_mb
    from facebench.data import decode, load_dataset, make_split

    table = load_dataset(args.data).table.reset_index(drop=True)
    stacked = np.asarray(feature_step("hog6+lbp+svr", "age").transform(decode(table, size=64, color="gray")),
                         dtype=np.float32)  # [f(x), f(mirror x)] per face
    half = stacked.shape[1] // 2
    train, test = make_split(table, seed=0)
    scale = StandardScaler().fit(stacked[train, :half])
    pca = PCA(256, svd_solver="randomized", random_state=0).fit(scale.transform(stacked[train, :half]))

    def reduce(rows):
        return pca.transform(scale.transform(rows)).astype(np.float32)

    X = np.vstack([reduce(stacked[train, :half]), reduce(stacked[train, half:])])
    targets = {"gender": np.tile(table["gender"].to_numpy()[train], 2),
               "age": np.tile(table["age"].to_numpy()[train], 2).astype(float)}
    X_test = reduce(stacked[test, :half])
    cache = svm_cache_mb()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?") if Path("/proc/cpuinfo").exists() else "?"
    print(f"{len(train)} training faces, {X.shape[0]} rows with the mirrors; {cpu}; load average {os.getloadavg()[0]:.1f}")
    print("model  rows    libsvm    oneDAL   ratio   largest output difference on the test faces")
    for kind, plain, onedal, params, task in (
            ("SVC", SVC, OneDALSVC, {"C": 3.0}, "gender"),
            ("SVR", SVR, OneDALSVR, {"C": 30.0, "epsilon": 1.0}, "age")):
        for n in args.sizes:
            n = min(n, len(X))
            seconds, outputs = [], []
            for cls in (plain, onedal):
                model = cls(kernel="rbf", gamma="scale", cache_size=cache, **params)
                with threadpool_limits(limits=1):
                    start = time.perf_counter()
                    model.fit(X[:n], targets[task][:n])
                    seconds.append(time.perf_counter() - start)
                outputs.append(model.decision_function(X_test) if kind == "SVC" else model.predict(X_test))
            gap = float(np.max(np.abs(outputs[0] - outputs[1])))
            print(f"{kind}  {n:6d}  {seconds[0]:7.2f} s {seconds[1]:7.2f} s  {seconds[0] / seconds[1]:5.2f}x  {gap:.2e}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
