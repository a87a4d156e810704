"""PairedTransform transforms the first half once in fit_transform, to the same numbers; CappedPCA's power iterations."""

from __future__ import annotations

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from facebench.baselines import make_head
from facebench.baselines.estimators import CappedPCA, PairedTransform


def _paired(n=120, d=40, seed=0):
    first = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return np.hstack([first, first[:, ::-1] + 0.01])


def test_fit_transform_is_fit_then_transform_to_the_bit():
    X = _paired()
    reduce = Pipeline([("scale", StandardScaler()), ("pca", CappedPCA(8, random_state=0))])
    once = PairedTransform(reduce).fit_transform(X)
    np.testing.assert_array_equal(once, PairedTransform(reduce).fit(X).transform(X))


def test_the_rbf_head_s_reduction_gives_the_same_rows_either_way():
    X = _paired(n=200, d=300)
    head = make_head("hog+svm", "gender", random_state=0)
    reduce = head.named_steps["reduce"]
    np.testing.assert_array_equal(reduce.fit_transform(X), reduce.fit(X).transform(X))


def test_capped_pca_passes_its_power_iterations():
    X = _paired(n=200, d=60)
    assert CappedPCA(5, random_state=0, iterated_power=1).fit(X).pca_.iterated_power == 1
    assert CappedPCA(5, random_state=0).fit(X).pca_.iterated_power == "auto"
