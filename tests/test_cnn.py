"""facebench.cnn: builders, the tf.data pipeline, training, prediction, save/load.

Tiny random arrays only (no real faces); every test runs in seconds.
"""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from facebench import cnn  # noqa: E402
from facebench.cnn import precision as cnn_precision  # noqa: E402
from facebench.cnn import recipe as cnn_recipe  # noqa: E402
from facebench.cnn import train as cnn_train  # noqa: E402

# A small version of each preset, so one epoch on a few images takes a second or two.
TINY = {
    "default": {
        "image_size": 32,
        "stem_filters": 8,
        "filters": (8, 16),
        "dense_units": 16,
        "epochs": 1,
        "batch_size": 16,
        "jit_compile": False,
    },
    "seed": {
        "image_size": 48,  # the smallest square input the four 'valid' conv blocks accept is 46
        "filters": (4, 8, 8, 8),
        "dense_units": 16,
        "epochs": 1,
        "batch_size": 16,
        "jit_compile": False,
    },
}
HISTORY_KEYS = {
    "loss",
    "age_loss",
    "age_mae",
    "gender_loss",
    "gender_accuracy",
    "val_loss",
    "val_age_loss",
    "val_age_mae",
    "val_gender_loss",
    "val_gender_accuracy",
}


def faces(n, size, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n, size, size) if channels == 1 else (n, size, size, channels)
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    return x, rng.integers(0, 90, n), rng.integers(0, 2, n)


# --- builders ------------------------------------------------------------------------


@pytest.mark.parametrize("name", cnn.MODEL_NAMES)
@pytest.mark.parametrize("channels", [1, 3])
def test_build_each_architecture_on_tiny_inputs(name, channels):
    size = TINY[name]["image_size"]
    model = cnn.build_model(name, (size, size, channels), **TINY[name])
    assert set(model.output_names) == {"age", "gender"} or set(model.output) == {"age", "gender"}
    x = np.zeros((3, size, size, channels), dtype=np.uint8)
    out = model(x.astype("float32"), training=False)
    assert set(out) == {"age", "gender"}
    assert tuple(out["age"].shape) == (3, 1) and tuple(out["gender"].shape) == (3, 1)
    assert model.layers[1].name == "rescale"  # scaling to [0, 1] lives in the model


def test_seed_has_the_studys_parameter_count():
    assert cnn.build_model("seed", (128, 128, 1)).count_params() == 2_813_698
    assert cnn.build_model("seed", (128, 128)).count_params() == 2_813_698  # (H, W) means one channel


def test_default_params_hold_the_whole_recipe_and_are_copies():
    for name in cnn.MODEL_NAMES:
        p = cnn.default_params(name)
        for key in ("image_size", "color", "epochs", "batch_size", "learning_rate", "optimizer",
                    "validation_split", "patience", "augment", "loss_weights", "filters", "dropout"):
            assert key in p, (name, key)
        p["filters"] = (1,)
        assert cnn.default_params(name)["filters"] != (1,)
    seed = cnn.default_params("seed")
    assert (seed["image_size"], seed["color"], seed["epochs"], seed["batch_size"]) == (128, "gray", 30, 32)
    assert (seed["optimizer"], seed["learning_rate"], seed["validation_split"]) == ("adam", 1e-3, 0.2)
    assert seed["patience"] is None and not seed["augment"]
    assert cnn.resolve_params("default", {"patience": "none", "lr_schedule": "None"})["patience"] is None
    # build_model accepts a whole default_params dict (training keys are ignored)
    cnn.build_model("default", (32, 32, 1), **{**cnn.default_params("default"), **TINY["default"]})


