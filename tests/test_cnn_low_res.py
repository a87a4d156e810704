"""facebench.cnn: the first epochs trained on smaller faces (``low_res_epochs``, ``low_res_size``).

Tiny random arrays only (no real faces); a few seconds each.
"""

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from facebench import cnn  # noqa: E402
from facebench.cnn import ParamError  # noqa: E402
from facebench.cnn import train as cnn_train  # noqa: E402
from facebench.compare.planning.plan import cnn_spec  # noqa: E402

TINY = {"image_size": 32, "stem_filters": 8, "filters": (8, 16), "dense_units": 16, "batch_size": 16,
        "jit_compile": False}


def faces(n, size, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8), rng.integers(0, 90, n), rng.integers(0, 2, n)


def test_off_by_default_and_bad_values_are_named():
    assert cnn.default_params("default")["low_res_epochs"] == 0
    assert cnn.default_params("seed")["low_res_epochs"] == 0
    with pytest.raises(ParamError, match=r"low_res_epochs.*epochs - 1 = 2"):
        cnn.resolve_params("default", {"epochs": 3, "low_res_epochs": 3})
    with pytest.raises(ParamError, match=r"low_res_size.*image_size - 1 = 63"):
        cnn.resolve_params("default", {"low_res_epochs": 1, "low_res_size": 64})
    cnn.resolve_params("default", {"image_size": 32})  # the size is checked only when the epochs are on
    with pytest.raises(ParamError, match="low_res_epochs"):
        cnn.resolve_params("default", {"low_res_epochs": 1.5})


def test_early_epochs_train_small_faces_then_the_same_weights_go_on_at_full_size(monkeypatch):
    seen = []  # per fit: input size, weights before, weights after
    keras = cnn_train.keras_module()
    real_fit = keras.Model.fit

    def spy(self, data, *args, **kwargs):
        before = [w.copy() for w in self.get_weights()]
        out = real_fit(self, data, *args, **kwargs)
        seen.append((tuple(self.input_shape[1:3]), before, self.get_weights()))
        return out

    monkeypatch.setattr(keras.Model, "fit", spy)
    x, age, gender = faces(40, 32, seed=3)
    fitted = cnn.fit("default", x, age, gender, params={**TINY, "epochs": 3, "low_res_epochs": 2, "low_res_size": 16},
                     seed=0)
    assert [size for size, _, _ in seen] == [(16, 16), (32, 32)]
    (_, _, small_end), (_, full_start, _) = seen
    assert all(np.array_equal(a, b) for a, b in zip(small_end, full_start))  # the full-size model goes on from there
    assert not all(np.array_equal(a, b) for a, b in zip(seen[0][1], small_end))  # the small faces trained it
    # three epochs in the history and timings, the learning-rate schedule's step count carried over
    assert all(len(v) == 3 for v in fitted.history.values()) and fitted.timings["epochs_run"] == 3
    steps = int(np.ceil(fitted.timings["n_train"] / TINY["batch_size"]))
    assert int(fitted.model.optimizer.iterations.numpy()) == 3 * steps
    assert fitted.model.input_shape[1:3] == (32, 32)
    pred = fitted.predict(x[:5])
    assert pred["age"].shape == (5,) and np.all(np.isfinite(pred["age"]))


def test_a_cnn_whose_weights_depend_on_the_image_size_is_refused():
    x, age, gender = faces(32, 64, seed=5)
    params = {"image_size": 64, "filters": (4, 8, 8, 8), "dense_units": 16, "batch_size": 16, "jit_compile": False,
              "epochs": 2, "low_res_epochs": 1, "low_res_size": 46}
    with pytest.raises(ParamError, match="depend on the image size"):
        cnn.fit("seed", x, age, gender, params=params, seed=0)


def test_off_leaves_a_finished_units_definition_as_it_was():
    spec = cnn_spec({"cnn": {"default": {"epochs": 15}}}, "default")
    on = cnn_spec({"cnn": {"default": {"epochs": 15, "low_res_epochs": 6}}}, "default")
    assert "low_res_epochs" not in spec.definition["params"] and "low_res_size" not in spec.definition["params"]
    assert on.definition["params"]["low_res_epochs"] == 6 and on.definition != spec.definition
