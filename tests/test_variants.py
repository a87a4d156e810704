"""Named variants in a run config, and run directories that grow: only new or changed units are computed."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

import facebench.compare.running.unit_bodies as unit_bodies
from facebench.compare import load_config, run
from facebench.compare.planning.config import resolve
from facebench.compare.planning.variants import build_classical
from facebench.data import synthesize
from facebench.errors import UserError
from facebench.rundir import saved

BASE = [
    "models.gender=['hog+linsvm']",
    "models.age=['hog+ridge', 'ridge-o6']",
    "models.cnn=[]",
    "fractions=[1.0]",
    "trials=1",
    "bootstrap=100",
    "n_jobs=1",
    "classical.ridge-o6.base='hog+ridge'",
    "classical.ridge-o6.params={orientations = 6}",
    "data.label_errors=keep",
    "data.label_detector='hog+lbp+color'",  # the hand-crafted detector, whose name and cuts these tests check
]


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces")
    synthesize(folder, n=160, seed=2, size=64)
    return folder


@pytest.fixture
def counted(monkeypatch):
    """The ids of the classical units computed, in order."""
    calls = []
    real = unit_bodies.run_classical_unit

    def counting(unit, *args, **kw):
        calls.append(unit.id)
        return real(unit, *args, **kw)

    monkeypatch.setattr(unit_bodies, "run_classical_unit", counting)
    return calls


def _config(faces, out, extra=()):
    return load_config(preset="quick", data=faces, out=out, overrides=[*BASE, *extra])


# --------------------------------------------------------------------------- variants


def test_classical_variant_sets_its_parameter_and_leaves_the_base_alone():
    config = resolve({"preset": "quick", "models": {"age": ["hog6+lbp+svr", "svr-c10"]},
                      "classical": {"svr-c10": {"base": "hog6+lbp+svr", "params": {"C": 10.0}}}})
    assert config["classical"]["svr-c10"]["params"] == {"model__estimator__estimator__C": 10.0}
    variant = build_classical(config, "svr-c10", "age")
    tuned = variant.named_steps["model"]
    assert tuned.estimator.estimator.C == 10.0
    assert tuned.param_grid == {}  # the value given is used, not searched over
    base = build_classical(config, "hog6+lbp+svr", "age").named_steps["model"]
    assert base.param_grid == {"estimator__C": [10.0, 30.0, 100.0]}


@pytest.mark.parametrize("classical, message", [
    ({"v": {"base": "hog+rige"}}, r"'classical.v.base' = 'hog\+rige' is invalid \(did you mean 'hog\+ridge'\?\)"),
    ({"v": {"base": "hog+ridge", "params": {"orientation": 6}}},
     r"'classical.v.params.orientation' is unknown in 'hog\+ridge'; close: features__orientations"),
    ({"v": {"base": "hog+linsvm", "params": {"C": -1.0}}}, r"invalid for 'hog\+linsvm': The 'C' parameter"),
    ({"v": {"base": "hog+ridge", "param": {}}}, r"'classical.v.param' is unknown; allowed: base, params"),
    ({"hog+ridge": {"base": "hog+ridge"}}, r"is a registry model already"),
])
def test_bad_classical_variant_is_one_line(classical, message):
    with pytest.raises(UserError, match=message) as info:
        resolve({"preset": "quick", "classical": classical})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("cnn, models, message", [
    ({"wide": {"base": "defualt"}}, ["wide"], r"'cnn.wide.base' = 'defualt' is invalid: expected one of seed, default"),
    ({"wide": {"filters": [8, 16]}}, ["wide"], r"'cnn.wide' .* a variant with base"),
    ({"wide": {"base": "default", "filterz": [8]}}, ["wide"], r"'cnn.wide.filterz' is unknown"),
    ({"default": {"base": "seed"}}, ["default"], r"'cnn.default.base' .* is a CNN preset"),
    ({}, ["wide"], r"'models.cnn' = 'wide' is invalid"),
])
def test_bad_cnn_variant_is_one_line(cnn, models, message):
    with pytest.raises(UserError, match=message):
        resolve({"preset": "quick", "cnn": cnn, "models": {"cnn": models}})


def test_variant_is_a_model_like_any_other(grown):
    """In the module's run of BASE (``grown``, read only): its own row, metrics, paired tests and parameter."""
    models = saved.read_models_table(grown).set_index("name")
    assert models.loc["ridge-o6", "base"] == "hog+ridge"
    assert models.loc["ridge-o6", "params"] == {"features__orientations": 6}
    metrics = pd.read_csv(grown / "metrics.csv")
    mae = metrics.query("metric == 'mae' and group == 'all'").set_index("model")["value"]
    assert set(mae.index) == {"hog+ridge", "ridge-o6"} and mae["hog+ridge"] != mae["ridge-o6"]
    paired = pd.read_csv(grown / "paired.csv")
    assert {"hog+ridge", "ridge-o6"} <= set(paired["model_a"]) | set(paired["model_b"])
    # the saved variant carries its own parameter
    from facebench.baselines import TRUSTED_TYPES

    _, estimators = saved.load_classical(next((grown / "units").glob("*ridge-o6")) / "model.skops", TRUSTED_TYPES)
    assert estimators["age"].named_steps["features"].orientations == 6


