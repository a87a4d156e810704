"""facebench.cnn.register_cnn: a CNN of the user's own, used like a built-in one.

Tiny random arrays at 32 px only; every test runs in a second or two.
"""

import pickle

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from facebench import cnn  # noqa: E402
from facebench.cnn import params as cnn_params  # noqa: E402

# the default recipe, shrunk as tests/test_cnn.py shrinks the presets
TINY_RECIPE = {"image_size": 32, "epochs": 1, "batch_size": 16, "jit_compile": False}


def build_tiny(input_shape, *, filters=4, dropout=0.1, hidden=(8,)):
    """A module-level builder (picklable): one conv, global pooling, the two heads."""
    import keras

    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = keras.layers.Conv2D(filters, 3, activation="relu", name="block1_conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(units, activation="relu", name=f"dense{i}")(x)
    return keras.Model(inputs, {"age": keras.layers.Dense(1, name="age")(x),
                                "gender": keras.layers.Dense(1, activation="sigmoid", name="gender")(x)})


def build_standardised(input_shape, *, filters=4, age_mean=33.0, age_std=20.0):
    """Standardised age head mapped back to years, as build_default does."""
    import keras

    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(filters, 3, activation="relu")(x))
    age = keras.layers.Rescaling(scale=age_std, offset=age_mean, name="age")(keras.layers.Dense(1)(x))
    return keras.Model(inputs, {"age": age, "gender": keras.layers.Dense(1, activation="sigmoid", name="gender")(x)})


def build_one_output(input_shape):
    import keras

    inputs = keras.Input(shape=input_shape)
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, {"age": keras.layers.Dense(1)(x)})


def build_wide_age(input_shape):
    import keras

    inputs = keras.Input(shape=input_shape)
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, {"age": keras.layers.Dense(3)(x), "gender": keras.layers.Dense(1)(x)})


def build_nothing(input_shape):
    return "not a model"


def build_broken(input_shape):
    raise RuntimeError("out of coffee\nsecond line")


@pytest.fixture
def cnn_registry():
    """Undo every register_cnn call of a test."""
    saved = dict(cnn_params._REGISTERED)
    yield
    cnn_params._REGISTERED.clear()
    cnn_params._REGISTERED.update(saved)


def faces(n, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8), rng.integers(1, 90, n), rng.integers(0, 2, n)


def test_a_registered_cnn_is_a_cnn_name_with_its_params_and_its_bases_recipe(cnn_registry):
    assert cnn.register_cnn("tiny", build_tiny, params={"filters": 4, "dropout": 0.1, "hidden": (8,)},
                            summary="one conv") == "tiny"
    assert cnn.cnn_names() == ("seed", "default", "tiny")
    assert cnn.builder_keys("tiny") == ("filters", "dropout", "hidden")
    p = cnn.default_params("tiny")
    base = cnn.default_params("default")
    assert {k: p[k] for k in ("image_size", "epochs", "batch_size", "augment", "test_time_flip")} == \
        {k: base[k] for k in ("image_size", "epochs", "batch_size", "augment", "test_time_flip")}
    assert p["standardize_age"] is False  # no age_mean / age_std to de-standardise with
    assert cnn.default_params("tiny") is not p and "stem_filters" not in p
    d = cnn.describe("tiny")
    assert (d["name"], d["kind"], d["summary"], d["image_size"]) == ("tiny", "cnn", "one conv", 64)
    assert cnn.default_params(cnn.register_cnn("tiny-seed", build_tiny, base="seed"))["epochs"] == 30


def test_resolve_params_takes_its_keys_and_refuses_a_bad_one_in_one_line(cnn_registry):
    cnn.register_cnn("tiny", build_tiny, params={"filters": 4, "dropout": 0.1, "hidden": (8,)})
    p = cnn.resolve_params("tiny", {"filters": 6, "hidden": [4, 4], "epochs": 2})
    assert (p["filters"], p["hidden"], p["epochs"], p["dropout"]) == (6, (4, 4), 2, 0.1)
    with pytest.raises(cnn.ParamError) as excinfo:
        cnn.resolve_params("tiny", {"filtres": 6})
    err = excinfo.value
    assert (err.key, err.unknown, err.suggestion) == ("filtres", True, "filters") and "\n" not in str(err)
    with pytest.raises(cnn.ParamError, match=r"filters='six': expected an integer \(the default is 4\)"):
        cnn.resolve_params("tiny", {"filters": "six"})
    with pytest.raises(ValueError, match="unknown CNN name 'nope'; allowed: seed, default, tiny"):
        cnn.resolve_params("nope")


def test_a_registered_cnn_fits_saves_and_loads_without_its_registration(cnn_registry, tmp_path):
    cnn.register_cnn("tiny", build_tiny, params={"filters": 4, "dropout": 0.1, "hidden": (8,)})
    x, age, gender = faces(24)
    fitted = cnn.fit("tiny", x, age, gender, params={**TINY_RECIPE, "filters": 3}, seed=0)
    assert fitted.name == "tiny" and fitted.timings["epochs_run"] == 1 and "val_age_mae" in fitted.history
    assert fitted.model.get_layer("block1_conv").filters == 3  # the config's value reached the builder
    before = fitted.predict(x)
    assert before["age"].shape == (24,) and set(np.unique(before["gender"])) <= {0, 1}
    written = fitted.save(tmp_path / "t0_f1.0_cnn-tiny")
    del cnn_params._REGISTERED["tiny"]  # as in a fresh process: standard layers need no registration
    loaded = cnn.load(written)
    assert loaded.name == "tiny" and loaded.params == fitted.params
    after = loaded.predict(x)
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])


