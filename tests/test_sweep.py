"""facebench sweep end to end on small synthetic faces: points, resume, failures, the test part, best.toml."""

from __future__ import annotations

import json
import shutil
import tomllib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facebench.cli import main
from facebench.compare import load_config, run
from facebench.compare.search.study import sweep, validation_data
from facebench.compare.search.sweep_config import load_sweep_config
from facebench.data import load_dataset, make_split, synthesize
from facebench.errors import UserError
from sweep_fixture import POINT_COLUMNS

GRID = """
base = "hog+ridge"
method = "grid"
objective = "age_mae"
bootstrap = 200
n_jobs = 1
[space]
orientations = [6, 9, 12]
pixels_per_cell = [[8, 8], [16, 16]]
"""


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces")
    synthesize(folder, n=200, seed=4, size=64)
    return folder


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "grid.toml"
    path.write_text(GRID)
    return path


@pytest.fixture(scope="module")
def grid(faces, grid_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    sweep(load_sweep_config(path=grid_file, data=faces, out=out), quiet=True)
    return out


def test_grid_sweep_writes_the_contract(grid):
    for name in ("sweep.toml", "sweep.json", "points.csv", "importances.json", "best.toml", "study.db", "sweep.log"):
        assert (grid / name).is_file(), name
    points = pd.read_csv(grid / "points.csv")
    assert list(points.columns) == POINT_COLUMNS + ["param.orientations", "param.pixels_per_cell"]
    assert len(points) == 6 and (points.state == "complete").all()  # every combination, the base's among them
    assert points.is_base.sum() == 1
    base = points[points.is_base].iloc[0]
    assert (base["param.orientations"], base["param.pixels_per_cell"]) == (9, "[8, 8]")
    assert len(set(zip(points["param.orientations"], points["param.pixels_per_cell"], strict=True))) == 6
    assert (points.val_age_mae_low <= points.val_age_mae).all() and (points.val_age_mae <= points.val_age_mae_high).all()
    info = json.loads((grid / "sweep.json").read_text())
    assert info["counts"] == {"complete": 6, "pruned": 0, "failed": 0}
    assert info["stopped_by"] == "grid exhausted" and info["validation"]["test_part_read"] is False
    assert info["best_point"] == int(points.loc[points.val_age_mae.idxmin(), "number"])
    assert set(json.loads((grid / "importances.json").read_text())["age_mae"]) == {"orientations", "pixels_per_cell"}


def test_best_toml_is_a_run_config_that_confirms_the_winner(grid, faces, tmp_path):
    best = tomllib.loads((grid / "best.toml").read_text())
    points = pd.read_csv(grid / "points.csv")
    winner = points.loc[points.val_age_mae.idxmin()]
    assert best["models"]["age"] == ["hog+ridge", "sweep-best"]
    assert best["classical"]["sweep-best"]["params"]["orientations"] == winner["param.orientations"]
    config = load_config(path=grid / "best.toml", out=tmp_path, overrides=["bootstrap=100", "n_jobs=1"])
    assert config["data"]["path"] == str(faces)
    run(config, quiet=True)
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert {"hog+ridge", "sweep-best"} <= set(metrics.model)


def test_the_test_part_is_never_read(faces, grid_file, grid, tmp_path):
    """Replace every test-part image by noise: a sweep that read any of them would change."""
    copy = tmp_path / "faces"
    shutil.copytree(faces, copy)
    table = load_dataset(copy).table
    _, test = make_split(table, seed=0, test_size=0.2)
    rng = np.random.default_rng(0)
    for path in table.iloc[test]["path"]:
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    config = load_sweep_config(path=grid_file, data=copy, out=tmp_path / "sweep")
    data = validation_data(config)
    assert not set(data["table"]["image_id"]) & set(table.iloc[test]["image_id"])
    sweep(config, quiet=True)
    a = pd.read_csv(grid / "points.csv")
    b = pd.read_csv(tmp_path / "sweep" / "points.csv")
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))


def test_rerun_resumes_and_a_killed_point_is_planned_again(faces, grid_file, tmp_path):
    out = tmp_path / "s"
    config = load_sweep_config(path=grid_file, data=faces, out=out, overrides=["n=2"])
    sweep(config, quiet=True)
    assert len(pd.read_csv(out / "points.csv")) in (2, 3)  # two of the grid, and the base unless among them
    import optuna

    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{out / 'study.db'}")
    study.ask()  # a point in flight when the sweep was killed
    sweep(load_sweep_config(path=grid_file, data=faces, out=out), quiet=True)  # n back to every combination
    points = pd.read_csv(out / "points.csv")
    assert len(points) == 6 and points.number.is_unique
    combos = set(zip(points["param.orientations"], points["param.pixels_per_cell"], strict=True))
    assert len(combos) == 6


