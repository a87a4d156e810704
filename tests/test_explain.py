"""What each method sees (facebench.reports.explain): Grad-CAM, HOG and LBP pictures,
the explain figure, the report section and ``facebench explain``.

One tiny real run directory (160 synthetic faces, HOG/LBP models, a 1-epoch CNN at
32x32) is built once per session by :func:`build_tiny_run` and shared with
``test_predict.py``.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from facebench.errors import UserError

TINY_RUN_OVERRIDES = [
    "models.gender=['dummy','hog+linsvm']",
    "models.age=['dummy','hog+ridge','lbp+ridge']",
    "models.cnn=['default']",
    "cnn.default.epochs=1",
    "cnn.default.image_size=32",
    "fractions=[1.0]",
    "bootstrap=0",
    "n_jobs=1",
]


def build_tiny_run(base: Path) -> Path:
    """A real run directory on 160 synthetic faces, built once per session under ``base``."""
    from facebench.compare import load_config, run
    from facebench.data import synthesize

    run_dir = base / "run"
    if (run_dir / "metrics.csv").is_file() and (run_dir / "models" / "t0_f1.0_cnn-default.keras").is_file():
        return run_dir
    faces = base / "faces"
    with pytest.MonkeyPatch.context() as mp:  # the autouse cache fixture is per test; this runs before it
        mp.setenv("FACEBENCH_CACHE", str(base.parent / "facebench-cache"))
        mp.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
        synthesize(faces, n=160, seed=1, size=64)
        config = load_config(preset="quick", data=faces, out=run_dir, overrides=TINY_RUN_OVERRIDES)
        run(config, quiet=True, report=False)
    return run_dir


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return build_tiny_run(tmp_path_factory.getbasetemp() / "tiny-run")


@pytest.fixture(scope="module")
def cnn(tiny_run):
    from facebench.cnn import load

    return load(tiny_run / "models" / "t0_f1.0_cnn-default.keras")


@pytest.fixture(scope="module")
def test_faces(tiny_run):
    split = pd.read_csv(tiny_run / "split.csv")
    return split[split["part"] == "test"].reset_index(drop=True)


def _toy_model(size=16):
    """Conv (all-ones kernel, ReLU) -> global average -> positive heads: Grad-CAM is the blurred image."""
    from facebench.cnn.models import keras_module

    keras = keras_module()
    inputs = keras.Input((size, size, 1), name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", kernel_initializer="ones", name="block1_conv")(x)
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    age = keras.layers.Dense(1, kernel_initializer="ones", name="age")(pooled)
    gender = keras.layers.Dense(1, activation="sigmoid", kernel_initializer="ones", name="gender")(pooled)
    return keras.Model(inputs, {"age": age, "gender": gender})


# --------------------------------------------------------------------------- Grad-CAM


def test_grad_cam_follows_the_input_on_a_known_network():
    from facebench.reports.explain import grad_cam

    model = _toy_model()
    left = np.zeros((16, 16), np.uint8)
    left[:, :5] = 255
    right = left[:, ::-1].copy()
    for head in ("age", "gender"):
        cam_left, cam_right = grad_cam(model, left, head), grad_cam(model, right, head)
        assert cam_left.shape == (16, 16)
        assert (cam_left >= 0).all() and np.isfinite(cam_left).all()
        assert cam_left[:, :4].mean() > 5 * cam_left[:, -4:].mean()  # it lights up where the signal is
        assert not np.allclose(cam_left, cam_right)
        np.testing.assert_allclose(cam_left, cam_right[:, ::-1], rtol=1e-4, atol=1e-6)


def test_grad_cam_on_the_runs_cnn(cnn, test_faces):
    from facebench.data import decode
    from facebench.reports.explain import grad_cam, last_conv_layer

    images = decode(test_faces["path"].tolist()[:6], size=32, color="gray", cache_dir=False)
    assert last_conv_layer(cnn.model).name == "block4_relu2"
    cams = {head: [grad_cam(cnn.model, im, head) for im in images] for head in ("age", "gender")}
    for head, maps in cams.items():
        for cam in maps:
            assert cam.shape == (32, 32) and cam.dtype == np.float64
            assert (cam >= 0).all() and np.isfinite(cam).all()
    # different faces give different maps (a 1-epoch network may give all-zero maps for some)
    gender = np.stack(cams["gender"])
    assert gender.max() > 0
    assert any(not np.allclose(gender[0], other) for other in gender[1:])
    with pytest.raises(ValueError, match="head"):
        grad_cam(cnn.model, images[0], "race")
    with pytest.raises(ValueError, match="does not fit"):
        grad_cam(cnn.model, np.zeros((64, 64), np.uint8), "age")


# --------------------------------------------------------------------------- HOG and LBP


def _features_step(run_dir, unit, task):
    return joblib.load(run_dir / "models" / f"{unit}.joblib")["estimators"][task].named_steps["features"]


def test_hog_picture_uses_the_models_hog(tiny_run, test_faces):
    from skimage.feature import hog

    from facebench.baselines import hog_features
    from facebench.data import decode
    from facebench.reports.explain import hog_params, hog_picture, load_methods

    methods = load_methods(tiny_run, with_predictors=False)
    step = _features_step(tiny_run, "t0_f1.0_hog-linsvm", "gender")
    assert methods.hog.get_params() == step.get_params()
    assert methods.hog_source == "the run's hog+linsvm"
    face = decode(test_faces["path"].tolist()[:1], size=methods.image_size, color=methods.color, cache_dir=False)[0]
    params = hog_params(step)
    vector, expected = hog(face, **params, visualize=True)
    picture = hog_picture(face, step)
    np.testing.assert_array_equal(picture, expected)
    assert picture.shape == face.shape and picture.min() >= 0 and picture.max() > 0
    # the picture's histograms are the model's HOG cells and blocks (scikit-image backend: exactly;
    # the model's OpenCV backend: the same layout, values close)
    np.testing.assert_allclose(vector, hog_features(face[None], **params, backend="skimage")[0], rtol=1e-5)
    model_vector = step.transform(face[None])[0]
    assert model_vector.shape == vector.shape
    assert np.corrcoef(model_vector, vector)[0, 1] > 0.8


def test_lbp_picture_is_the_models_lbp(tiny_run, test_faces):
    from facebench.baselines import lbp_codes
    from facebench.data import decode
    from facebench.reports.explain import lbp_cells, lbp_picture, load_methods

    methods = load_methods(tiny_run, with_predictors=False)
    step = _features_step(tiny_run, "t0_f1.0_lbp-ridge", "age")
    assert methods.lbp.get_params() == step.get_params()
    face = decode(test_faces["path"].tolist()[:1], size=methods.image_size, color="gray", cache_dir=False)[0]
    codes, hist = lbp_picture(face, step)
    np.testing.assert_array_equal(codes, lbp_codes(face, P=step.P, R=step.R, method=step.method))
    assert hist.shape[:2] == tuple(step.grid)
    np.testing.assert_array_equal(hist.ravel(), step.transform(face[None])[0])  # what the model is given
    for label, r, c, (y0, y1, x0, x1) in lbp_cells(face.shape, step.grid):
        counts = np.bincount(codes[y0:y1, x0:x1].ravel(), minlength=hist.shape[-1])
        np.testing.assert_allclose(hist[r, c], counts / counts.sum(), rtol=1e-6)


# --------------------------------------------------------------------------- faces, figures, section, CLI


def test_pick_faces_spreads_over_bands_and_genders(tmp_path):
    from facebench.reports.explain import pick_faces

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


def test_explain_section_for_the_report(tiny_run):
    from facebench.reports.explain import explain_section

    section = explain_section(tiny_run, None)
    assert "Grad-CAM" in section["intro"] and "hog+linsvm" in section["intro"]
    assert len(section["figures"]) == 2
    total = 0
    for figure in section["figures"]:
        assert figure["title"] and figure["caption"]
        assert figure["image"].startswith("data:image/png;base64,")
        png = base64.b64decode(figure["image"].split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        total += len(png)
    assert total < 2_000_000


def test_explain_cli_png_and_html(tiny_run, test_faces, tmp_path):
    from PIL import Image

    from facebench.reports.explain import explain_cli

    face = Path(test_faces["path"].iloc[0])
    png = explain_cli(tiny_run, face, out=tmp_path / "out" / "face.png")
    assert png == tmp_path / "out" / "face.png"
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] >= 1000

    # a run without a CNN: HOG and LBP only, and the page says so
    no_cnn = tmp_path / "no-cnn"
    shutil.copytree(tiny_run, no_cnn, ignore=shutil.ignore_patterns("*.keras", "*cnn-default*"))
    metrics = pd.read_csv(no_cnn / "metrics.csv")
    metrics[metrics["model"] != "cnn-default"].to_csv(no_cnn / "metrics.csv", index=False)
    page = explain_cli(no_cnn, face, out=tmp_path / "face.html")
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "data:image/png;base64," in text
    from facebench.reports.explain import explain_figure, load_methods

    methods = load_methods(no_cnn, with_predictors=False)
    assert methods.cnn is None
    fig = explain_figure(np.full((64, 64), 128, np.uint8), methods)
    texts = [t.get_text() for sub in fig.subfigs for ax in sub.axes for t in ax.texts]
    assert any("no CNN" in t for t in texts)


def test_explain_cli_user_errors(tiny_run, tmp_path):
    from facebench.reports.explain import explain_cli

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(UserError, match="not a run directory"):
        explain_cli(tmp_path, bad)
    with pytest.raises(UserError, match="bad.jpg"):
        explain_cli(tiny_run, bad, out=tmp_path / "x.png")
    with pytest.raises(UserError, match=r"\.png or \.html"):
        explain_cli(tiny_run, bad, out=tmp_path / "x.pdf")


def test_explain_detects_the_face_in_a_photo(tiny_run, tmp_path):
    import cv2
    from PIL import Image
    from skimage import data as skdata

    from facebench.reports.explain import explain_cli

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR))
    png = explain_cli(tiny_run, photo, out=tmp_path / "astro.png", detect=True)
    with Image.open(png) as im:
        assert im.format == "PNG"
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 160, 3), 200, np.uint8))
    with pytest.raises(UserError, match="no face found"):
        explain_cli(tiny_run, blank, out=tmp_path / "b.png", detect=True)
