"""The benchmark runner end to end on small synthetic faces: contract, determinism, resume, Dask."""

from __future__ import annotations

import gzip
import json
import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import facebench.compare.running.unit_bodies as runner
from facebench.cli import main
from facebench.compare import load_config, run
from facebench.compare.planning.config import resolve
from facebench.compare.running import UnitsFailed
from facebench.rundir.layout import METRIC_COLUMNS, PRED_COLUMNS, TIMING_COLUMNS
from facebench.data import synthesize
from facebench.errors import UserError

FAST = [
    "models.gender=['dummy', 'hog+linsvm']",
    "models.age=['dummy', 'hog+ridge']",
    "models.cnn=[]",
    "fractions=[0.5, 1.0]",
    "trials=2",
    "bootstrap=200",
    "n_jobs=1",
]


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    synthesize(folder, n=240, seed=5, size=64)
    return folder


class PowerCut(BaseException):
    """Stands for Ctrl-C or a killed process: not an error a unit can catch."""


def _config(faces, out, extra=()):
    return load_config(preset="quick", data=faces, out=out, overrides=[*FAST, *extra])


@pytest.fixture(scope="module")
def finished(faces, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    run(_config(faces, out), quiet=True)
    return out


def test_run_directory_contract(finished):
    for name in ("run.json", "config.toml", "audit.json", "split.csv", "models.csv", "predictions.csv.gz",
                 "metrics.csv", "timings.csv", "paired.csv", "run.log"):
        assert (finished / name).exists(), name
    pred = pd.read_csv(finished / "predictions.csv.gz")
    assert list(pred.columns) == PRED_COLUMNS
    split = pd.read_csv(finished / "split.csv")
    n_test = (split[split.trial == 0].part == "test").sum()
    # trials x fractions x models x test images
    assert len(pred) == 2 * 2 * 3 * n_test
    assert set(pred["model"]) == {"dummy", "hog+linsvm", "hog+ridge"}
    assert pred.loc[pred.model == "hog+ridge", "p_female"].isna().all()
    assert pred.loc[pred.model == "hog+linsvm", "age_pred"].isna().all()
    assert pred.loc[pred.model == "hog+linsvm", "gender_pred"].isin([0, 1]).all()
    metrics = pd.read_csv(finished / "metrics.csv")
    assert list(metrics.columns) == METRIC_COLUMNS
    assert list(pd.read_csv(finished / "timings.csv").columns) == TIMING_COLUMNS
    audit = json.loads((finished / "audit.json").read_text())
    assert audit["found"] == 240 and audit["used"] == 240 and audit["skipped"] == []
    assert audit["synthetic"] is True
    info = json.loads((finished / "run.json").read_text())
    assert info["format"] == 2 and info["finished"] and info["failed_units"] == []
    assert info["machine"]["usable_cores"] >= 1 and "numpy" in info["versions"]
    assert sorted(p.name for p in (finished / "units").iterdir())[:2] == ["t0_f0.5_dummy", "t0_f0.5_hog-linsvm"]
    assert (finished / "units" / "t0_f0.5_hog-linsvm" / "model.skops").is_file()
    table = pd.read_csv(finished / "models.csv")
    assert table.set_index("name").loc["hog+linsvm", "family"] == "hand-crafted"


def test_every_model_sees_the_same_split(finished):
    pred = pd.read_csv(finished / "predictions.csv.gz")
    split = pd.read_csv(finished / "split.csv")
    for trial, group in pred.groupby("trial"):
        test_ids = set(split[(split.trial == trial) & (split.part == "test")].image_id)
        for _, sub in group.groupby(["fraction", "model"]):
            assert set(sub.image_id) == test_ids
    t0 = set(split[(split.trial == 0) & (split.part == "test")].image_id)
    t1 = set(split[(split.trial == 1) & (split.part == "test")].image_id)
    assert t0 != t1  # each trial has its own seed and split


def test_metrics_match_predictions(finished):
    pred = pd.read_csv(finished / "predictions.csv.gz")
    metrics = pd.read_csv(finished / "metrics.csv")
    sub = pred[(pred.trial == 1) & (pred.fraction == 1.0) & (pred.model == "hog+ridge")]
    mae = metrics.query("trial == 1 and fraction == 1.0 and model == 'hog+ridge' and group == 'all' "
                        "and metric == 'mae'")["value"].item()
    assert mae == pytest.approx((sub.age_pred - sub.age).abs().mean(), abs=1e-3)
    assert (metrics["fraction"].unique() == [0.5, 1.0]).all()


def test_learns_above_dummy(finished):
    m = pd.read_csv(finished / "metrics.csv").query("group == 'all' and fraction == 1.0")
    acc = m[m.metric == "accuracy"].groupby("model")["value"].median()
    mae = m[m.metric == "mae"].groupby("model")["value"].median()
    assert acc["hog+linsvm"] > acc["dummy"] + 0.05
    assert mae["hog+ridge"] < mae["dummy"] - 1


def test_resume_after_interruption_and_same_config_same_seed_same_results(faces, finished, tmp_path, monkeypatch):
    """A run cut short and resumed, then every unit computed again (force): each time the finished run's metrics."""
    real = runner.run_classical_unit
    calls = []
    dying = [True]

    def flaky(unit, *args, **kw):
        if dying[0] and len(calls) == 5:
            raise PowerCut  # the run dies after 5 units
        calls.append(unit.id)
        return real(unit, *args, **kw)

    monkeypatch.setattr(runner, "run_classical_unit", flaky)
    with pytest.raises(PowerCut):
        run(_config(faces, tmp_path), quiet=True)
    assert len(list((tmp_path / "units").glob("t*"))) == 5
    first = list(calls)
    calls.clear()
    dying[0] = False
    run(_config(faces, tmp_path), quiet=True)
    assert len(calls) == 12 - 5 and not set(calls) & set(first)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "metrics.csv"), pd.read_csv(finished / "metrics.csv"))
    calls.clear()
    run(_config(faces, tmp_path), quiet=True, force=True)
    assert len(calls) == 12
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "metrics.csv"), pd.read_csv(finished / "metrics.csv"))