def test_a_point_that_cannot_be_built_is_recorded_and_the_sweep_goes_on(faces, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(GRID.replace("[[8, 8], [16, 16]]", "[[8, 8], [128, 128]]"))
    sweep(load_sweep_config(path=path, data=faces, out=tmp_path / "s", overrides=["space.orientations=[9]"]),
          quiet=True)
    points = pd.read_csv(tmp_path / "s" / "points.csv").set_index("param.pixels_per_cell")
    assert points.loc["[128, 128]", "state"] == "failed"
    assert "image_size=64" in points.loc["[128, 128]", "reason"]
    assert (points.loc[["[8, 8]"], "state"] == "complete").all()


def test_one_at_a_time_varies_each_parameter_around_the_base(faces, grid_file, tmp_path):
    config = load_sweep_config(path=grid_file, data=faces, out=tmp_path, overrides=["method='one-at-a-time'"])
    sweep(config, quiet=True)
    points = pd.read_csv(tmp_path / "points.csv")
    assert len(points) == 1 + 2 + 1  # the base, two other orientations, one other cell size
    varied = points[~points.is_base]
    at_base = (varied["param.orientations"] == 9).astype(int) + (varied["param.pixels_per_cell"] == "[8, 8]")
    assert (at_base == 1).all()  # exactly one parameter away from the base


def test_tpe_and_random_draw_n_points(faces, tmp_path):
    path = tmp_path / "tpe.toml"
    path.write_text(GRID.replace('method = "grid"', 'method = "tpe"\nn = 4').replace(
        "orientations = [6, 9, 12]", "orientations = { low = 4, high = 12 }"))
    sweep(load_sweep_config(path=path, data=faces, out=tmp_path / "t"), quiet=True)
    points = pd.read_csv(tmp_path / "t" / "points.csv")
    assert len(points) == 5 and points["param.orientations"].between(4, 12).all()


def test_a_changed_sweep_in_the_same_directory_is_refused(grid, grid_file, faces):
    with pytest.raises(UserError, match="different configuration .*objective"):
        sweep(load_sweep_config(path=grid_file, data=faces, out=grid, overrides=["base='hog+linsvm'",
                                                                                 "objective='gender_accuracy'"]),
              quiet=True)


@pytest.mark.parametrize("overrides, message", [
    (["method='bayes'"], r"'method' = 'bayes' is invalid: expected grid \| random \| tpe \| one-at-a-time"),
    (["base='hog+rige'"], r"'base' = 'hog\+rige' is invalid"),
    (["objective='gender_accuracy'"], r"an objective 'hog\+ridge' is trained for \(it does age\)"),
    (["space.orientation=[3]"], r"'space.orientation': 'classical.sweep-point.params.orientation' is unknown"),
    (["space.orientations={low=1, high=5, log=true, step=1}"], r"give log or step, not both"),
    (["space.orientations=[]"], r"expected at least one choice"),
    (["budget_minutes=0"], r"'budget_minutes' = 0 is invalid"),
    (["prune_after=-1"], r"'prune_after' = -1 is invalid: expected the epoch of a CNN point's first pruning check"),
    (["nn=3"], r"'nn' is unknown"),
])
def test_bad_sweep_config_is_one_line(grid_file, faces, overrides, message):
    with pytest.raises(UserError, match=message) as info:
        load_sweep_config(path=grid_file, data=faces, overrides=overrides)
    assert "\n" not in str(info.value)


def test_cnn_sweep_keeps_curves_and_epoch_lines(faces, tmp_path, capsys):
    path = tmp_path / "cnn.toml"
    path.write_text("""
base = "cnn:default"
method = "random"
n = 1
bootstrap = 100
[fixed]
image_size = 32
epochs = 2
filters = [8, 16, 16, 16]
stem_filters = 8
jit_compile = false
[space]
kernel_size = [3, 5]
""")
    assert main(["sweep", "--config", str(path), "--data", str(faces), "--out", str(tmp_path / "s"), "-q"]) == 0
    out = capsys.readouterr().out
    assert "report: " in out and "facebench run --config" in out
    curves = pd.read_csv(tmp_path / "s" / "curves.csv")
    assert set(curves.number) == {0, 1} and curves.groupby("number").epoch.max().tolist() == [2, 2]
    assert "point 1: epoch 2/2" in (tmp_path / "s" / "sweep.log").read_text()
    points = pd.read_csv(tmp_path / "s" / "points.csv")
    assert points.epochs_run.tolist() == [2, 2] and points.val_gender_accuracy.notna().all()
    html = (tmp_path / "s" / "report.html").read_text()
    assert "Validation figures, not test figures." in html
    _renders_in_chromium(tmp_path / "s" / "report.html")
    best = tomllib.loads((tmp_path / "s" / "best.toml").read_text())
    assert best["models"]["cnn"] == ["default", "sweep-best"] and best["cnn"]["default"]["epochs"] == 2


def test_points_in_parallel_get_their_own_results(faces, grid_file, grid, tmp_path):
    """Parallel points finish in any order (joblib locally, Dask alike): each result stays with its point."""
    sweep(load_sweep_config(path=grid_file, data=faces, out=tmp_path, overrides=["n_jobs=2"]), quiet=True)
    key = ["param.orientations", "param.pixels_per_cell"]
    a = pd.read_csv(grid / "points.csv").set_index(key).sort_index()
    b = pd.read_csv(tmp_path / "points.csv").set_index(key).sort_index()
    pd.testing.assert_series_equal(a.val_age_mae, b.val_age_mae)


def _renders_in_chromium(page_file):
    """The real sweep's page in headless Chromium: no request leaves the file, no console problem."""
    from test_browser import CHROMIUM, _watched_page

    if not CHROMIUM.exists():
        return  # the browser test module says why it skips; the page's own tests cover the rest
    with _watched_page() as (page, requests, problems):
        page.goto(page_file.as_uri(), wait_until="load")
        broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length")
        sections = page.locator("section").count()
    assert not [u for u in requests if not u.startswith(("file:", "data:"))]
    assert not problems and broken == 0 and sections == 7


def test_sampled_sweep_counts_the_points_that_trained(faces, tmp_path):
    """A drawn point that cannot be built is recorded, and another is drawn in its place."""
    path = tmp_path / "tpe.toml"
    path.write_text(GRID.replace('method = "grid"', 'method = "random"\nn = 3').replace(
        "[[8, 8], [16, 16]]", "[[8, 8], [16, 16], [128, 128], [96, 96]]"))
    sweep(load_sweep_config(path=path, data=faces, out=tmp_path / "r"), quiet=True)
    points = pd.read_csv(tmp_path / "r" / "points.csv")
    assert (points.state == "complete").sum() == 4  # the base and three drawn points
    failed = points[points.state == "failed"]
    assert set(failed["param.pixels_per_cell"]) <= {"[128, 128]", "[96, 96]"}
    assert json.loads((tmp_path / "r" / "sweep.json").read_text())["stopped_by"] == "n"


def test_a_cnn_point_that_cannot_be_built_costs_no_training_and_is_drawn_again(faces, tmp_path, monkeypatch):
    import optuna

    import facebench.compare.search.sweep_points as sweep_module

    decoded = []
    real_decode = sweep_module.decode
    monkeypatch.setattr(sweep_module, "decode", lambda *a, **k: decoded.append(1) or real_decode(*a, **k))
    path = tmp_path / "cnn.toml"
    path.write_text("""
base = "cnn:seed"
method = "random"
n = 1
bootstrap = 100
[fixed]
image_size = 16
padding = "same"
epochs = 1
dense_units = 8
jit_compile = false
[space]
filters = [[8], [8, 8, 8, 8, 8], [4, 4], [4, 4, 4, 4, 4]]
""")
    sweep(load_sweep_config(path=path, data=faces, out=tmp_path / "s"), quiet=True)
    points = pd.read_csv(tmp_path / "s" / "points.csv")
    trained = points[points.state != "failed"]
    unbuildable = points[points.state == "failed"]
    # at 16 px four 2x2 pools fit (the base's four blocks), five do not
    # the sampler's seed draws two that cannot be built before [8] (one point to train, besides the base)
    assert trained.is_base.sum() == 1 and len(trained) == 2
    assert set(trained[~trained.is_base]["param.filters"]) <= {"[8]", "[4, 4]"}
    assert len(unbuildable) and set(unbuildable["param.filters"]) <= {"[8, 8, 8, 8, 8]", "[4, 4, 4, 4, 4]"}
    assert len(decoded) == 2  # no image was decoded for a point that cannot be built
    assert unbuildable.reason.str.startswith("cannot be built at 16 px").all()
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}")
    states = {t.number: t.state for t in study.trials}
    # told to Optuna as pruned before any epoch, so that TPE ranks them below every trained point
    assert all(states[n] == optuna.trial.TrialState.PRUNED for n in unbuildable.number)
    info = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert info["stopped_by"] == "n" and info["counts"]["failed"] == len(unbuildable)


