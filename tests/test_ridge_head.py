"""The ridge head's leave-one-out runs through one SVD: the same alpha and predictions as scikit-learn's default."""

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from facebench.baselines import make_head
from facebench.baselines.registry import RIDGE_ALPHAS


def test_ridge_head_chooses_and_predicts_as_the_default_leave_one_out():
    rng = np.random.default_rng(0)
    n, p = 400, 120  # more rows than features: where scikit-learn's default eigendecomposes the covariance
    w = rng.normal(size=p)
    X = rng.normal(size=(n, p)).astype(np.float32)
    y = 40 + X @ w * 3 + rng.normal(scale=8, size=n)
    head = make_head("hog+ridge", "age").fit(X[:300], y[:300])
    reference = make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_ALPHAS)).fit(X[:300], y[:300])
    assert head[-1].gcv_mode == "svd"
    assert head[-1].alpha_ == reference[-1].alpha_
    assert RIDGE_ALPHAS[0] < head[-1].alpha_ < RIDGE_ALPHAS[-1]  # an inner alpha: the choice was a real one
    np.testing.assert_allclose(head.predict(X[300:]), reference.predict(X[300:]), rtol=1e-9, atol=1e-9)
