"""What each method sees: the feature pictures (baselines.pictures), CNN introspection
(cnn.introspect), their storage (rundir.views) and their drawing (reports.drawing).

Faces are synthetic; the CNN is the shared real run's 2-epoch 32-pixel one (conftest.tiny_run).
"""

from __future__ import annotations

import base64
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from facebench.errors import UserError


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """24 synthetic faces: RGB chips (64 px), with their labels and file names."""
    from facebench.data import parse_utkface_name, synthesize
    from facebench.data.faces import read_image

    folder = tmp_path_factory.mktemp("faces")
    paths = sorted(synthesize(folder, n=24, seed=3, size=64))
    out = []
    for path in paths:
        labels = parse_utkface_name(Path(path).name)
        out.append({"image": read_image(path), "label": f"{labels.age} y, {'female' if labels.gender else 'male'}",
                    "file": Path(path).name, "age": labels.age, "gender": labels.gender})
    return out


@pytest.fixture(scope="module")
def fitted_cnn(tiny_run):
    """The ``default`` CNN trained for two epochs on 32-pixel gray faces: the shared real run's (conftest.tiny_run)."""
    from facebench.cnn import load

    fitted = load(tiny_run / "units" / "t0_f1.0_cnn-default" / "model.keras")
    assert (fitted.name, fitted.params["image_size"], fitted.params["color"]) == ("default", 32, "gray")
    return fitted


def _methods(cnn=None, size=64):
    from facebench.compare.inference.explain import Methods

    return Methods(image_size=size, color="gray", cnn=cnn, predictors=[cnn] if cnn is not None else [])


def _loaded(fitted, size=32):
    from facebench.compare.inference.loading import LoadedModel

    return LoadedModel("cnn-default", "t0_f1.0_cnn-default", "cnn", 0, 1.0, size, "gray", cnn=fitted)


def _gray_face(faces, size=64):
    from facebench.data import to_face_array

    return to_face_array(faces[0]["image"], size, "gray")


# --------------------------------------------------------------------------- HOG and LBP pictures


def test_hog_picture_is_skimages_with_the_steps_parameters(faces):
    from skimage.feature import hog

    from facebench.baselines import HOGFeatures, hog_features
    from facebench.baselines.pictures import hog_params, hog_picture

    face = _gray_face(faces)
    step = HOGFeatures(orientations=8, pixels_per_cell=(8, 8))
    params = hog_params(step)
    assert params == {"orientations": 8, "pixels_per_cell": (8, 8), "cells_per_block": (2, 2),
                      "block_norm": step.block_norm}
    vector, expected = hog(face, **params, visualize=True)
    picture = hog_picture(face, step)
    np.testing.assert_array_equal(picture, expected)
    assert picture.shape == face.shape and picture.min() >= 0 and picture.max() > 0
    # the picture's histograms are the model's cells and blocks (skimage backend exactly, OpenCV close)
    np.testing.assert_allclose(vector, hog_features(face[None], **params, backend="skimage")[0], rtol=1e-5)
    model_vector = step.transform(face[None])[0]
    assert model_vector.shape == vector.shape
    assert np.corrcoef(model_vector, vector)[0, 1] > 0.8
    assert hog_picture(faces[0]["image"], step).shape == face.shape  # RGB works too
    with pytest.raises(ValueError, match="shape"):
        hog_picture(np.zeros(5), step)