@pytest.mark.parametrize(
    "call, bad",
    [
        (lambda: cnn.build_model("vgg16", (64, 64, 1)), "vgg16"),
        (lambda: cnn.default_params("resnet"), "resnet"),
        (lambda: cnn.fit("alexnet", *faces(4, 32)), "alexnet"),
        (lambda: cnn.build_model("default", (64, 64, 1), fliters=(8,)), "fliters"),
        (lambda: cnn.build_model("default", (64, 64, 1), filters="abc"), "filters='abc'"),
        (lambda: cnn.build_model("default", (64, 64, 1), dropout=1.5), "dropout=1.5"),
        (lambda: cnn.build_model("seed", (64, 64, 1), padding="full"), "padding='full'"),
        (lambda: cnn.build_model("seed", (32, 32, 1)), "input_shape=(32, 32, 1)"),
        (lambda: cnn.build_model("default", (32, 32, 2)), "input_shape=(32, 32, 2)"),
        (lambda: cnn.resolve_params("default", {"optimizer": "adagrad"}), "adagrad"),
        (lambda: cnn.resolve_params("default", {"lr_schedule": "step"}), "step"),
        (lambda: cnn.resolve_params("default", {"batch_size": 0}), "batch_size=0"),
        (lambda: cnn.resolve_params("default", {"augment": {"blur": 1}}), "blur"),
        (lambda: cnn.resolve_params("seed", {"color": "hsv"}), "hsv"),
        (lambda: cnn.resolve_params("seed", {"validation_split": 0.0, "patience": 3}), "validation_split"),
        (lambda: cnn.fit("default", *faces(4, 48), params=TINY["default"]), "image_size=32"),
        (lambda: cnn.fit("seed", *faces(4, 48), params={**TINY["seed"], "standardize_age": True}), "standardize_age"),
    ],
)
def test_bad_names_and_params_raise_valueerror_naming_the_value(call, bad):
    with pytest.raises(ValueError) as excinfo:
        call()
    assert bad in str(excinfo.value)


def test_resolve_params_is_the_one_checker_and_says_key_value_and_what_is_allowed():
    with pytest.raises(cnn.ParamError) as excinfo:
        cnn.resolve_params("default", {"epoch": 3})
    err = excinfo.value
    assert (err.key, err.unknown, err.suggestion) == ("epoch", True, "epochs") and "epochs" in err.allowed
    assert "did you mean 'epochs'?" in str(err)
    # builder values are checked here too, before any model is built
    for params, key, expected in [
        ({"dropout": 1.5}, "dropout", "a number in [0, 1)"),
        ({"filters": [8, 0]}, "filters", "a non-empty sequence of positive integers"),
        ({"epochs": "x"}, "epochs", "a positive integer"),
        ({"augment": {"shift": 2}}, "augment.shift", "a number >= 0 (< 1 but for rotation)"),
    ]:
        with pytest.raises(cnn.ParamError) as excinfo:
            cnn.resolve_params("default", params)
        assert (excinfo.value.key, excinfo.value.expected, excinfo.value.unknown) == (key, expected, False)
    with pytest.raises(cnn.ParamError) as excinfo:
        cnn.resolve_params("seed", {"image_size": 32})  # four 'valid' conv blocks need 46 pixels
    assert excinfo.value.key == "image_size" and excinfo.value.value == 32
    assert cnn.resolve_params("seed", {"filters": [4, 8, 8, 8], "image_size": 48})["filters"] == (4, 8, 8, 8)


def test_describe_says_what_each_cnn_is():
    for name in cnn.MODEL_NAMES:
        d = cnn.describe(name)
        assert (d["name"], d["kind"], d["family"], d["tasks"], d["estimator"]) == (
            name, "cnn", "learned", ("age", "gender"), "keras")
        p = cnn.default_params(name)
        assert (d["image_size"], d["color"]) == (p["image_size"], p["color"])
        assert d["summary"] and "\n" not in d["summary"]
    with pytest.raises(ValueError, match="resnet"):
        cnn.describe("resnet")


def test_import_does_not_import_tensorflow():
    code = "import sys, facebench.cnn; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- input pipeline ----------------------------------------------------------------------


def test_split_validation_is_seeded_disjoint_and_complete():
    train, val = cnn.split_validation(50, 0.2, seed=3)
    assert len(val) == 10 and len(train) == 40
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(range(50))
    train2, val2 = cnn.split_validation(50, 0.2, seed=3)
    assert np.array_equal(val, val2)
    assert not np.array_equal(val, cnn.split_validation(50, 0.2, seed=4)[1])
    assert len(cnn.split_validation(50, 0.0, seed=3)[1]) == 0