def test_changed_split_in_same_directory_is_refused(faces, finished):
    with pytest.raises(UserError, match=r"other splits \(seed: 0 -> 7\); use --out"):
        run(_config(faces, finished, ["seed=7"]), quiet=True)


def test_dask_cluster_gives_the_same_results(faces, finished, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        config = _config(faces, tmp_path, [f"dask='{cluster.scheduler_address}'"])
        run(config, quiet=True)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "metrics.csv"), pd.read_csv(finished / "metrics.csv"))


def test_image_count_fraction_and_max_images(faces, tmp_path):
    config = _config(faces, tmp_path, ["fractions=[50, 1.0]", "trials=1", "data.max_images=200",
                                       "models.gender=['dummy']", "models.age=[]"])
    run(config, quiet=True)
    timings = pd.read_csv(tmp_path / "timings.csv")
    assert sorted(timings.n_train) == [50, 160]
    assert (timings.n_test == 40).all()


# --------------------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["trails=3"], "'trails' is unknown (did you mean 'trials'?)"),
        (["trials=0"], "'trials' = 0 is invalid: expected 1-100"),
        (["fractions=[0.5, 2.5]"], "'fractions' = 2.5 is invalid"),
        (["models.gender=['hog+svr']"], "'models.gender' = 'hog+svr' is invalid: expected one of"),
        (["models.cnn=['resnet']"], "'models.cnn' = 'resnet' is invalid"),
        (["features.color=cmyk"], "'features.color' = 'cmyk'"),
        (["cnn.default.epoch=3"], "'cnn.default.epoch' is unknown (did you mean 'epochs'?)"),
        (["cnn.default.epochs='many'"], "'cnn.default.epochs' = 'many' is invalid"),
        (["trials"], "expected KEY=VALUE"),
    ],
)
def test_bad_config_names_key_and_value(overrides, message):
    with pytest.raises(UserError) as err:
        load_config(preset="quick", data="x", overrides=overrides)
    assert message in str(err.value)