def test_lbp_picture_is_what_the_model_is_given(faces):
    from facebench.baselines import LBPFeatures, lbp_codes
    from facebench.baselines.pictures import lbp_cells, lbp_picture, lbp_settings

    face = _gray_face(faces)
    step = LBPFeatures()
    codes, hist = lbp_picture(face, step)
    np.testing.assert_array_equal(codes, lbp_codes(face, P=step.P, R=step.R, method=step.method))
    assert hist.shape[:2] == tuple(step.grid)
    np.testing.assert_array_equal(hist.ravel(), step.transform(face[None])[0])
    np.testing.assert_array_equal(lbp_picture(faces[0]["image"], step)[0], codes)  # RGB -> gray first
    cells = lbp_cells(face.shape, step.grid)
    assert [c[0] for c in cells] == ["A", "B", "C", "D"]
    for _, r, c, (y0, y1, x0, x1) in cells:
        counts = np.bincount(codes[y0:y1, x0:x1].ravel(), minlength=hist.shape[-1])
        np.testing.assert_allclose(hist[r, c], counts / counts.sum(), rtol=1e-6)
    assert lbp_settings(LBPFeatures(radii=(2, 3)))["R"] == 2.0


def test_find_steps_looks_inside_registry_pipelines():
    from facebench.baselines import HOGFeatures, LBPFeatures, make_model
    from facebench.baselines.pictures import find_steps

    both = make_model("hog+lbp+svm", "gender")
    assert len(find_steps(both, HOGFeatures)) == 1 and len(find_steps(both, LBPFeatures)) == 1
    assert find_steps(make_model("hog+ridge", "age"), LBPFeatures) == []


# --------------------------------------------------------------------------- the CNN


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


def test_grad_cam_follows_the_input_on_a_known_network():
    from facebench.cnn.introspect import grad_cam

    model = _toy_model()
    left = np.zeros((16, 16), np.uint8)
    left[:, :5] = 255
    right = left[:, ::-1].copy()
    for head in ("age", "gender"):
        cam_left, cam_right = grad_cam(model, left, head), grad_cam(model, right, head)
        assert cam_left.shape == (16, 16)
        assert (cam_left >= 0).all() and np.isfinite(cam_left).all()
        assert cam_left[:, :4].mean() > 5 * cam_left[:, -4:].mean()  # it lights up where the signal is
        np.testing.assert_allclose(cam_left, cam_right[:, ::-1], rtol=1e-4, atol=1e-6)


def test_introspection_of_a_trained_cnn(fitted_cnn, faces):
    from facebench.cnn.introspect import cnn_views, feature_maps, first_layer_filters, grad_cam, last_conv_layer
    from facebench.data import to_face_array

    model = fitted_cnn.model
    images = [to_face_array(f["image"], 32, "gray") for f in faces[:4]]
    assert last_conv_layer(model).name == "block4_relu2"
    cams = [grad_cam(model, im, "gender") for im in images]
    for cam in cams:
        assert cam.shape == (32, 32) and cam.dtype == np.float64 and (cam >= 0).all() and np.isfinite(cam).all()
    name, kernels = first_layer_filters(model)
    assert name == model.layers[[type(layer).__name__ for layer in model.layers].index("Conv2D")].name
    assert kernels.ndim == 4 and kernels.shape[0] <= 16 and kernels.shape[-1] == 1
    maps = feature_maps(model, images[0])
    assert [n.split("_")[0] for n, _ in maps][-1] == "block4"
    assert all(m.shape[0] == 4 and m.ndim == 3 for _, m in maps)
    assert maps[0][1].shape[1] > maps[-1][1].shape[1]  # deeper blocks are coarser
    views = cnn_views(fitted_cnn, images[0], maps=False)
    assert views["maps"] == [] and 0 <= views["p_female"] <= 1 and views["cam_layer"] == "block4_relu2"
    np.testing.assert_allclose(views["cam_gender"], cams[0], rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="head"):
        grad_cam(model, images[0], "race")
    with pytest.raises(ValueError, match="does not fit"):
        grad_cam(model, np.zeros((64, 64), np.uint8), "age")


# --------------------------------------------------------------------------- storage


