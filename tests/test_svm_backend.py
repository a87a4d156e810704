"""The RBF SVMs' library (oneDAL or libsvm): the swap, the config key, portable saved models, and
classical results that are the same bit for bit however a unit is scheduled."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.svm import SVC, SVR

from facebench.baselines import TRUSTED_TYPES, make_model
from facebench.baselines import svm_backend as sb
from facebench.compare import load_config, run
from facebench.compare.planning.plan import Unit, classical_spec
from facebench.data import synthesize
from facebench.errors import UserError
from facebench.rundir import layout, saved

onedal = pytest.mark.skipif(not sb.available(), reason="scikit-learn-intelex is not installed here")


def _features(n=300, d=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    gender = (x[:, 0] + 0.5 * x[:, 1] ** 2 + rng.normal(size=n) > 0.5).astype(np.int64)
    age = np.clip(30 + 10 * x[:, 2] + 3 * x[:, 3] ** 2 + rng.normal(size=n), 1, 90)
    return x, gender, age


# --------------------------------------------------------------------------- the swap


def test_resolve_names_the_library_and_refuses_what_is_not_there(monkeypatch):
    assert sb.resolve("libsvm") == "libsvm"
    assert sb.resolve("auto") == ("onedal" if sb.available() else "libsvm")
    with pytest.raises(ValueError, match="svm_backend must be one of auto, onedal, libsvm"):
        sb.resolve("cuml")
    monkeypatch.setitem(sb._ONEDAL, "classes", {})  # as on a machine without sklearnex
    assert sb.resolve("auto") == "libsvm"
    with pytest.raises(ValueError, match="pip install scikit-learn-intelex"):
        sb.resolve("onedal")


@onedal
def test_use_backend_swaps_every_rbf_svm_and_keeps_its_parameters():
    for name, task in (("hog+lbp+svm", "gender"), ("hog6+lbp+svr", "age"), ("pixels+pca+svm", "gender")):
        model = make_model(name, task, random_state=0)
        before = model.get_params(deep=True)
        assert sb.backend_of(model) == "libsvm"
        sb.use_backend(model, "onedal")
        assert sb.backend_of(model) == "onedal"
        (key,) = sb.svm_params(model)
        swapped = model.get_params(deep=True)[key]
        assert type(swapped).__module__.startswith("sklearnex.")
        assert {k: v for k, v in swapped.get_params().items() if k != "n_jobs"} == before[key].get_params()
        sb.use_backend(model, "libsvm")
        assert type(model.get_params(deep=True)[key]) in (SVC, SVR)
    ridge = make_model("hog+ridge", "age")
    assert sb.use_backend(ridge, "onedal") is ridge and sb.backend_of(ridge) is None
    # libsvm's Platt probabilities and other kernels stay with libsvm
    assert type(sb.use_backend(SVC(probability=True), "onedal")) is SVC
    assert type(sb.use_backend(SVC(kernel="poly"), "onedal")) is SVC


@onedal
@pytest.mark.parametrize("task", ["gender", "age"])
def test_a_onedal_model_saved_portable_predicts_the_same_and_holds_trusted_types_only(task, tmp_path):
    from facebench.baselines import predict_outputs
    from facebench.baselines.building import make_head

    x, gender, age = _features()
    pairs = np.concatenate([x, x[:, ::-1]], axis=1)  # what HFlipPairs gives the head: [face, mirror]
    y = gender if task == "gender" else age
    head = sb.use_backend(make_head("hog+svm" if task == "gender" else "hog6+lbp+svr", task, random_state=0),
                          "onedal")
    head.fit(pairs, y)
    fitted_by_onedal = predict_outputs(head, pairs, task)
    path = saved.save_classical(tmp_path / "model.skops", {"svm_backend": "onedal"}, {task: sb.portable(head)})
    meta, loaded = saved.load_classical(path, TRUSTED_TYPES)  # the trusted-types check, unchanged
    assert meta["svm_backend"] == "onedal" and sb.backend_of(loaded[task]) == "libsvm"
    again = predict_outputs(loaded[task], pairs, task)
    key = "p_female" if task == "gender" else "age"
    np.testing.assert_allclose(again[key], fitted_by_onedal[key], rtol=1e-5, atol=1e-5)
    if task == "gender":  # the decision, hence accuracy and ROC-AUC, are the oneDAL model's
        assert (again["gender"] == fitted_by_onedal["gender"]).mean() > 0.995


@onedal
def test_onedal_decision_values_mean_what_libsvm_s_do():
    """Positive decision: the second class; the same ordering of faces, so ROC-AUC and the detector agree."""
    from sklearn.metrics import roc_auc_score

    x, gender, _ = _features(n=600)
    ref = SVC(C=3.0).fit(x[:400], gender[:400]).decision_function(x[400:])
    new = sb.use_backend(SVC(C=3.0), "onedal").fit(x[:400], gender[:400]).decision_function(x[400:])
    assert np.corrcoef(ref, new)[0, 1] > 0.999
    assert abs(roc_auc_score(gender[400:], ref) - roc_auc_score(gender[400:], new)) < 0.005


# --------------------------------------------------------------------------- the config key


def test_the_config_key_is_validated(tmp_path, monkeypatch):
    assert load_config(preset="quick", data=tmp_path)["svm_backend"] == "auto"
    with pytest.raises(UserError, match=r"config key 'svm_backend' = 'fast' is invalid: expected 'auto' \| 'onedal'"):
        load_config(preset="quick", data=tmp_path, overrides=["svm_backend=fast"])
    monkeypatch.setitem(sb._ONEDAL, "classes", {})
    with pytest.raises(UserError, match="svm_backend.*pip install scikit-learn-intelex"):
        load_config(preset="quick", data=tmp_path, overrides=["svm_backend=onedal"])


def test_the_backend_is_part_of_an_svm_unit_s_definition_only(tmp_path, monkeypatch):
    monkeypatch.setitem(sb._ONEDAL, "classes", {"SVC": SVC, "SVR": SVR})  # stands in for sklearnex
    configs = {b: load_config(preset="quick", data=tmp_path, overrides=[f"svm_backend={b}"])
               for b in ("auto", "onedal", "libsvm")}

    def unit(backend, model):
        return Unit(0, 1.0, 0, classical_spec(configs[backend], model, ("age",)), np.array([0, 1]), np.array([2]))

    def digest(backend, model):
        return unit(backend, model).digest(configs[backend]["bootstrap"])

    assert digest("onedal", "hog6+lbp+svr") != digest("libsvm", "hog6+lbp+svr")
    assert digest("onedal", "hog6+lbp+svr") == digest("auto", "hog6+lbp+svr")
    assert digest("onedal", "hog+ridge") == digest("libsvm", "hog+ridge")
    # libsvm's definition is the one units had before the key existed, so finished runs are reused
    assert "svm_backend" not in unit("libsvm", "hog6+lbp+svr").definition(configs["libsvm"]["bootstrap"])


# --------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces")
    synthesize(folder, n=200, seed=11, size=64)
    return folder


def _config(faces, out, *extra):
    return load_config(preset="quick", data=faces, out=out, overrides=[
        "models.gender=['pixels+pca+svm']", "models.age=['hog6+lbp+svr', 'hog+ridge']", "models.cnn=[]",
        "fractions=[1.0]", "trials=1", "bootstrap=100", *extra])


@pytest.fixture(scope="module")
def finished(faces, tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    run(_config(faces, out, "n_jobs=2"), quiet=True)
    return out


def test_the_report_s_cost_table_names_the_library_that_fitted_each_model(finished):
    from facebench.reports.sections.cost import cost_section
    from facebench.rundir.read import read_run

    table = cost_section(read_run(finished))["table"]
    keys = [c.key for c in table.columns]
    rows = {r[0].text: r[keys.index("fitted_by")].text for r in table.rows}
    library = "oneDAL" if sb.resolve("auto") == "onedal" else "libsvm"
    assert rows == {"pixels+pca+svm": library, "hog6+lbp+svr": library, "hog+ridge": "scikit-learn"}
    assert {"fit_s", "predict_s"} <= set(keys)


def test_a_damaged_unit_recomputed_alone_gives_the_same_metrics_to_the_byte(finished, faces, tmp_path):
    """Fitted in two worker processes at first, then alone in the main process on the rerun."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(finished, out)
    before = (out / layout.METRICS_FILE).read_bytes()
    timings = pd.read_csv(out / layout.TIMINGS_FILE, keep_default_na=False).set_index("model")
    expected = sb.resolve("auto")
    assert timings.loc["hog6+lbp+svr", "svm_backend"] == expected
    assert timings.loc["hog+ridge", "svm_backend"] == ""
    meta, _ = saved.load_classical(layout.unit_dir(out, "t0_f1.0_hog6-lbp-svr") / layout.CLASSICAL_MODEL,
                                   TRUSTED_TYPES)
    assert meta["svm_backend"] == expected
    assert f"RBF SVMs fitted by {'oneDAL' if expected == 'onedal' else 'libsvm'}" in (out / "run.log").read_text()
    for uid in ("t0_f1.0_hog6-lbp-svr", "t0_f1.0_pixels-pca-svm"):
        metrics = layout.unit_dir(out, uid) / layout.UNIT_METRICS
        metrics.write_bytes(metrics.read_bytes()[:100])
        run(_config(faces, out, "n_jobs=2"), quiet=True)
        assert "1 to run" in (out / "run.log").read_text().splitlines()[-1] or \
            any("1 to run" in line for line in (out / "run.log").read_text().splitlines()[-20:])
        assert (out / layout.METRICS_FILE).read_bytes() == before, uid