def test_unknown_preset():
    with pytest.raises(UserError, match="preset 'fast' is unknown; choose one of: quick, standard, seed, full"):
        load_config(preset="fast")


def test_config_file_and_presets(tmp_path):
    f = tmp_path / "my.toml"
    f.write_text('preset = "seed"\ntrials = 2\n[models]\nage = ["hog+ridge"]\n')
    c = load_config(path=f, overrides=["seed=3"], data="faces")
    assert (c["preset"], c["trials"], c["seed"], c["models"]["age"]) == ("seed", 2, 3, ["hog+ridge"])
    assert c["models"]["cnn"] == ["seed"] and c["cnn"]["seed"]["image_size"] == 128
    (tmp_path / "bad.toml").write_text("trials = [")
    with pytest.raises(UserError, match="not valid TOML"):
        load_config(path=tmp_path / "bad.toml")
    for name in ("quick", "standard", "seed", "full"):
        assert load_config(preset=name)["preset"] == name


def test_cli_user_errors_exit_2_with_one_line(tmp_path, capsys):
    assert main(["run", "--data", str(tmp_path / "missing"), "--preset", "quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such file or folder" in err
    assert main(["run", "--data", str(tmp_path), "--set", "trails=2"]) == 2
    assert "did you mean 'trials'" in capsys.readouterr().err
    assert main(["run", "--data", str(tmp_path), "--preset", "quick", "--out", str(tmp_path / "o")]) == 2
    assert "no usable image" in capsys.readouterr().err


def test_predictions_file_is_gzip(finished):
    with gzip.open(finished / "predictions.csv.gz", "rt") as fh:
        assert fh.readline().startswith("trial,fraction,model")
    np.testing.assert_array_equal(pd.read_csv(finished / "paired.csv")["trial"].unique(), [0, 1])


def test_cnn_unit_trains_predicts_and_keeps_its_history(tiny_run):
    """The shared real run (conftest.tiny_run): the dummy models and a two-epoch ``default`` CNN at 32 px."""
    out = tiny_run
    pred = pd.read_csv(out / "predictions.csv.gz")
    cnn = pred[pred.model == "cnn-default"]
    assert len(cnn) == len(pred[pred.model == "dummy"]) > 0
    assert cnn["age_pred"].notna().all() and cnn["p_female"].between(0, 1).all()
    history = pd.read_csv(out / "histories" / "t0_f1.0_cnn-default.csv")
    assert len(history) == 2 and {"epoch", "loss", "val_loss"} <= set(history.columns)  # one row per epoch
    assert (out / "units" / "t0_f1.0_cnn-default" / "model.keras").exists()
    timings = pd.read_csv(out / "timings.csv").set_index("model")
    assert timings.loc["cnn-default", "task"] == "both" and timings.loc["cnn-default", "fit_s"] > 0


def test_a_failing_unit_costs_only_itself(faces, finished, tmp_path, monkeypatch):
    real = runner.run_classical_unit

    def broken(unit, *args, **kw):
        if unit.id == "t1_f0.5_hog-ridge":
            raise ValueError("singular matrix")
        return real(unit, *args, **kw)

    monkeypatch.setattr(runner, "run_classical_unit", broken)
    with pytest.raises(UnitsFailed, match="1 unit\\(s\\) failed: t1_f0.5_hog-ridge: ValueError: singular matrix"):
        run(_config(faces, tmp_path), quiet=True)
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert len(metrics.groupby(["trial", "fraction", "model"])) == 11
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["failed_units"] == [{"unit": "t1_f0.5_hog-ridge", "error": "ValueError: singular matrix"}]
    assert "singular matrix" in (tmp_path / "run.log").read_text()
    monkeypatch.setattr(runner, "run_classical_unit", real)
    run(_config(faces, tmp_path), quiet=True)  # the rerun computes the missing unit
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "metrics.csv"), pd.read_csv(finished / "metrics.csv"))