def id_images(ids, size=16):
    """Images whose every pixel is their id: a batch tells which rows it came from."""
    return np.broadcast_to(np.asarray(ids, dtype=np.uint8)[:, None, None], (len(ids), size, size)).copy()


def seen_ids(ds, n_batches=None):
    ids, ages = [], []
    for i, (xb, yb) in enumerate(ds):
        if n_batches is not None and i >= n_batches:
            break
        xb = xb.numpy()
        row = np.round(xb.reshape(len(xb), -1))
        assert np.all(row == row[:, :1]), "an image mixed pixels of several rows"
        ids.extend(row[:, 0].astype(int).tolist())
        ages.extend(yb["age"].numpy().tolist())
    return ids, ages


def test_make_dataset_yields_exactly_its_rows_once_per_epoch_with_their_labels():
    ids = np.arange(10, 47)
    # geometric augmentation keeps a constant image constant, so ids stay readable
    augment = {"flip": True, "shift": 0.1, "rotation": 10.0, "zoom": 0.1, "contrast": 0.2}
    params = {**cnn.default_params("default"), "batch_size": 8, "augment": augment}
    ds = cnn.make_dataset(id_images(ids), ids + 0.5, ids % 2, params, seed=0, training=True)
    epoch1, ages = seen_ids(ds, n_batches=5)  # 37 rows -> 5 batches per epoch
    assert sorted(epoch1) == ids.tolist()  # augmented, shuffled, but each row exactly once
    assert np.allclose(np.asarray(ages), np.asarray(epoch1) + 0.5)  # labels travel with their image
    val, _ = seen_ids(cnn.make_dataset(id_images(ids), ids, ids % 2, params, training=False))
    assert val == ids.tolist()


def test_fit_pipeline_sees_only_the_training_rows_and_validation_only_its_slice(monkeypatch):
    # The full data set: 40 training rows (ids 0..39) and 20 test rows (ids 200..219).
    train_ids, test_ids = np.arange(40), np.arange(200, 220)
    all_images = id_images(np.concatenate([train_ids, test_ids]), size=32)
    age = np.concatenate([train_ids, test_ids]) % 80
    gender = np.concatenate([train_ids, test_ids]) % 2
    made = []
    real = cnn_train.make_dataset

    def spy(images, *args, training=True, **kwargs):
        ds = real(images, *args, training=training, **kwargs)
        made.append((training, ds))
        return ds

    monkeypatch.setattr(cnn_train, "make_dataset", spy)
    params = {**TINY["default"], "augment": {"flip": True, "shift": 0.1, "rotation": 10.0, "zoom": 0.1}}
    fitted = cnn.fit("default", all_images[:40], age[:40], gender[:40], params=params, seed=0)

    (_, train_ds), (_, val_ds) = sorted(made, key=lambda m: not m[0])
    steps = fitted.timings["n_train"] // params["batch_size"] + 1
    train_seen, _ = seen_ids(train_ds, n_batches=steps)
    val_seen, _ = seen_ids(val_ds)
    assert sorted(val_seen) == sorted(fitted.validation_index.tolist())
    assert sorted(train_seen) == sorted(set(train_ids) - set(val_seen))
    assert not set(train_seen + val_seen) & set(test_ids)


def test_augment_batch_is_seeded_keeps_shape_and_range():
    import tensorflow as tf

    x = tf.constant(faces(6, 24)[0][..., None].astype("float32"))
    aug = cnn.default_params("default")["augment"]
    a = cnn.augment_batch(x, tf.constant([1, 2], tf.int64), aug).numpy()
    b = cnn.augment_batch(x, tf.constant([1, 2], tf.int64), aug).numpy()
    c = cnn.augment_batch(x, tf.constant([1, 3], tf.int64), aug).numpy()
    assert a.shape == x.shape and np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 255
    flipped = cnn.augment_batch(x, tf.constant([5, 6], tf.int64), {"flip": True}).numpy()
    for orig, out in zip(x.numpy(), flipped):
        assert np.allclose(out, orig, atol=1e-3) or np.allclose(out, orig[:, ::-1], atol=1e-3)