def test_cannot_build_names_the_image_size():
    from facebench.compare.search.sweep_points import cannot_build

    seed = {"base": "cnn:seed", "fixed": {"image_size": 32}}
    assert cannot_build({**seed, "fixed": {"image_size": 64}}, {}) is None
    assert "at 32 px" in cannot_build(seed, {"kernel_size": 5})
    assert cannot_build(seed, {"kernel_size": 5, "padding": "same"}) is None
    assert cannot_build({"base": "hog+ridge", "fixed": {}}, {"hog__orientations": 6}) is None


@pytest.mark.parametrize("prune_after", [0, 10])
def test_prune_after_sets_the_first_pruning_check(faces, tmp_path, prune_after):
    import optuna

    from facebench.compare.search.study import _study

    path = tmp_path / "cnn.toml"
    path.write_text(f'base = "cnn:seed"\nmethod = "tpe"\nn = 2\nprune_after = {prune_after}\n'
                    '[fixed]\nimage_size = 48\n[space]\nkernel_size = [3, 5]\n')
    config = load_sweep_config(path=path, data=faces, out=tmp_path / "s")
    (tmp_path / "s").mkdir()
    pruner = _study(tmp_path / "s", config).pruner
    if prune_after:
        assert isinstance(pruner, optuna.pruners.SuccessiveHalvingPruner) and pruner._min_resource == prune_after
    else:
        assert isinstance(pruner, optuna.pruners.NopPruner)