@onedal
def test_changing_the_backend_recomputes_the_svm_units_only(finished, faces, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(finished, out)  # the module's run: svm_backend 'auto', which is oneDAL here
    before = pd.read_csv(out / layout.TIMINGS_FILE).set_index("model")
    assert before.loc["hog6+lbp+svr", "svm_backend"] == before.loc["pixels+pca+svm", "svm_backend"] == "onedal"
    run(_config(faces, out, "n_jobs=1", "svm_backend=libsvm"), quiet=True)
    log = (out / "run.log").read_text()
    assert "3 unit(s) planned, 1 reused, 2 to run" in log
    timings = pd.read_csv(out / layout.TIMINGS_FILE).set_index("model")
    assert timings.loc["hog6+lbp+svr", "svm_backend"] == "libsvm"


@onedal
def test_a_onedal_model_is_predicted_on_a_machine_without_sklearnex(finished, faces):
    out = finished  # svm_backend 'auto': oneDAL fitted its SVMs here (read only: predict writes nothing there)
    assert pd.read_csv(out / layout.TIMINGS_FILE).set_index("model").loc["pixels+pca+svm", "svm_backend"] == "onedal"
    face = str(next(faces.glob("*.jpg")))
    script = ("import sys; sys.modules['sklearnex'] = None; sys.modules['daal4py'] = None; sys.modules['onedal'] = None\n"
              "from facebench.cli import main\n"
              f"code = main(['predict', '--run', {str(out)!r}, '--model', 'pixels+pca+svm', {face!r}])\n"
              "assert 'sklearnex' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
              "sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"gender"' in done.stdout or '"p_female"' in done.stdout