# --- training, prediction, save/load, determinism --------------------------------------------


#: The module's fitted model: TINY with op determinism on and the weights averaged (EMA 0.9), so
#: that the determinism test, fitting it again, checks the training and the average alike.
DETERMINISTIC = {**TINY["default"], "deterministic": True, "ema": 0.9}


@pytest.fixture(scope="module")
def fitted_default():
    x, age, gender = faces(48, 32, seed=1)
    return cnn.fit("default", x, age, gender, params=DETERMINISTIC, seed=0), x


@pytest.mark.parametrize("name", cnn.MODEL_NAMES)
def test_fit_one_epoch_gives_history_timings_and_predictions(name, request):
    if name == "default":  # the module's fitted model is this very fit: TINY (deterministic), one epoch, seed 0
        fitted, x = request.getfixturevalue("fitted_default")
    else:
        x, age, gender = faces(40, TINY[name]["image_size"], seed=2)
        fitted = cnn.fit(name, x, age, gender, params=TINY[name], seed=0)
    assert fitted.name == name and fitted.params["filters"] == TINY[name]["filters"]
    assert HISTORY_KEYS <= set(fitted.history)
    assert all(len(v) == 1 and isinstance(v[0], float) for v in fitted.history.values())
    assert fitted.timings["epochs_run"] == 1 and fitted.timings["fit_s"] > 0
    assert fitted.timings["n_train"] + fitted.timings["n_validation"] == len(x)
    pred = fitted.predict(x[:7])
    assert set(pred) == {"age", "p_female", "gender"}
    assert pred["age"].shape == (7,) and pred["age"].dtype == np.float64
    assert np.all((pred["age"] >= 0) & (pred["age"] <= 116))
    assert np.all((pred["p_female"] >= 0) & (pred["p_female"] <= 1))
    assert pred["gender"].dtype.kind == "i" and np.array_equal(pred["gender"], pred["p_female"] >= 0.5)


def test_default_learns_age_scale_and_predicts_in_years(fitted_default):
    fitted, x = fitted_default
    assert fitted.params["age_mean"] > 20  # standardisation learnt from the training ages (0-89)
    ages = fitted.predict(x)["age"]
    assert 10 < ages.mean() < 80  # in years, not in standard deviations


def test_predict_rejects_images_of_the_wrong_shape(fitted_default):
    fitted, _ = fitted_default
    with pytest.raises(ValueError, match="do not fit the model's input"):
        fitted.predict(np.zeros((2, 40, 40), dtype=np.uint8))


def test_save_load_round_trip_gives_identical_predictions(fitted_default, tmp_path):
    fitted, x = fitted_default
    path = tmp_path / "models" / "t0_f1.0_cnn-default"  # dots in the unit name, no suffix
    written = fitted.save(path)
    assert written.name == "t0_f1.0_cnn-default.keras" and (tmp_path / "models" / "t0_f1.0_cnn-default.json").exists()
    for p in (path, str(written)):
        loaded = cnn.load(p)
        assert loaded.name == "default" and loaded.params == fitted.params
        assert loaded.history == fitted.history
        assert np.array_equal(loaded.validation_index, fitted.validation_index)
        before, after = fitted.predict(x), loaded.predict(x)
        for key in before:
            assert np.array_equal(before[key], after[key]), key


def test_same_seed_same_predictions_with_op_determinism_and_ema(fitted_default):
    a, _ = fitted_default  # fitted with DETERMINISTIC (EMA 0.9 included), seed 0, on these faces
    assert a.params["ema"] == 0.9 and a.params["deterministic"] is True
    x, age, gender = faces(48, 32, seed=1)
    b = cnn.fit("default", x, age, gender, params=DETERMINISTIC, seed=0)
    c = cnn.fit("default", x, age, gender, params=DETERMINISTIC, seed=1)
    pa, pb, pc = a.predict(x), b.predict(x), c.predict(x)
    # the averaged weights, which the predictions use, are the same to the bit: so is what they average
    assert np.array_equal(pa["age"], pb["age"]) and np.array_equal(pa["p_female"], pb["p_female"])
    assert a.history == b.history  # the training losses are the raw weights' own
    assert not np.array_equal(pa["age"], pc["age"])