def test_a_cnn_point_is_pruned_only_before_its_last_epoch(faces, tmp_path):
    from facebench.compare.search.sweep_points import evaluate_point

    class AlwaysPrune:  # an Optuna trial whose pruner would stop every point at every step
        number = 7

        def __init__(self):
            self.user_attrs, self.steps = {}, []

        def report(self, value, step):
            self.steps.append(step)

        def should_prune(self):
            return True

    path = tmp_path / "cnn.toml"
    path.write_text('base = "cnn:seed"\nmethod = "tpe"\nn = 1\nbootstrap = 100\n'
                    '[fixed]\nimage_size = 48\nfilters = [4, 4]\ndense_units = 8\njit_compile = false\n'
                    '[space]\nepochs = [1, 2]\n')
    config = load_sweep_config(path=path, data=faces, out=tmp_path / "s")
    data = validation_data(config)
    trial = AlwaysPrune()
    two = evaluate_point({"epochs": 2}, config, data, trial)
    assert two["state"] == "pruned" and two["epochs_run"] == 1 and trial.steps == [1]  # step k: after k epochs
    one = evaluate_point({"epochs": 1}, config, data, AlwaysPrune())
    assert one["state"] == "complete" and one["epochs_run"] == 1


def test_a_sampled_sweep_stops_when_nothing_it_draws_can_be_built(faces, tmp_path):
    path = tmp_path / "cnn.toml"
    path.write_text('base = "cnn:seed"\nmethod = "random"\nn = 1\nbootstrap = 100\n'
                    '[fixed]\nimage_size = 16\npadding = "same"\nepochs = 1\ndense_units = 8\njit_compile = false\n'
                    '[space]\nfilters = [[4, 4, 4, 4, 4], [8, 8, 8, 8, 8]]\n')
    sweep(load_sweep_config(path=path, data=faces, out=tmp_path / "s"), quiet=True)
    points = pd.read_csv(tmp_path / "s" / "points.csv")
    info = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert info["stopped_by"] == "too many points that cannot be built"
    assert points.is_base.sum() == 1 and points[points.is_base].state.iloc[0] == "complete"
    drawn = points[~points.is_base]
    # 25 per point of the sweep: the one asked for and the base's own
    assert len(drawn) == 50 and (drawn.state == "failed").all()
    assert drawn.reason.str.startswith("cannot be built at 16 px").all()