# --------------------------------------------------------------------------- runs that grow


@pytest.fixture(scope="module")
def grown(faces, tmp_path_factory):
    out = tmp_path_factory.mktemp("grown")
    run(_config(faces, out), quiet=True)
    return out


def _copy(src, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    return dst


def test_adding_a_trial_computes_only_its_units(faces, grown, tmp_path, counted):
    out = _copy(grown, tmp_path)
    run(_config(faces, out, ["trials=2"]), quiet=True)
    assert sorted(counted) == ["t1_f1.0_hog-linsvm", "t1_f1.0_hog-ridge", "t1_f1.0_ridge-o6"]
    before = pd.read_csv(grown / "metrics.csv")
    after = pd.read_csv(out / "metrics.csv")
    pd.testing.assert_frame_equal(after[after.trial == 0].reset_index(drop=True), before)


def test_adding_a_model_and_a_fraction_computes_only_those(faces, grown, tmp_path, counted):
    out = _copy(grown, tmp_path)
    run(_config(faces, out, ["models.age=['hog+ridge', 'ridge-o6', 'lbp+ridge']"]), quiet=True)
    assert counted == ["t0_f1.0_lbp-ridge"]
    counted.clear()
    run(_config(faces, out, ["models.age=['hog+ridge', 'ridge-o6', 'lbp+ridge']", "fractions=[0.5, 1.0]"]),
        quiet=True)
    assert sorted(counted) == ["t0_f0.5_hog-linsvm", "t0_f0.5_hog-ridge", "t0_f0.5_lbp-ridge", "t0_f0.5_ridge-o6"]


def test_changing_a_variant_recomputes_only_its_units(faces, grown, tmp_path, counted):
    out = _copy(grown, tmp_path)
    run(_config(faces, out, ["classical.ridge-o6.params={orientations = 12}"]), quiet=True)
    assert counted == ["t0_f1.0_ridge-o6"]
    counted.clear()
    run(_config(faces, out, ["classical.ridge-o6.params={orientations = 12}"]), quiet=True)
    assert counted == []  # the same config again: everything reused


@pytest.mark.parametrize("change, shown", [
    ("test_size=0.3", "test_size: 0.2 -> 0.3"),
    ("data.max_images=100", "data.max_images: 0 -> 100"),
])
def test_a_change_of_splits_is_refused(faces, grown, change, shown):
    with pytest.raises(UserError, match=rf"other splits \({shown}\); use --out for a new run directory"):
        run(_config(faces, grown, [change]), quiet=True)


def test_changed_images_under_a_run_are_refused(faces, grown, tmp_path):
    data = tmp_path / "faces"
    shutil.copytree(faces, data)
    out = _copy(grown, tmp_path)
    config = _config(data, out)
    config["data"]["path"] = str(faces)  # same path spelling as the finished run, other images behind it
    victim = sorted(faces.glob("*.jpg"))[0]
    moved = tmp_path / victim.name
    shutil.move(victim, moved)
    try:
        with pytest.raises(UserError, match="another set of images"):
            run(config, quiet=True)
    finally:
        shutil.move(moved, victim)


# --------------------------------------------------------------------------- label errors in a run


def test_run_looks_for_label_errors_and_drop_train_leaves_them_out(faces, grown, tmp_path, counted):
    from facebench.rundir.label_files import read_label_issues, read_label_metrics

    out = _copy(grown, tmp_path)
    issues = read_label_issues(out)
    assert issues is not None and set(issues.part) <= {"train", "test"}
    assert read_label_metrics(out) is not None
    split = pd.read_csv(out / "split.csv", dtype={"image_id": str})
    test_ids = set(split[(split.trial == 0) & (split.part == "test")].image_id)
    doubted_train = set(issues[(issues.trial == 0) & (issues.part == "train")].image_id)
    assert doubted_train and not doubted_train & test_ids
    run(_config(faces, out, ["data.label_errors='drop-train'"]), quiet=True)
    assert len(counted) == 3  # every model's training rows changed
    timings = pd.read_csv(out / "timings.csv")
    before = pd.read_csv(grown / "timings.csv")
    assert (timings.n_train == before.n_train - len(doubted_train)).all()
    assert (timings.n_test == before.n_test).all()
    pred = pd.read_csv(out / "predictions.csv.gz", dtype={"image_id": str})
    assert set(pred.image_id) == test_ids  # the test part is untouched


def test_the_label_thresholds_come_from_the_config_and_a_new_rule_judges_again(faces, grown, tmp_path, counted):
    import json

    from facebench.rundir.label_files import read_label_issues

    out = _copy(grown, tmp_path)
    before = read_label_issues(out)
    recorded = json.loads((out / "run.json").read_text())["label_errors"]["detector"]
    from facebench.baselines.svm_backend import resolve

    fitted_by = "; SVMs by onedal in float32" if resolve("auto") == "onedal" else ""  # libsvm: named as before the key
    assert recorded == ("hog+lbp+color pca256 svc, self-confidence < 0.4; hog+lbp+color pca256 svr, "
                        f"residual > max(3 sd, 5 years){fitted_by}")
    run(_config(faces, out, ["data.label_gender_threshold=0.2", "data.label_age_k=6.0"]), quiet=True)
    after = read_label_issues(out)
    assert not counted  # with "keep", the models' units stand
    for task in ("gender", "age"):
        fewer, more = (set(f[f.task == task].image_id) for f in (after, before))
        assert fewer <= more and len(fewer) < len(more), task  # stricter rules, nested suspects
    assert (after[after.task == "gender"].confidence > 0.8).all()
    assert "< 0.2;" in json.loads((out / "run.json").read_text())["label_errors"]["detector"]
    for key, bad in (("label_gender_threshold", "1.0"), ("label_age_k", "0"), ("label_age_min_years", "-1")):
        with pytest.raises(UserError, match=f"data.{key}"):
            resolve(_config(faces, tmp_path / "x", [f"data.{key}={bad}"]))


def test_labels_section_renders_in_headless_chromium(grown, tmp_path):
    from facebench.reports import write_report
    from test_browser import CHROMIUM, _watched_page

    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    page_file = write_report(_copy(grown, tmp_path))
    with _watched_page() as (page, requests, problems):
        page.goto(page_file.as_uri(), wait_until="load")
        section = page.locator("section#labels")
        visible = section.is_visible()
        text = section.inner_text()
        broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length")
    assert visible and "sensitivity analysis" in text and "Paired tests without the suspected" in text
    assert not problems and broken == 0
    assert not [u for u in requests if not u.startswith(("file:", "data:"))]


def test_label_errors_off_writes_no_label_files(faces, tmp_path):
    run(_config(faces, tmp_path, ["data.label_errors='off'"]), quiet=True)
    assert not (tmp_path / "label_issues.csv").exists() and not (tmp_path / "label_metrics.csv").exists()


def test_a_reviewed_list_of_files_is_left_out_with_data_exclude(faces, grown, tmp_path):
    """label_issues.csv (or any CSV with image_id) fed back: the run leaves those files out, and says so."""
    issues = pd.read_csv(grown / "label_issues.csv", dtype={"image_id": str})
    listed = tmp_path / "exclude.csv"
    issues[issues.part == "train"].to_csv(listed, index=False)
    out = tmp_path / "clean"
    run(_config(faces, out, [f"data.exclude='{listed}'"]), quiet=True)
    split = pd.read_csv(out / "split.csv", dtype={"image_id": str})
    assert not set(split.image_id) & set(issues[issues.part == "train"].image_id)
    audit = __import__("json").loads((out / "audit.json").read_text())
    assert sum("data.exclude" in s["reason"] for s in audit["skipped"]) == issues[issues.part == "train"].image_id.nunique()
    with pytest.raises(UserError, match="other splits"):
        run(_config(faces, grown, [f"data.exclude='{listed}'"]), quiet=True)
    bad = tmp_path / "bad.csv"
    bad.write_text("name\nx.jpg\n")
    with pytest.raises(UserError, match="expected an image_id"):
        run(_config(faces, tmp_path / "b", [f"data.exclude='{bad}'"]), quiet=True)


def test_a_cnn_parameter_added_later_leaves_the_definition_of_older_units_alone(faces, tmp_path):
    from facebench.compare.planning.plan import LATER_CNN_KEYS, Unit, cnn_spec

    def unit(config):
        return Unit(0, 1.0, 0, cnn_spec(config, "default"), np.array([0, 1]), np.array([2]))

    plain = resolve(_config(faces, tmp_path / "a", ["models.cnn=['default']"]))
    same = resolve(_config(faces, tmp_path / "b", ["models.cnn=['default']", "cnn.default.precision='float32'"]))
    other = resolve(_config(faces, tmp_path / "c", ["models.cnn=['default']", "cnn.default.precision='bfloat16'"]))
    assert set(LATER_CNN_KEYS) == {"precision", "ema", "age_head", "age_kl_weight", "age_sigma", "low_res_epochs",
                                   "low_res_size"}
    assert "age_head" not in unit(plain).definition(100)["params"]
    assert "precision" not in unit(plain).definition(100)["params"]
    assert unit(plain).digest(100) == unit(same).digest(100)
    assert unit(other).definition(100)["params"]["precision"] == "bfloat16"
    assert unit(plain).digest(100) != unit(other).digest(100)
