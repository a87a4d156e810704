"""The RBF heads' revision 2: fewer PCA power iterations, the first half transformed once; and a
unit fitted by the older head is refitted."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from facebench.baselines import make_head
from facebench.baselines.building import HEAD_REVISION, PCA_POWER_ITERATIONS, head_revision
from facebench.baselines.estimators import CappedPCA, PairedTransform


def _paired(n=90, d=4, seed=0):
    rng = np.random.default_rng(seed)
    first = rng.normal(size=(n, d))
    return np.hstack([first, first[:, ::-1] + 0.01]), (first[:, 0] > 0).astype(int)


def test_paired_transform_fit_transform_is_fit_then_transform_to_the_bit():
    X, _ = _paired(n=120, d=40)
    reduce = Pipeline([("scale", StandardScaler()), ("pca", CappedPCA(8, random_state=0, iterated_power=3))])
    once = PairedTransform(reduce).fit_transform(X.astype(np.float32))
    fitted = PairedTransform(reduce).fit(X.astype(np.float32))
    np.testing.assert_array_equal(once, fitted.transform(X.astype(np.float32)))


def test_capped_pca_passes_its_power_iterations():
    X, _ = _paired(n=200, d=60)
    pca = CappedPCA(5, random_state=0, iterated_power=1).fit(X)
    assert pca.pca_.iterated_power == 1
    assert CappedPCA(5, random_state=0).fit(X).pca_.iterated_power == "auto"


def test_the_rbf_heads_carry_revision_2():
    head = make_head("hog6+lbp+svr", "age", random_state=0)
    assert head.get_params()["reduce__transformer__pca__iterated_power"] == PCA_POWER_ITERATIONS
    assert [head_revision(m) for m in ("hog+svm", "pixels+pca+svm", "hog6+lbp+color+svr")] == [HEAD_REVISION] * 3
    assert [head_revision(m) for m in ("hog+ridge", "hog+linsvm", "dlib128+svm", "dummy", "no-such")] == [None] * 5
    assert isinstance(make_head("dlib128+svm", "gender")[-1].estimator, SVC)  # the pretrained heads are unchanged


def test_unit_definitions_name_the_head_revision():
    from facebench.compare.planning.plan import ModelSpec

    svm = ModelSpec("hog+svm", "classical", "hog+svm", ("gender",), 64, "gray")
    ridge = ModelSpec("hog+ridge", "classical", "hog+ridge", ("age",), 64, "gray")
    assert svm.definition["head"] == HEAD_REVISION
    assert "head" not in ridge.definition  # unchanged heads keep their definitions, and their finished units
