"""What each method sees, from a real run directory (facebench.compare.inference.explain): the faces
picked, the views stored at the end of a run, and ``explain_image`` for one face.

The session's shared real run (conftest.tiny_run: 160 synthetic faces, HOG/LBP models, a
2-epoch CNN at 32x32).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facebench.errors import UserError

@pytest.fixture(scope="module")
def test_faces(tiny_run):
    split = pd.read_csv(tiny_run / "split.csv")
    return split[split["part"] == "test"].reset_index(drop=True)


def _classical_step(run_dir, model, task, cls):
    from facebench.baselines.pictures import find_steps
    from facebench.compare.inference.loading import load_models

    (loaded,) = load_models(run_dir, [model])
    return find_steps(loaded.estimators[task], cls)[0]


def test_pick_faces_spreads_over_bands_and_genders(tmp_path):
    from facebench.compare.inference.explain import pick_faces

    rows = []
    for i, age in enumerate([1, 2, 5, 8, 15, 16, 25, 26, 35, 45, 55, 65, 75, 80]):
        for gender in (0, 1):
            path = tmp_path / f"{age}_{gender}_{i}.jpg"
            path.write_bytes(b"x")
            rows.append({"image_id": path.name, "path": str(path), "age": age, "gender": gender})
    rows.append({"image_id": "gone.jpg", "path": str(tmp_path / "gone.jpg"), "age": 30, "gender": 1})
    picked = pick_faces(pd.DataFrame(rows), n=6)
    assert len(picked) == 6
    assert set(picked["gender"]) == {0, 1}
    assert picked["age"].min() <= 2 and picked["age"].max() >= 70
    assert "gone.jpg" not in set(picked["image_id"])
    pd.testing.assert_frame_equal(picked, pick_faces(pd.DataFrame(rows), n=6))


def test_the_run_stores_its_views(tiny_run, test_faces):
    from facebench.baselines import HOGFeatures, LBPFeatures
    from facebench.compare.inference.explain import N_FACES, pick_faces
    from facebench.rundir.views import read_views, views_files

    views = read_views(tiny_run)
    assert views is not None, "the runner stored no views"
    meta, arrays = views.meta, views.arrays
    picked = pick_faces(test_faces)
    assert [f["file"] for f in meta["faces"]] == [Path(p).name for p in picked["path"]][:N_FACES]
    assert meta["hog"]["source"] == "the run's hog+linsvm" and meta["lbp"]["source"] == "the run's lbp+ridge"
    hog = _classical_step(tiny_run, "hog+linsvm", "gender", HOGFeatures)
    assert meta["hog"]["orientations"] == hog.orientations
    lbp = _classical_step(tiny_run, "lbp+ridge", "age", LBPFeatures)
    assert meta["lbp"]["grid"] == list(lbp.grid) and meta["lbp"]["P"] == lbp.P
    assert meta["cnn"]["name"] == "cnn-default" and arrays["cam_gender"].shape[1:] == (32, 32)
    models = {p["model"] for p in meta["faces"][0]["predictions"]}
    assert "cnn-default" in models and len(models) >= 2
    assert sum(p.stat().st_size for p in views_files(tiny_run)) < 1_000_000


def test_explain_image_on_a_chip_and_on_a_photo(tiny_run, test_faces):
    import cv2
    from skimage import data as skdata

    from facebench.compare.inference.explain import explain_image
    from facebench.data.faces import read_image

    path = Path(test_faces["path"].iloc[0])
    meta, arrays = explain_image(tiny_run, read_image(path), name=path.name)
    assert meta["name"] == path.name and len(meta["faces"]) == 1
    age, gender = path.name.split("_")[:2]
    assert meta["faces"][0]["label"] == f"{age} y, {'female' if gender == '1' else 'male'}"
    assert set(arrays) >= {"face", "hog", "lbp_codes", "lbp_hist", "cnn_face", "cam_age", "filters", "maps_0"}
    assert len(meta["cnn"]["maps"]) == sum(k.startswith("maps_") for k in arrays)

    meta, _ = explain_image(tiny_run, skdata.astronaut(), name="astronaut.png")
    assert meta["faces"][0]["label"] is None  # not a UTKFace name
    blank = np.full((300, 500, 3), 200, np.uint8)
    with pytest.raises(UserError, match="no face found"):
        explain_image(tiny_run, blank, name="blank.png", detect=True)
    with pytest.raises(UserError, match="not a run directory"):
        explain_image(tiny_run.parent / "nowhere", cv2.resize(blank, (64, 64)))


def test_a_run_without_a_cnn_is_explained_by_hog_and_lbp(tiny_run, test_faces, tmp_path):
    from facebench.compare.inference.explain import compute_run_views, explain_image
    from facebench.data.faces import read_image
    from facebench.rundir.views import read_views

    no_cnn = tmp_path / "no-cnn"
    shutil.copytree(tiny_run, no_cnn, ignore=shutil.ignore_patterns("*cnn-default*", "views"))
    table = pd.read_csv(no_cnn / "models.csv")
    table[table["kind"] != "cnn"].to_csv(no_cnn / "models.csv", index=False)
    meta, arrays = explain_image(no_cnn, read_image(test_faces["path"].iloc[0]))
    assert meta["cnn"] is None and "cam_age" not in arrays
    compute_run_views(no_cnn)
    views = read_views(no_cnn)
    assert views.meta["cnn"] is None and len(views.meta["faces"]) >= 2


def test_views_of_the_same_models_are_kept_and_recomputed_when_a_model_changes(tiny_run, tmp_path, monkeypatch):
    """A rerun with nothing new keeps the stored views (no model loaded); a model gone recomputes them."""
    from facebench.compare.inference import explain
    from facebench.rundir.views import read_views, views_files

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = read_views(run)
    assert before is not None and len(before.meta["source"]) == 64
    stored = {p.name: p.read_bytes() for p in views_files(run)}
    loads = []
    real = explain.load_methods

    def counting(*args, **kw):
        loads.append(args)
        return real(*args, **kw)

    monkeypatch.setattr(explain, "load_methods", counting)
    explain.compute_run_views(run)
    assert loads == [] and {p.name: p.read_bytes() for p in views_files(run)} == stored

    cnn_units = sorted(p for p in (run / "units").iterdir() if "cnn" in p.name)
    assert cnn_units and before.meta["cnn"] is not None
    for unit in cnn_units:
        shutil.rmtree(unit)
    explain.compute_run_views(run)
    after = read_views(run)
    assert len(loads) == 1 and after.meta["cnn"] is None and after.meta["source"] != before.meta["source"]
    explain.compute_run_views(run)
    assert len(loads) == 1