def test_test_time_flip_averages_each_face_with_its_mirror(fitted_default):
    fitted, x = fitted_default
    assert fitted.params["test_time_flip"] is True  # on for the default preset
    both = fitted.predict(x)
    plain = cnn.FittedCNN(fitted.model, fitted.name, {**fitted.params, "test_time_flip": False})
    one, mirror = plain.predict(x), plain.predict(x[:, :, ::-1])
    assert not np.allclose(one["age"], mirror["age"])  # the tiny net is not mirror-symmetric
    np.testing.assert_allclose(both["age"], np.clip((one["age"] + mirror["age"]) / 2, 0, 116), rtol=1e-6)
    np.testing.assert_allclose(both["p_female"], (one["p_female"] + mirror["p_female"]) / 2, rtol=1e-6)
    # averaging over the mirror pair makes the prediction mirror-invariant
    flipped = fitted.predict(x[:, :, ::-1])
    np.testing.assert_allclose(both["p_female"], flipped["p_female"], rtol=1e-5)
    assert cnn.default_params("seed")["test_time_flip"] is False  # the study's model as published


# --- precision -----------------------------------------------------------------------


def _fit_bfloat16(name):
    x, age, gender = faces(40, TINY[name]["image_size"], seed=5)
    return cnn.fit(name, x, age, gender, params={**TINY[name], "precision": "bfloat16"}, seed=0), x


@pytest.fixture(scope="module")
def bfloat16_default():
    """The ``default`` CNN trained in mixed bfloat16 (TINY, one epoch) and its 40 faces."""
    return _fit_bfloat16("default")


@pytest.mark.parametrize("name", cnn.MODEL_NAMES)
def test_bfloat16_trains_in_mixed_precision_with_float32_heads_and_round_trips(name, tmp_path, request):
    from facebench.cnn.models import keras_module

    keras = keras_module()
    fitted, x = request.getfixturevalue("bfloat16_default") if name == "default" else _fit_bfloat16(name)
    assert fitted.timings["precision"] == "bfloat16"
    policies = {layer.name: layer.dtype_policy.name for layer in fitted.model.layers}
    assert policies["gender"] == policies["age"] == "float32"
    assert "mixed_bfloat16" in policies.values()
    assert keras.config.dtype_policy().name == "float32"  # the global policy is put back
    pred = fitted.predict(x[:5])
    assert pred["age"].dtype == np.float64 and np.all(np.isfinite(pred["age"]))
    fitted.save(tmp_path / "m")
    again = cnn.load(tmp_path / "m")
    np.testing.assert_allclose(again.predict(x[:5])["age"], pred["age"])
    assert again.params["precision"] == "bfloat16"


def test_precision_auto_follows_the_cpu_and_bad_values_are_named(monkeypatch):
    from facebench import machine

    monkeypatch.setattr(machine, "has_bf16", lambda: True)
    assert cnn_precision.compute_precision("auto") == "bfloat16"
    monkeypatch.setattr(machine, "has_bf16", lambda: False)
    assert cnn_precision.compute_precision("auto") == "float32"
    assert cnn_precision.compute_precision("bfloat16") == "bfloat16"
    with pytest.raises(cnn.ParamError, match="precision='float16'"):
        cnn.resolve_params("default", {"precision": "float16"})


def test_cnn_views_work_on_a_bfloat16_model(bfloat16_default):
    from facebench.cnn.introspect import cnn_views

    size = TINY["default"]["image_size"]
    fitted, x = bfloat16_default
    assert fitted.timings["precision"] == "bfloat16"
    views = cnn_views(fitted, x[0])
    for key in ("cam_age", "cam_gender"):
        assert views[key].dtype in (np.float32, np.float64) and views[key].shape == (size, size) and np.all(np.isfinite(views[key]))
    assert views["filters"][1].dtype == np.float32
    assert views["maps"] and all(m.dtype == np.float32 for _, m in views["maps"])


