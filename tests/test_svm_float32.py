"""oneDAL fits every RBF head of the registry in float32: the dtype the features have, kept by
each step before the SVM (in float64 the heads fit 1.1-2.0x slower; benchmarks/RESULTS.md)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.svm import SVC, SVR

from facebench.baselines import MODELS, make_head
from facebench.baselines import svm_backend as sb
from facebench.compare import load_config
from facebench.compare.planning.plan import classical_spec
from facebench.compare.running.unit_bodies import fit_classical

pytestmark = pytest.mark.skipif(not sb.available(), reason="scikit-learn-intelex is not installed here")

RBF = [name for name, (_, head) in MODELS.items() if head in ("svm", "svr")]


def _features(n=150, d=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    targets = {"gender": (x[:, 0] + 0.5 * x[:, 1] ** 2 + rng.normal(size=n) > 0.5).astype(np.int64),
               "age": np.clip(30 + 10 * x[:, 2] + 3 * x[:, 3] ** 2 + rng.normal(size=n), 1, 90)}
    return x, targets


def _fitted_svms(obj, seen=None):
    """Every fitted SVC / SVR inside a fitted model (through pipelines, wrappers and their attributes)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, (SVC, SVR)) and hasattr(obj, "support_vectors_"):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [svm for item in obj for svm in _fitted_svms(item, seen)]
    if isinstance(obj, BaseEstimator):
        return [svm for value in vars(obj).values() for svm in _fitted_svms(value, seen)]
    return []


@pytest.mark.parametrize("name", RBF)
def test_every_rbf_head_reaches_onedal_in_float32(name):
    x, targets = _features()
    task = "gender" if MODELS[name][1] == "svm" else "age"
    head = sb.use_backend(make_head(name, task, random_state=0), "onedal")
    head.fit(x, targets[task])
    (svm,) = _fitted_svms(head)
    assert type(svm).__module__.startswith("sklearnex.")
    assert svm.support_vectors_.dtype == np.float32


def test_a_run_s_unit_fits_onedal_in_float32_from_the_feature_cache(tmp_path):
    x, targets = _features()
    np.save(tmp_path / "features.npy", x)
    cached = np.load(tmp_path / "features.npy", mmap_mode="r")  # as a run's unit reads its features
    config = load_config(preset="quick", data=tmp_path, overrides=["svm_backend=onedal"])
    for name, task in (("hog+lbp+svm", "gender"), ("hog6+lbp+svr", "age")):
        spec = classical_spec(config, name, (task,))
        result = fit_classical(spec, cached[:120], {task: targets[task][:120]}, cached[120:], seed=0)
        assert result["backend"] == "onedal"
        (svm,) = _fitted_svms(result["fitted"][task])
        assert svm.support_vectors_.dtype == np.float32


def test_the_check_sees_a_float64_fit():
    """The dtype checked above is the one oneDAL fitted in: float64 input gives float64 vectors."""
    x, targets = _features()
    svm = sb.use_backend(SVC(kernel="rbf", gamma="scale"), "onedal").fit(x.astype(np.float64), targets["gender"])
    assert _fitted_svms(svm)[0].support_vectors_.dtype == np.float64