def test_features_that_cannot_take_the_images_are_a_user_error(faces, tmp_path):
    config = _config(faces, tmp_path, ["features.color=rgb", "models.gender=['hog+lbp+svm']", "models.age=[]",
                                       "trials=1", "fractions=[1.0]"])
    with pytest.raises(UserError, match="model 'hog\\+lbp\\+svm' cannot use features.image_size=64, "
                                        "features.color='rgb'"):
        run(config, quiet=True)


def test_run_takes_a_partial_config(faces, tmp_path):
    config = {"preset": "quick", "data": {"path": str(faces)}, "out": str(tmp_path), "trials": 1,
              "fractions": [1.0], "bootstrap": 0, "n_jobs": 1,
              "models": {"gender": ["dummy"], "age": ["dummy"], "cnn": []}}
    run_dir = run(config, quiet=True)
    assert run_dir == tmp_path
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert set(metrics["model"]) == {"dummy"} and metrics["ci_low"].isna().all()


def test_a_colour_model_gets_rgb_faces_in_the_run_and_in_predict(faces, tmp_path, capsys):
    from facebench.baselines import TRUSTED_TYPES
    from facebench.cli import predict_cli
    from facebench.rundir.saved import load_classical

    config = _config(faces, tmp_path, ["trials=1", "fractions=[1.0]", "models.gender=['hog+lbp+color+svm']",
                                       "models.age=['hog+ridge']"])
    run(config, quiet=True)
    meta, _ = load_classical(tmp_path / "units" / "t0_f1.0_hog-lbp-color-svm" / "model.skops", TRUSTED_TYPES)
    assert meta["features"]["color"] == "rgb"  # while the run decodes gray for the others
    meta, _ = load_classical(tmp_path / "units" / "t0_f1.0_hog-ridge" / "model.skops", TRUSTED_TYPES)
    assert meta["features"]["color"] == "gray"
    pred = pd.read_csv(tmp_path / "predictions.csv.gz")
    colour = pred[pred.model == "hog+lbp+color+svm"]
    assert colour["p_female"].notna().all() and len(colour) == (pred.model == "hog+ridge").sum()
    row = colour.iloc[0]
    assert predict_cli(tmp_path, [row["path"]], models=["hog+lbp+color+svm"], detect=False) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[0])
    assert out["models"]["hog+lbp+color+svm"]["p_female"] == pytest.approx(row["p_female"], abs=0.05)


@pytest.mark.parametrize("backend", ["libsvm", "onedal"])
def test_classical_units_start_longest_first_in_the_order_the_runner_dispatches(faces, tmp_path, monkeypatch,
                                                                                 backend):
    """The order the runner hands its workers, for units of the full UTKFace's sizes (nothing is fitted)."""
    import facebench.compare.running.executor as run_module
    from facebench.baselines import svm_backend

    if backend == "onedal" and not svm_backend.available():
        pytest.skip("scikit-learn-intelex is not installed here")
    from facebench.compare.planning.plan import Unit, model_specs

    config = resolve(_config(faces, tmp_path, [f"svm_backend='{backend}'", "models.cnn=['default']",
                                                "models.gender=['hog+lbp+svm','dummy']",
                                                "models.age=['hog+ridge','dummy','hog6+lbp+svr']"]))
    specs = model_specs(config)
    big, small, test = np.arange(19_000), np.arange(4_700), np.arange(19_000, 23_000)
    todo = [Unit(0, 1.0, 0, specs["hog+ridge"], big, test),
            Unit(0, 0.25, 0, specs["hog+lbp+svm"], small, test),
            Unit(0, 1.0, 0, specs["dummy"], big, test),
            Unit(0, 1.0, 0, specs["cnn-default"], big, test),
            Unit(0, 1.0, 0, specs["hog6+lbp+svr"], big, test)]
    dispatched = []

    def record(jobs, config):
        for fn, args, kwargs in jobs:
            dispatched.append(args[1].model)
            yield args[1].id

    monkeypatch.setattr(run_module, "prepare_features", lambda table, specs, workers: {s.name: {} for s in specs})
    monkeypatch.setattr(run_module, "decoded_for_cnn", lambda table, spec: (np.zeros((1, 64, 64), np.uint8), 0.0))
    monkeypatch.setattr(run_module, "parallel", record)
    table = pd.DataFrame({"image_id": ["a"], "path": ["a"], "age": [30], "gender": [0], "race": [0]})
    assert run_module.execute(todo, table, config, tmp_path, quiet=True) == []
    if backend == "libsvm":  # a 19k-face libsvm SVR (~2 min) before the ridge model (~1 min)
        assert dispatched == ["hog6+lbp+svr", "hog+ridge", "hog+lbp+svm", "dummy", "cnn-default"]
    else:  # oneDAL fits the same SVR in about 30 s: the ridge model goes first
        assert dispatched == ["hog+ridge", "hog6+lbp+svr", "hog+lbp+svm", "dummy", "cnn-default"]


