"""The model registry: every entry fits and predicts, features-once, seeds, no leakage, errors."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.svm import SVC

from facebench.baselines import (
    MODEL_TASKS,
    HFlipAugmented,
    TunedEstimator,
    describe,
    expected_fit_cost,
    feature_step,
    input_color,
    list_all,
    list_models,
    make_head,
    make_model,
    predict_outputs,
    uses_flip,
)

REQUIRED = {
    "gender": {"dummy", "hog+svm", "lbp+svm", "hog+lbp+svm", "pixels+pca+svm", "hog+linsvm"},
    "age": {"dummy", "hog+ridge", "lbp+ridge", "hog+lbp+ridge", "hog+lbp+svr"},
}


def tiny_faces(n=36, seed=0):
    """Images whose labels are learnable: a bright square for "female", its position for age."""
    rng = np.random.default_rng(seed)
    images = rng.integers(40, 90, size=(n, 64, 64)).astype(np.uint8)
    gender = np.arange(n) % 2
    age = rng.integers(1, 90, size=n)
    for i in range(n):
        if gender[i]:
            images[i, 8:24, 8:24] = 220
        top = 4 + int(age[i] / 90 * 40)
        images[i, top : top + 12, 40:52] = 250
    return images, gender, age


@pytest.fixture(scope="module")
def data():
    return tiny_faces()


def test_registry_names_and_tasks():
    for task, names in REQUIRED.items():
        assert names <= set(list_models(task))
        assert all(task in MODEL_TASKS[name] for name in list_models(task))
    assert MODEL_TASKS["dummy"] == ("age", "gender")


@pytest.mark.parametrize("task, name", [(t, n) for t in ("gender", "age") for n in list_models(t)])
def test_every_model_fits_and_predicts(data, task, name):
    images, gender, age = data
    if input_color(name) == "rgb":  # colour models take RGB stacks
        images = np.repeat(images[..., None], 3, axis=3)
    y = gender if task == "gender" else age
    model = make_model(name, task, random_state=0)
    assert model.steps[0][0] == "features"
    model.fit(images[:28], y[:28])
    out = predict_outputs(model, images[28:], task)
    if task == "age":
        assert set(out) == {"age"}
        assert out["age"].shape == (8,) and out["age"].dtype == np.float64
        assert np.all((0 <= out["age"]) & (out["age"] <= 116))
    else:
        assert set(out) == {"p_female", "gender"}
        p, g = out["p_female"], out["gender"]
        assert p.shape == g.shape == (8,)
        assert np.all((0 <= p) & (p <= 1)) and set(np.unique(g)) <= {0, 1}
        assert np.array_equal(g, (p > 0.5).astype(int)) or name == "dummy"


@pytest.mark.parametrize("task, name", [("gender", "hog+lbp+svm"), ("gender", "hog+linsvm"), ("age", "hog+lbp+svr"), ("age", "lbp+ridge")])
def test_features_once_gives_the_same_predictions(data, task, name):
    images, gender, age = data
    y = gender if task == "gender" else age
    full = make_model(name, task, random_state=3).fit(images[:28], y[:28])
    features = feature_step(name, task)
    tail = make_head(name, task, random_state=3).fit(features.transform(images[:28]), y[:28])
    a = predict_outputs(full, images[28:], task)
    b = predict_outputs(tail, features.transform(images[28:]), task)
    # and the fitted full model's own tail on the features
    c = predict_outputs(full[1:], features.transform(images[28:]), task)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_array_equal(a[key], c[key])


@pytest.mark.parametrize("task, name", [("gender", "hog+lbp+svm"), ("gender", "hog+linsvm"), ("age", "hog+lbp+svr")])
def test_same_seed_same_predictions(data, task, name):
    images, gender, age = data
    y = gender if task == "gender" else age
    runs = [predict_outputs(make_model(name, task, random_state=7).fit(images[:28], y[:28]), images[28:], task) for _ in range(2)]
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key], runs[1][key])


def test_rbf_models_learn_the_tiny_task(data):
    images, gender, _ = data
    model = make_model("hog+lbp+svm", "gender", random_state=0).fit(images[:28], gender[:28])
    assert np.mean(predict_outputs(model, images[28:], "gender")["gender"] == gender[28:]) >= 0.75


# ---------------------------------------------------------------------------- no leakage


class RowSpy(ClassifierMixin, BaseEstimator):
    """A classifier that records, in a shared log, the ids (column 0) of every row it is fitted on."""

    log = []

    def __init__(self, C=1.0):
        self.C = C

    def fit(self, X, y):
        RowSpy.log.append(("fit", np.asarray(X)[:, 0].copy()))
        self.model_ = SVC(C=self.C).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        RowSpy.log.append(("predict", np.asarray(X)[:, 0].copy()))
        return self.model_.predict(X)


def test_tuning_sees_only_the_rows_given_to_fit():
    rng = np.random.default_rng(0)
    n = 200
    ids = np.arange(n, dtype=float)
    X = np.column_stack([ids, rng.normal(size=(n, 3))])
    y = (X[:, 1] > 0).astype(int)
    train, test = np.arange(0, 150), np.arange(150, 200)
    RowSpy.log.clear()
    tuned = TunedEstimator(RowSpy(), {"C": [0.1, 1.0]}, cv=3, max_tune_samples=90, random_state=0).fit(X[train], y[train])
    seen = np.concatenate([rows for _, rows in RowSpy.log])
    assert len(RowSpy.log) == 2 * 3 * 2 + 1  # 2 settings x 3 folds x (fit + score), then the refit
    assert not np.isin(seen, test).any(), "test rows reached the tuning"
    cv_rows = np.concatenate([rows for _, rows in RowSpy.log[:-1]])
    assert set(cv_rows) == set(ids[train][tuned.tune_indices_]) and len(tuned.tune_indices_) == 90
    np.testing.assert_array_equal(np.sort(RowSpy.log[-1][1]), ids[train])  # refit on all training rows


def test_flip_augmentation_keeps_a_face_and_its_mirror_in_one_fold():
    rng = np.random.default_rng(1)
    n = 60
    first = np.column_stack([np.arange(n, dtype=float), rng.normal(size=(n, 2))])
    mirror = first.copy()
    mirror[:, 0] += 1000  # id of the mirror copy of row i: i + 1000
    X = np.hstack([first, mirror])
    y = (first[:, 1] > 0).astype(int)
    RowSpy.log.clear()
    TunedEstimator(HFlipAugmented(RowSpy()), {"estimator__C": [1.0]}, cv=3, random_state=0).fit(X, y)
    for (kind, fitted), (_, scored) in zip(RowSpy.log[:-1:2], RowSpy.log[1:-1:2]):
        assert kind == "fit"
        assert np.all(scored < 1000), "a mirror image was used for scoring"
        assert not np.isin(scored + 1000, fitted).any(), "a face was scored while its mirror image trained the model"
        assert set(fitted[fitted >= 1000] - 1000) == set(fitted[fitted < 1000])


def test_full_model_tuning_never_sees_test_images(data):
    images, gender, _ = data
    model = make_model("hog+lbp+svm", "gender", random_state=0)
    model.set_params(model__estimator=HFlipAugmented(RowSpy()), model__param_grid={"estimator__C": [1.0, 3.0]})
    RowSpy.log.clear()
    model.fit(images[:28], gender[:28])
    reduced = model[:-1].transform(images)  # the rows the final estimator works on
    seen = np.concatenate([rows for kind, rows in RowSpy.log if kind == "fit"])
    d = reduced.shape[1] // 2

    def among_seen(values):  # transform and fit_transform may differ in the last bits
        return np.isclose(values[:, None], seen[None, :], rtol=0, atol=1e-4).any(axis=1)

    assert among_seen(reduced[:28, 0]).all()
    assert not among_seen(reduced[28:, 0]).any(), "test images reached the fit"
    assert not among_seen(reduced[28:, d]).any(), "mirror images of test images reached the fit"


# ---------------------------------------------------------------------------- flip


def test_flip_models_are_marked_and_never_predict_from_mirrors(data):
    images, gender, _ = data
    model = make_model("hog+lbp+svm", "gender", random_state=0)
    assert uses_flip(model) and not uses_flip(make_model("hog+linsvm", "gender"))
    model.fit(images[:28], gender[:28])
    F = model.named_steps["features"].transform(images[28:])
    d = F.shape[1] // 2
    scrambled = F.copy()
    scrambled[:, d:] = np.random.default_rng(0).random(scrambled[:, d:].shape)
    np.testing.assert_array_equal(model[1:].decision_function(F), model[1:].decision_function(scrambled))


def test_flip_augmented_rejects_unpaired_features():
    with pytest.raises(ValueError, match=r"got shape \(4, 3\)"):
        HFlipAugmented(SVC()).fit(np.zeros((4, 3)), [0, 1, 0, 1])


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (("hog+cnn", "gender"), {}, "name='hog\\+cnn'"),
        (("hog+svm", "age"), {}, "does not do task='age'"),
        (("hog+ridge", "gender"), {}, "does not do task='gender'"),
        (("dummy", "race"), {}, "task='race'"),
        (("dummy", "age"), {"random_state": "zero"}, "random_state='zero'"),
    ],
)
def test_make_model_errors_name_the_bad_value(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(*args, **kwargs)


def test_other_errors_name_the_bad_value(data):
    images, gender, _ = data
    with pytest.raises(ValueError, match="task='height'"):
        list_models("height")
    model = make_model("dummy", "gender").fit(images, gender)
    with pytest.raises(ValueError, match="task='both'"):
        predict_outputs(model, images, "both")
    with pytest.raises(ValueError, match="cv=1"):
        TunedEstimator(SVC(), {"C": [1.0]}, cv=1).fit(np.zeros((4, 2)), [0, 1, 0, 1])


def test_dummy_predicts_prior_and_median(data):
    images, gender, age = data
    g = predict_outputs(make_model("dummy", "gender").fit(images, gender * 0 + 1), images[:3], "gender")
    assert np.all(g["gender"] == 1) and np.all(g["p_female"] == 1.0)
    a = predict_outputs(make_model("dummy", "age").fit(images, age), images[:3], "age")
    assert np.all(a["age"] == np.median(age))


def test_age_predictions_are_clipped():
    class Wild(BaseEstimator):
        def predict(self, X):
            return np.array([-5.0, 50.0, 300.0])

    np.testing.assert_array_equal(predict_outputs(Wild(), None, "age")["age"], [0.0, 50.0, 116.0])


def test_make_model_returns_fresh_unfitted_models():
    a, b = make_model("hog+svm", "gender", random_state=0), make_model("hog+svm", "gender", random_state=0)
    assert a is not b and repr(clone(a)) == repr(b)


def test_flip_row_cap_mirrors_a_seeded_subset():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 6))
    y = rng.normal(size=50)
    from sklearn.linear_model import Ridge

    capped = HFlipAugmented(Ridge(), max_rows=70, random_state=0).fit(X, y)
    assert len(capped.mirrored_) == 20 and len(np.unique(capped.mirrored_)) == 20
    again = HFlipAugmented(Ridge(), max_rows=70, random_state=0).fit(X, y)
    np.testing.assert_array_equal(capped.mirrored_, again.mirrored_)
    assert len(HFlipAugmented(Ridge(), max_rows=1000).fit(X, y).mirrored_) == 50
    with pytest.raises(ValueError, match="max_rows=0"):
        HFlipAugmented(Ridge(), max_rows=0).fit(X, y)


def test_average_mirror_predicts_the_mean_over_both_halves():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(40, 8)), rng.normal(size=40)
    averaged = HFlipAugmented(Ridge(), average_mirror=True).fit(X, y)
    inner = averaged.estimator_
    np.testing.assert_allclose(averaged.predict(X), (inner.predict(X[:, :4]) + inner.predict(X[:, 4:])) / 2)
    plain = HFlipAugmented(Ridge()).fit(X, y)
    np.testing.assert_allclose(plain.predict(X), plain.estimator_.predict(X[:, :4]))
    with pytest.raises(ValueError, match="for regressors"):
        HFlipAugmented(SVC(), average_mirror=True).fit(X, (y > 0).astype(int))
    with pytest.raises(ValueError, match="average_mirror='yes'"):
        HFlipAugmented(Ridge(), average_mirror="yes").fit(X, y)


def test_the_svr_averages_over_the_mirror_image_and_the_svm_does_not():
    svr = make_model("hog6+lbp+svr", "age").named_steps["model"].estimator
    svm = make_model("hog+lbp+svm", "gender").named_steps["model"].estimator
    assert svr.average_mirror is True and svm.average_mirror is False


def test_svm_kernel_cache_follows_memory_and_the_environment(monkeypatch):
    from facebench.baselines.building import svm_cache_mb
    from facebench.errors import UserError

    monkeypatch.delenv("FACEBENCH_SVM_CACHE_MB", raising=False)
    assert 200 <= svm_cache_mb() <= 4096
    monkeypatch.setenv("FACEBENCH_SVM_CACHE_MB", "512")
    assert make_model("hog+lbp+svm", "gender").named_steps["model"].estimator.estimator.cache_size == 512
    assert make_model("hog6+lbp+svr", "age").named_steps["model"].estimator.estimator.cache_size == 512
    monkeypatch.setenv("FACEBENCH_SVM_CACHE_MB", "lots")
    with pytest.raises(UserError, match="FACEBENCH_SVM_CACHE_MB .* got 'lots'"):
        make_model("hog+svm", "gender")


@pytest.mark.parametrize("name", list_all())
def test_feature_step_and_head_make_up_the_model(name):
    from sklearn.pipeline import Pipeline

    for task in MODEL_TASKS[name]:
        model = make_model(name, task, random_state=5, n_jobs=1)
        parts = Pipeline([("features", feature_step(name, task)), *make_head(name, task, random_state=5, n_jobs=1).steps])
        assert repr(parts.get_params(deep=True)) == repr(model.get_params(deep=True))
        assert [type(step).__name__ for _, step in parts.steps] == [type(step).__name__ for _, step in model.steps]


def test_describe_says_what_each_model_is():
    for name in list_all():
        d = describe(name)
        assert set(d) == {"name", "kind", "tasks", "family", "features", "estimator", "color", "summary"}
        assert d["name"] == name and d["kind"] == "classical" and d["tasks"] == MODEL_TASKS[name]
        assert d["family"] == ("trivial" if name == "dummy" else
                               "learned elsewhere" if name.startswith("dlib128+") else "hand-crafted")
        assert d["color"] == input_color(name) and d["summary"] and "\n" not in d["summary"]
    d = describe("hog+lbp+color+svm")
    assert (d["features"], d["estimator"], d["color"]) == ("hog+lbp+color", "svm", "rgb")
    assert describe("hog+lbp+svm")["summary"] == "HOG + LBP -> scaler -> PCA 256 -> RBF SVC, flip-augmented"
    assert describe("hog+ridge")["estimator"] == "ridge" and describe("dummy")["estimator"] == "dummy"
    with pytest.raises(ValueError, match="unknown model name='nope'"):
        describe("nope")


def test_expected_fit_cost_is_quadratic_for_kernel_heads_and_linear_otherwise():
    assert expected_fit_cost("hog+lbp+svm", 1000) == pytest.approx(3.3e-7 * 1000**2)
    assert expected_fit_cost("hog6+lbp+svr", 2000) == pytest.approx(4 * expected_fit_cost("hog6+lbp+svr", 1000))
    assert expected_fit_cost("hog+ridge", 1000) == pytest.approx(3.5)
    assert expected_fit_cost("hog+linsvm", 2000) == pytest.approx(2 * expected_fit_cost("hog+linsvm", 1000))


@pytest.mark.parametrize("name", list_all())
def test_saved_models_hold_only_trusted_types_and_load_back_identical(name):
    """Every registry model, fitted, round-trips through skops with TRUSTED_TYPES alone."""
    import skops.io as sio

    from facebench.baselines import TRUSTED_TYPES

    rng = np.random.default_rng(1)
    shape = (40, 32, 32, 3) if input_color(name) == "rgb" else (40, 32, 32)
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    targets = {"gender": np.arange(40) % 2, "age": rng.integers(1, 90, 40)}
    fitted = {task: make_model(name, task, random_state=0, n_jobs=1).fit(images[:32], targets[task][:32])
              for task in MODEL_TASKS[name]}
    data = sio.dumps({"meta": {"model": name, "features": {"image_size": 32, "color": "gray"}}, "estimators": fitted})
    untrusted = set(sio.get_untrusted_types(data=data))
    assert untrusted <= set(TRUSTED_TYPES), sorted(untrusted - set(TRUSTED_TYPES))
    loaded = sio.loads(data, trusted=list(TRUSTED_TYPES))["estimators"]
    for task, model in fitted.items():
        a, b = predict_outputs(model, images[32:], task), predict_outputs(loaded[task], images[32:], task)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


# --------------------------------------------------------------------------- models of the user's own


@pytest.fixture
def registry_snapshot():
    """Undo every register_model call of a test."""
    from facebench.baselines import registry

    saved = dict(registry.MODELS), dict(registry.MODEL_TASKS), dict(registry._REGISTERED)
    yield
    for table, before in zip((registry.MODELS, registry.MODEL_TASKS, registry._REGISTERED), saved):
        table.clear()
        table.update(before)


def test_register_a_combination_of_registered_parts(data, registry_snapshot):
    from facebench.baselines import register_model

    register_model("lbp+linsvm", ("lbp",), "linsvm", tasks=("gender",))
    assert "lbp+linsvm" in list_models("gender") and "lbp+linsvm" not in list_models("age")
    d = describe("lbp+linsvm")
    assert (d["features"], d["estimator"], d["family"], d["tasks"]) == ("lbp", "linsvm", "hand-crafted", ("gender",))
    assert d["summary"] == "LBP -> scaler -> LinearSVC"
    images, gender, _ = data
    out = predict_outputs(make_model("lbp+linsvm", "gender", random_state=0).fit(images[:28], gender[:28]),
                          images[28:], "gender")
    assert out["gender"].shape == (8,)
    register_model("color+ridge", "color", "ridge", tasks="age", summary="colour alone")
    assert input_color("color+ridge") == "rgb" and describe("color+ridge")["summary"] == "colour alone"


def test_register_a_factory_model(data, registry_snapshot):
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline

    from facebench.baselines import HOGFeatures, register_model

    def factory(task, random_state, n_jobs):
        head = LogisticRegression(max_iter=500) if task == "gender" else Ridge()
        return Pipeline([("features", HOGFeatures()), ("model", head)])

    register_model("hog+logreg", "hog", tasks=("gender", "age"), factory=factory, summary="HOG -> logistic / ridge")
    d = describe("hog+logreg")
    assert (d["estimator"], d["features"], d["tasks"]) == ("custom", "hog", ("gender", "age"))
    assert isinstance(feature_step("hog+logreg", "age"), HOGFeatures)
    images, gender, age = data
    model = make_model("hog+logreg", "gender").fit(images[:28], gender[:28])
    head = make_head("hog+logreg", "gender").fit(feature_step("hog+logreg").transform(images[:28]), gender[:28])
    np.testing.assert_array_equal(model.predict(images[28:]), head.predict(feature_step("hog+logreg").transform(images[28:])))
    assert make_model("hog+logreg", "age").fit(images, age).predict(images).shape == (36,)


@pytest.mark.parametrize("args, kwargs, match", [
    (("hog+svm", ("hog",), "svm"), {"tasks": ("gender",)}, "exists already"),
    (("hog lbp", ("hog",), "svm"), {"tasks": ("gender",)}, "'hog lbp' and 'hog-lbp'"),
    (("cnn-default", ("hog",), "svm"), {"tasks": ("gender",)}, "CNNs' file names"),
    (("", ("hog",), "svm"), {"tasks": ("gender",)}, "non-empty string"),
    (("x", ("hog", "sift"), "svm"), {"tasks": ("gender",)}, "unknown feature"),
    (("x", ("hog",), "knn"), {"tasks": ("gender",)}, "head='knn'"),
    (("x", ("hog",), "svm"), {"tasks": ("age",)}, "does tasks"),
    (("x", ("hog",), "svm"), {"tasks": ("height",)}, "subset"),
    (("x", ("hog",), "svm"), {"tasks": ("gender",), "color": "rgb"}, "color='rgb'"),
    (("x", "hog", "svm"), {"tasks": ("gender",), "factory": lambda *a: None}, "not both"),
    (("x", "hog"), {"tasks": ("gender",), "factory": lambda *a: SVC()}, "Pipeline"),
])
def test_register_model_refuses_with_one_line(args, kwargs, match, registry_snapshot):
    from facebench.baselines import register_model

    register_model("hog-lbp", ("hog", "lbp"), "svm", tasks=("gender",))
    with pytest.raises(ValueError, match=match) as excinfo:
        register_model(*args, **kwargs)
    assert "\n" not in str(excinfo.value)
    assert "x" not in MODEL_TASKS


def test_user_models_travel_to_a_fresh_process(registry_snapshot):
    import pickle
    import subprocess
    import sys

    from facebench.baselines import register_model, user_models

    register_model("lbp+linsvm", ("lbp",), "linsvm", tasks=("gender",), summary="LBP, linear")
    code = ("import pickle, sys; from facebench.baselines import add_user_models, describe, make_model; "
            "add_user_models(pickle.load(sys.stdin.buffer)); make_model('lbp+linsvm', 'gender'); "
            "print(describe('lbp+linsvm')['summary'])")
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(user_models()), capture_output=True, check=True)
    assert out.stdout.decode().strip() == "LBP, linear"
    from facebench.baselines import add_user_models

    with pytest.raises(ValueError, match="'hog[+]svm' is a built-in model"):
        add_user_models({"hog+svm": user_models()["lbp+linsvm"]})
