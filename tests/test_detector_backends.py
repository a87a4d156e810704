"""The label detector's SVMs under oneDAL (fitted in float32) and libsvm (float64) judge alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from facebench.baselines import svm_backend as sb
from facebench.compare.label_errors.detector import detector_name, predict_out_of_fold
from facebench.compare.planning.config import resolve


def _faces(n=400, d=60, seed=0):
    rng = np.random.default_rng(seed)
    gender = rng.integers(0, 2, n)
    age = rng.integers(1, 90, n)
    features = rng.normal(size=(n, d)).astype(np.float32)
    features[:, 0] += 2.0 * gender
    features[:, 1] += age / 30.0
    table = pd.DataFrame({"image_id": [f"f{i}" for i in range(n)], "path": [f"f{i}.jpg" for i in range(n)],
                          "gender": gender, "age": age})
    return features, table


@pytest.mark.skipif(not sb.available(), reason="scikit-learn-intelex is not installed here")
def test_onedal_in_float32_gives_libsvm_s_out_of_fold_predictions():
    features, table = _faces()
    train, test = np.arange(320), np.arange(320, 400)
    out = {backend: predict_out_of_fold(features, table, train, test, seed=0, svm_backend=backend)
           for backend in ("libsvm", "onedal")}
    for key in ("gender", "gender_test"):
        a, b = out["libsvm"][key], out["onedal"][key]
        assert np.mean(np.sign(a) == np.sign(b)) >= 0.99, key
        np.testing.assert_allclose(a, b, atol=1e-2 * np.abs(a).max())
    for key in ("age", "age_test"):
        np.testing.assert_allclose(out["libsvm"][key], out["onedal"][key], atol=0.05)  # years


def test_the_detector_s_name_says_how_its_svms_were_fitted():
    config = resolve({"preset": "quick", "data": {"path": "x", "label_detector": "hog+lbp+color"}})
    assert detector_name({**config, "svm_backend": "libsvm"}).endswith("5 years)")  # named as before the key
    if sb.available():
        assert detector_name({**config, "svm_backend": "onedal"}).endswith("; SVMs by onedal in float32")


def test_folds_in_parallel_processes_give_the_same_predictions_to_the_bit():
    features, table = _faces(n=300)
    train, test = np.arange(240), np.arange(240, 300)
    backend = "onedal" if sb.available() else "libsvm"
    one, two = (predict_out_of_fold(features, table, train, test, seed=0, svm_backend=backend, n_jobs=n_jobs)
                for n_jobs in (1, 2))
    for key in one:
        np.testing.assert_array_equal(one[key], two[key])