def test_a_model_registered_from_python_runs_like_a_built_in(faces, tmp_path):
    from facebench.baselines import register_model, registry

    register_model("lbp+linsvm", features=("lbp",), head="linsvm", tasks=("gender",), summary="LBP -> linear SVM")
    try:
        config = _config(faces, tmp_path, ["trials=1", "models.gender=['dummy', 'lbp+linsvm']",
                                           "models.age=[]", "n_jobs=2"])  # the fits run in worker processes
        run(config, quiet=True)
        metrics = pd.read_csv(tmp_path / "metrics.csv")
        acc = metrics.query("group == 'all' and metric == 'accuracy' and fraction == 1.0").set_index("model")
        assert acc.loc["lbp+linsvm", "value"] > acc.loc["dummy", "value"]
        table = pd.read_csv(tmp_path / "models.csv").set_index("name")
        assert table.loc["lbp+linsvm", "summary"] == "LBP -> linear SVM"
    finally:
        for table in (registry._REGISTERED, registry.MODELS, registry.MODEL_TASKS):
            table.pop("lbp+linsvm", None)


def test_cnn_training_reports_every_epoch(tiny_run, caplog):
    # the shared real run logged one line per epoch of its two-epoch CNN
    lines = [line.split("facebench.run: ", 1)[1] for line in (tiny_run / "run.log").read_text().splitlines()
             if "cnn-default trial 0 fraction 1: epoch " in line]
    assert [line.split(": ", 1)[1].split(",")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "val age MAE" in lines[0] and "s/epoch" in lines[0] and "left" in lines[0]
    assert "left" not in lines[1]
    # and the run's listeners (the progress bar) are told each line as it is logged
    unit = SimpleNamespace(model="cnn-default", trial=0, fraction=1.0, spec=SimpleNamespace(params={"epochs": 2}))
    progress = runner._epoch_progress(unit)
    seen = []
    runner.EPOCH_LISTENERS.append(seen.append)
    try:
        with caplog.at_level(logging.INFO, logger="facebench"):
            progress.on_train_begin()
            for epoch in (0, 1):
                progress.on_epoch_begin(epoch)
                progress.on_epoch_end(epoch, {"loss": 1.5, "val_loss": 1.25, "val_age_mae": 9.5,
                                              "val_gender_accuracy": 0.625})
    finally:
        runner.EPOCH_LISTENERS.remove(seen.append)
    assert [line.split(": ", 1)[1].split(",")[0] for line in seen] == ["epoch 1/2", "epoch 2/2"]
    assert "loss 1.500, val loss 1.250, val age MAE 9.50, val gender acc 0.625" in seen[0]
    assert "s/epoch" in seen[0] and "left" in seen[0] and "left" not in seen[1]
    assert [r.getMessage() for r in caplog.records if "epoch " in r.getMessage()] == seen