# --- age head ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def distribution_head():
    """The ``default`` CNN with the distribution age head and its KL term (weight 0.5), and its 40 faces."""
    x, age, gender = faces(40, TINY["default"]["image_size"], seed=9)
    params = {**TINY["default"], "age_head": "distribution", "age_kl_weight": 0.5}
    return cnn.fit("default", x, age, gender, params=params, seed=0), x


def test_distribution_age_head_predicts_the_expected_age_and_round_trips(tmp_path, distribution_head):
    fitted, x = distribution_head
    expected = fitted.model.get_layer("age")
    assert not expected.trainable  # the ages 0..116 themselves, not learned
    np.testing.assert_array_equal(expected.get_weights()[0][:, 0], np.arange(117, dtype=np.float32))
    pred = fitted.predict(x[:5])
    assert np.all((pred["age"] >= 0) & (pred["age"] <= 116))
    raw = fitted.model.predict(x[:5, ..., None], verbose=0)["age"].reshape(-1)
    dist = fitted.model.get_layer("age_dist")
    probs = cnn.models.keras_module().Model(fitted.model.inputs, dist.output).predict(x[:5, ..., None], verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(raw, probs @ np.arange(117), rtol=1e-4)
    fitted.save(tmp_path / "m")
    np.testing.assert_allclose(cnn.load(tmp_path / "m").predict(x[:5])["age"], pred["age"])
    with pytest.raises(cnn.ParamError, match="age_head='softmax'"):
        cnn.resolve_params("default", {"age_head": "softmax"})


def test_an_untrained_distribution_head_starts_at_the_training_ages():
    from facebench.cnn.models import build_model

    ages = np.array([20.0] * 2250 + [40.0] * 750)
    p = cnn.resolve_params("default", {**TINY["default"], "age_head": "distribution"})
    model = build_model("default", (32, 32, 1), **{k: p[k] for k in cnn.builder_keys("default")})
    cnn_train._start_at_the_age_prior(model, ages)
    bias = model.get_layer("age_dist").get_weights()[1]
    prior = np.exp(bias) / np.exp(bias).sum()
    assert prior.argmax() == 20 and prior[40] > prior[30]  # the histogram, smoothed
    # with a zero kernel the head outputs that prior whatever the face: its mean age
    kernel = model.get_layer("age_dist").get_weights()[0]
    model.get_layer("age_dist").set_weights([np.zeros_like(kernel), bias])
    x, _, _ = faces(2, 32, seed=8)
    age = model.predict(x[..., None], verbose=0)["age"].reshape(-1)
    np.testing.assert_allclose(age, prior @ np.arange(117), rtol=1e-4)
    assert 20 < age[0] < 30  # near the mean age, 25 (the smoothing weighs 1.9 % here)
    linear = build_model("default", (32, 32, 1), **{k: p[k] for k in cnn.builder_keys("default")} | {"age_head": "linear"})
    before = [w.copy() for w in linear.get_weights()]
    cnn_train._start_at_the_age_prior(linear, ages)  # no distribution head: left alone
    assert all(np.array_equal(a, b) for a, b in zip(before, linear.get_weights()))


def test_the_age_distribution_loss_is_the_kl_from_a_gaussian_around_each_age():
    from facebench.cnn.models import keras_module

    ops = keras_module().ops
    loss = cnn_recipe.age_distribution_loss(2.0)
    bins = np.arange(117, dtype=np.float32)
    ages = np.array([3.0, 40.0, 90.0], dtype=np.float32)
    q = np.exp(-((bins[None] - ages[:, None]) ** 2) / 8.0)
    q /= q.sum(axis=1, keepdims=True)
    same = np.asarray(ops.convert_to_numpy(loss(ages, q.astype(np.float32))))
    np.testing.assert_allclose(same, 0.0, atol=1e-4)  # the target itself: no divergence
    uniform = np.full((3, 117), 1 / 117, dtype=np.float32)
    expected = (q * (np.log(np.clip(q, 1e-7, 1)) - np.log(1 / 117))).sum(axis=1)
    np.testing.assert_allclose(np.asarray(ops.convert_to_numpy(loss(ages, uniform))), expected, rtol=1e-4)
    assert np.all(expected > 2.5)


def test_a_distribution_head_trains_with_its_kl_loss_and_bad_weights_are_named(distribution_head):
    fitted, x = distribution_head
    assert fitted.params["age_kl_weight"] == 0.5
    assert {"age_dist_loss", "val_age_dist_loss"} <= set(fitted.history)
    assert np.isfinite(fitted.history["age_dist_loss"][0]) and fitted.history["age_dist_loss"][0] > 0
    assert set(fitted.predict(x[:3])) == {"age", "p_female", "gender"}
    with pytest.raises(cnn.ParamError, match="age_kl_weight=-1"):
        cnn.resolve_params("default", {"age_kl_weight": -1})
    with pytest.raises(cnn.ParamError, match="age_sigma=0"):
        cnn.resolve_params("default", {"age_sigma": 0})


# --- weight averaging ------------------------------------------------------------------


class _Snapshots:
    """Trainable weights at the start of training and after every batch (raw, not averaged)."""

    @staticmethod
    def callback(store):
        from facebench.cnn.models import keras_module

        class Snap(keras_module().callbacks.Callback):
            def on_train_begin(self, logs=None):
                store.append([w.numpy().copy() for w in self.model.trainable_weights])

            def on_train_batch_end(self, batch, logs=None):
                store.append([w.numpy().copy() for w in self.model.trainable_weights])

        return Snap()


def _distance(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


@pytest.mark.parametrize("patience", [None, 0])
def test_ema_ends_with_the_averaged_weights_and_validates_on_them(patience, tmp_path):
    x, age, gender = faces(36, 32, seed=11)
    base = {**TINY["default"], "epochs": 2, "patience": patience, "learning_rate": 0.02}
    raw_steps, ema_steps = [], []
    if patience is None:
        raw = cnn.fit("default", x, age, gender, params=base, seed=3, callbacks=[_Snapshots.callback(raw_steps)])
        final_raw = [w.numpy() for w in raw.model.trainable_weights]
        assert _distance(raw_steps[-1], final_raw) == 0  # without EMA: the last step's weights
    # a momentum near 1 keeps the average within a hair of where training started
    averaged = cnn.fit("default", x, age, gender, params={**base, "ema": 0.99999}, seed=3,
                       callbacks=[_Snapshots.callback(ema_steps)])
    final_ema = [w.numpy() for w in averaged.model.trainable_weights]
    moved = _distance(ema_steps[0], ema_steps[-1])
    assert moved > 1e-2  # the raw weights did travel
    assert min(_distance(final_ema, s) for s in ema_steps[:2]) < moved / 100  # the average barely did
    if patience is None:
        # the last validation loss is the averaged weights' loss, not the raw weights'
        from facebench.cnn.inputs import make_dataset

        vi = averaged.validation_index
        val_ds = make_dataset(x[vi], age[vi], gender[vi], averaged.params, seed=3, training=False)
        on_average = averaged.model.evaluate(val_ds, return_dict=True, verbose=0)["loss"]
        np.testing.assert_allclose(on_average, averaged.history["val_loss"][-1], rtol=1e-4)
        kept = [w.numpy().copy() for w in averaged.model.trainable_weights]
        for w, v in zip(averaged.model.trainable_weights, ema_steps[-1]):
            w.assign(v)
        on_raw = averaged.model.evaluate(val_ds, return_dict=True, verbose=0)["loss"]
        assert abs(on_raw - on_average) > 1e-3
        for w, v in zip(averaged.model.trainable_weights, kept):
            w.assign(v)
    # the averaged model is the one saved and loaded
    loaded = cnn.load(averaged.save(tmp_path / "ema"))
    assert loaded.params["ema"] == 0.99999
    before, after = averaged.predict(x), loaded.predict(x)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_bad_momenta_are_named():
    # that EMA is deterministic with a seed: test_same_seed_same_predictions_with_op_determinism_and_ema
    for bad in (1, 1.5, -0.1, "yes", True):
        with pytest.raises(cnn.ParamError, match="ema="):
            cnn.resolve_params("default", {"ema": bad})
    assert cnn.default_params("seed")["ema"] == cnn.default_params("default")["ema"] == 0.0
