"""The plan of a run: every model resolved once, every unit with its rows (facebench.compare.planning.plan)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from facebench.compare import load_config
from facebench.compare.planning.plan import Unit, make_plan, model_specs
from facebench.data import make_split
from facebench.errors import UserError

MODELS = ["models.gender=['dummy','hog+lbp+color+svm','svm-c1']", "models.age=['hog+ridge','svm-c1x']",
          "models.cnn=['default','wide']", "classical.svm-c1.base='hog+lbp+color+svm'",
          "classical.svm-c1.params={C=1.0}", "classical.svm-c1x.base='hog6+lbp+svr'",
          "classical.svm-c1x.params={C=3.0}", "cnn.wide.base='default'", "cnn.wide.filters=[8,16,32,64]",
          "cnn.wide.epochs=2", "svm_backend='libsvm'", "features.image_size=48"]


@pytest.fixture
def config(tmp_path):
    return load_config(preset="quick", data=tmp_path, out=tmp_path / "run", overrides=MODELS)


def _table(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"image_id": [f"{i}.jpg" for i in range(n)], "path": [f"/x/{i}.jpg" for i in range(n)],
                         "age": rng.integers(1, 90, n), "gender": rng.integers(0, 2, n), "race": rng.integers(0, 5, n)})


def test_every_model_is_resolved_once_with_what_the_run_asks_of_it(config):
    specs = model_specs(config)
    assert list(specs) == ["dummy", "hog+lbp+color+svm", "svm-c1", "hog+ridge", "svm-c1x", "cnn-default", "cnn-wide"]
    colour, variant, age_variant = specs["hog+lbp+color+svm"], specs["svm-c1"], specs["svm-c1x"]
    assert colour.color == "rgb" and specs["hog+ridge"].color == "gray"  # colour features need RGB
    assert colour.image_size == specs["hog+ridge"].image_size == 48
    assert variant.base == "hog+lbp+color+svm" and variant.params == {"model__estimator__estimator__C": 1.0}
    assert variant.tasks == ("gender",) and age_variant.tasks == ("age",) and specs["dummy"].tasks == ("gender",)
    assert colour.svm_backend == "libsvm" and specs["hog+ridge"].svm_backend is None
    wide = specs["cnn-wide"]
    assert wide.kind == "cnn" and wide.base == "default" and list(wide.params["filters"]) == [8, 16, 32, 64]
    assert wide.overrides == {"filters": [8, 16, 32, 64], "epochs": 2} and wide.params["epochs"] == 2
    assert wide.row["base"] == "cnn-default" and "filters" in wide.row["summary"]
    assert variant.row["summary"] == "hog+lbp+color+svm with C=1.0"
    with pytest.raises(dataclasses.FrozenInstanceError):
        variant.base = "hog+ridge"
    # a variant's parameter is set on its base and taken out of the base's search
    from facebench.baselines.estimators import TunedEstimator

    built = variant.build("gender").get_params()
    tuned = [v for v in built.values() if isinstance(v, TunedEstimator)]
    assert built["model__estimator__estimator__C"] == 1.0 and tuned and "C" not in tuned[0].param_grid
    with pytest.raises(TypeError, match="CNN"):
        wide.build("age")


def test_the_plan_has_every_unit_with_nested_training_rows(config):
    config["trials"], config["fractions"] = 2, [0.5, 1.0]
    table = _table()
    splits = {t: make_split(table, seed=config["seed"] + t, test_size=config["test_size"]) for t in range(2)}
    plan = make_plan(config, table, splits)
    assert len(plan.units) == 2 * 2 * len(plan.specs)
    assert len({u.id for u in plan.units}) == len(plan.units)
    for u in plan.units:
        train, test = splits[u.trial]
        assert set(u.test) == set(test) and set(u.train) <= set(train) and not set(u.train) & set(u.test)
        assert u.seed == config["seed"] + u.trial and u.spec is plan.specs[u.model]
    half = {u.trial: set(u.train) for u in plan.units if u.fraction == 0.5 and u.model == "dummy"}
    whole = {u.trial: set(u.train) for u in plan.units if u.fraction == 1.0 and u.model == "dummy"}
    assert all(half[t] < whole[t] for t in (0, 1))  # fractions nested
    assert [r["name"] for r in plan.models_table()] == list(plan.specs)


def test_a_unit_s_digest_follows_what_decides_its_results(config, tmp_path):
    spec = model_specs(config)["svm-c1"]
    unit = Unit(0, 1.0, 0, spec, np.arange(10), np.arange(10, 14))
    assert unit.id == "t0_f1.0_svm-c1" and unit.digest(100) == unit.digest(100)
    assert unit.digest(100) != unit.digest(200)  # the bootstrap decides the intervals
    assert unit.digest(100) != dataclasses.replace(unit, train=np.arange(9)).digest(100)
    other = load_config(preset="quick", data=tmp_path, overrides=[*MODELS[:-3], "classical.svm-c1.params={C=3.0}",
                                                                   "svm_backend='libsvm'", "features.image_size=48"])
    assert unit.digest(100) != dataclasses.replace(unit, spec=model_specs(other)["svm-c1"]).digest(100)
    # everything but the backend of a model without an SVM is left alone
    ridge = Unit(0, 1.0, 0, model_specs(config)["hog+ridge"], np.arange(10), np.arange(10, 14))
    assert "svm_backend" not in ridge.definition(100)


def test_two_models_that_would_share_a_file_name_are_refused(tmp_path):
    config = load_config(preset="quick", data=tmp_path, overrides=[
        "models.age=['hog+ridge','hog-ridge']", "classical.hog-ridge.base='hog+ridge'"])
    table = _table()
    with pytest.raises(UserError, match="would share the file name"):
        make_plan(config, table, {0: make_split(table, seed=0, test_size=0.2)})