def test_views_round_trip_and_stay_small(tmp_path, faces, fitted_cnn):
    from facebench.compare.inference.explain import compute_views
    from facebench.rundir.views import read_views, views_files, write_views

    meta, arrays = compute_views(faces[:6], _methods(_loaded(fitted_cnn)))
    assert set(arrays) >= {"face", "hog", "lbp_codes", "lbp_hist", "cnn_face", "cam_age", "cam_gender",
                           "cam_top", "filters", "maps_0"}
    assert arrays["face"].shape == (6, 64, 64) and arrays["face"].dtype == np.uint8
    assert arrays["hog"].dtype == np.float16 and float(arrays["hog"].max()) == 1.0
    assert arrays["cam_age"].shape == (6, 32, 32) and arrays["cam_age"].dtype == np.uint8
    assert meta["faces"][0]["label"] == faces[0]["label"]
    assert meta["faces"][0]["predictions"][0]["model"] == "cnn-default"
    write_views(tmp_path, meta, arrays)
    views = read_views(tmp_path)
    assert views.meta["faces"] == json.loads(json.dumps(meta["faces"]))
    assert set(views.arrays) == set(arrays)
    for name, a in arrays.items():
        np.testing.assert_array_equal(views.arrays[name], a)
        assert views.arrays[name].dtype == a.dtype
    json_path, npz_path = views_files(tmp_path)
    assert json_path.parent == tmp_path / "views"
    assert oct(npz_path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert json_path.stat().st_size + npz_path.stat().st_size < 300_000
    assert sorted(p.name for p in json_path.parent.iterdir()) == ["views.json", "views.npz"]  # no temporary left


def test_views_of_a_128_pixel_run_stay_under_a_megabyte(tmp_path, faces):
    from facebench.cnn import FittedCNN, build_model
    from facebench.compare.inference.explain import compute_views
    from facebench.rundir.views import views_files, write_views

    untrained = FittedCNN(build_model("seed", (128, 128, 1)), "seed", {})
    meta, arrays = compute_views(faces[:6], _methods(_loaded(untrained, 128), size=128))
    write_views(tmp_path, meta, arrays)
    assert sum(p.stat().st_size for p in views_files(tmp_path)) < 1_000_000


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _small_views(tmp_path):
    from facebench.rundir.views import views_files, write_views

    write_views(tmp_path, {"faces": [{"label": "1 y, male"}]}, {"face": np.zeros((1, 4, 4), np.uint8)})
    return views_files(tmp_path)


class _Payload:
    """Unpickling this touches a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_pickled_array_is_never_loaded(tmp_path):
    from facebench.rundir.views import read_views

    json_path, npz_path = _small_views(tmp_path)
    marker = tmp_path / "code-ran"
    evil = np.empty(1, dtype=object)
    evil[0] = _Payload(marker)
    np.savez(npz_path.with_suffix(".tmp.npz"), face=evil)
    os.replace(npz_path.with_suffix(".tmp.npz"), npz_path)
    meta = json.loads(json_path.read_text())
    meta["arrays"] = {"face": [[1], evil.dtype.str]}
    json_path.write_text(json.dumps(meta))
    assert read_views(tmp_path) is None
    assert not marker.exists()
    with pytest.raises(ValueError, match="dtype object"):
        from facebench.rundir.views import write_views

        write_views(tmp_path, {}, {"face": evil})


@pytest.mark.parametrize("damage", ["no views", "no npz", "truncated npz", "not json", "other format",
                                    "listed shapes differ", "npz not a zip", "extra array"])
def test_damaged_views_read_as_none(tmp_path, damage):
    from facebench.rundir.views import read_views

    json_path, npz_path = _small_views(tmp_path)
    assert read_views(tmp_path) is not None
    meta = json.loads(json_path.read_text())
    if damage == "no views":
        json_path.unlink()
        npz_path.unlink()
    elif damage == "no npz":
        npz_path.unlink()
    elif damage == "truncated npz":
        npz_path.write_bytes(npz_path.read_bytes()[:-40])
    elif damage == "not json":
        json_path.write_text("{not json")
    elif damage == "other format":
        json_path.write_text(json.dumps({**meta, "format": 99}))
    elif damage == "listed shapes differ":
        json_path.write_text(json.dumps({**meta, "arrays": {"face": [[2, 4, 4], "|u1"]}}))
    elif damage == "npz not a zip":
        npz_path.write_bytes(b"\x93NUMPY garbage")
    else:
        with zipfile.ZipFile(npz_path, "a") as z:
            z.writestr("more.npy", b"")
    assert read_views(tmp_path) is None


# --------------------------------------------------------------------------- drawing


def _png(uri):
    assert uri.startswith("data:image/png;base64,")
    png = base64.b64decode(uri.split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return png


def test_the_report_section_draws_stored_views(tmp_path, faces, fitted_cnn):
    """The section from stored views alone (test_roundtrip builds a real run's report where TensorFlow
    cannot be imported, and checks that no model code is loaded)."""
    import types

    from facebench.compare.inference.explain import compute_views
    from facebench.reports.drawing import views_section
    from facebench.rundir.views import write_views

    meta, arrays = compute_views(faces[:6], _methods(_loaded(fitted_cnn)))
    write_views(tmp_path, meta, arrays)
    section = views_section(types.SimpleNamespace(dir=tmp_path))
    assert "Grad-CAM" in section["intro"] and "the registry's defaults" in section["intro"]
    titles = [f["title"] for f in section["figures"]]
    assert titles[0] == "6 test faces, 5 columns: the face, HOG, LBP, Grad-CAM (age), Grad-CAM (gender)"
    assert titles[1] == f"One face in detail ({faces[0]['label']})"
    assert sum(len(_png(f["image"])) for f in section["figures"]) < 1_000_000


def test_the_section_without_a_cnn_and_without_views(tmp_path, faces):
    import types

    from facebench.compare.inference.explain import compute_views
    from facebench.reports.drawing import face_figure, views_section
    from facebench.rundir.views import read_views, write_views

    assert views_section(types.SimpleNamespace(dir=tmp_path)) is None
    assert views_section(types.SimpleNamespace(dir=tmp_path, views=None)) is None
    meta, arrays = compute_views(faces[:3], _methods())
    write_views(tmp_path, meta, arrays)
    section = views_section(types.SimpleNamespace(dir=tmp_path, views=read_views(tmp_path)))
    assert "no CNN" in section["intro"]
    assert section["figures"][0]["title"] == "3 test faces, 3 columns: the face, HOG, LBP"
    assert "This run has no CNN." in section["figures"][1]["caption"]
    fig = face_figure(meta, arrays)
    texts = [t.get_text() for sub in fig.subfigs for ax in sub.axes for t in ax.texts]
    assert any("no CNN" in t for t in texts)
    broken = read_views(tmp_path)
    del broken.arrays["hog"]
    assert views_section(types.SimpleNamespace(dir=tmp_path, views=broken)) is None


def test_write_explain_png_and_html(tmp_path, faces, fitted_cnn):
    from PIL import Image

    from facebench.compare.inference.explain import compute_views
    from facebench.reports.drawing import explain_out_path, write_explain

    meta, arrays = compute_views(faces[:1], _methods(_loaded(fitted_cnn)))
    meta["name"] = "<script>" + faces[0]["file"]
    png = write_explain(tmp_path / "out" / "face.png", meta, arrays, tmp_path / "run")
    assert png == tmp_path / "out" / "face.png"
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] >= 1000
    page = write_explain(tmp_path / "face.html", meta, arrays, tmp_path / "run<x>").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page
    assert "<script>" not in page and "&lt;script&gt;" in page and "run&lt;x&gt;" in page
    with pytest.raises(UserError, match=r"\.png or \.html"):
        write_explain(tmp_path / "x.pdf", meta, arrays, tmp_path)
    assert explain_out_path(None, "dir/25_1_0_2017.jpg.chip.jpg") == Path("25_1_0_2017-explain.png")
    with pytest.raises(UserError, match=r"\.png or \.html"):
        explain_out_path("x.svg")
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="cannot write"):
        write_explain(tmp_path / "file" / "x.png", meta, arrays, tmp_path)