def test_age_mean_and_std_switch_standardised_age_on(cnn_registry):
    cnn.register_cnn("std", build_standardised, params={"filters": 4, "age_mean": 33.0, "age_std": 20.0})
    assert cnn.default_params("std")["standardize_age"] is True
    x, age, gender = faces(20, seed=1)
    fitted = cnn.fit("std", x, age, gender, params=TINY_RECIPE, seed=0)
    train = np.setdiff1d(np.arange(20), fitted.validation_index)
    assert fitted.params["age_mean"] == round(float(np.mean(age[train])), 4)
    assert fitted.model.get_layer("age").offset == pytest.approx(fitted.params["age_mean"])


def test_build_model_checks_the_outputs_of_every_build(cnn_registry):
    cnn.register_cnn("tiny", build_tiny, params={"filters": 4, "dropout": 0.1, "hidden": (8,)})
    model = cnn.build_model("tiny", (40, 40, 3), **{**cnn.default_params("tiny"), "hidden": ()})
    assert tuple(model.input_shape[1:]) == (40, 40, 3)
    with pytest.raises(ValueError, match="unknown parameter 'units' for CNN 'tiny'"):
        cnn.build_model("tiny", (32, 32), units=3)


@pytest.mark.parametrize("args, kwargs, match", [
    (("default", build_tiny), {}, "'default' is a built-in CNN"),
    (("tiny", build_tiny), {}, "a CNN named 'tiny' is registered already"),
    (("my cnn", build_tiny), {}, "letters, digits"),
    (("x", build_one_output), {}, r"outputs must be a dict with keys 'age' and 'gender', got \['age'\]"),
    (("x", build_wide_age), {}, r"output 'age' has shape \(None, 3\); expected \(N, 1\)"),
    (("x", build_nothing), {}, "returned str, not a keras.Model"),
    (("x", build_broken), {}, "build_broken.*failed: RuntimeError: out of coffee$"),
    (("x", build_tiny), {"params": {"filters": 4, "widht": 2}}, "failed: TypeError: .*widht"),
    (("x", build_tiny), {"params": {"epochs": 3}}, "'epochs' is a training key"),
    (("x", build_tiny), {"params": {"base": "default"}}, "'base' names a variant's base"),
    (("x", build_tiny), {"params": {"filters": {1, 2}}}, "must default to a bool"),
    (("x", build_tiny), {"base": "resnet"}, "base='resnet' must be one of seed, default, tiny"),
    (("x", "build_tiny"), {}, "is not callable"),
])
def test_bad_registrations_are_refused_in_one_line(args, kwargs, match, cnn_registry):
    cnn.register_cnn("tiny", build_tiny)
    with pytest.raises(ValueError, match=match) as excinfo:
        cnn.register_cnn(*args, **kwargs)
    assert "\n" not in str(excinfo.value)
    assert "x" not in cnn.cnn_names()


def test_user_cnns_pickle_and_install_in_a_worker(cnn_registry):
    cnn.register_cnn("tiny", build_tiny, params={"filters": 4, "dropout": 0.1, "hidden": (8,)}, summary="one conv")
    shipped = pickle.loads(pickle.dumps(cnn.user_cnns()))  # the builder travels by reference
    cnn_params._REGISTERED.clear()  # a worker starts with the built-in CNNs only
    assert cnn.cnn_names() == cnn.MODEL_NAMES
    cnn.add_user_cnns(shipped)
    assert cnn.describe("tiny")["summary"] == "one conv" and cnn.default_params("tiny")["filters"] == 4
    assert cnn.build_model("tiny", (32, 32)).output["age"].shape == (None, 1)
    with pytest.raises(ValueError, match="add_user_cnns: 'seed' is a built-in CNN"):
        cnn.add_user_cnns({"seed": shipped["tiny"]})


def test_a_saved_model_with_an_unregistered_layer_class_does_not_load(cnn_registry, tmp_path):
    import keras

    @keras.saving.register_keras_serializable(package="facebench_test")
    class Doubled(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    def build_custom_layer(input_shape):
        inputs = keras.Input(shape=input_shape)
        x = keras.layers.GlobalAveragePooling2D()(Doubled(name="doubled")(inputs))
        return keras.Model(inputs, {"age": keras.layers.Dense(1, name="age")(x),
                                    "gender": keras.layers.Dense(1, activation="sigmoid", name="gender")(x)})

    cnn.register_cnn("custom-layer", build_custom_layer)
    x, age, gender = faces(8)
    written = cnn.fit("custom-layer", x, age, gender, params=TINY_RECIPE).save(tmp_path / "m")
    assert cnn.load(written).model.get_layer("doubled")  # the class is known in this process
    del keras.saving.get_custom_objects()["facebench_test>Doubled"]  # as in a process that never imported it
    with pytest.raises(TypeError, match="Doubled"):
        cnn.load(written)
