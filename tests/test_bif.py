"""Biologically inspired features: the filter bank, the pooling against plain NumPy, the pyramid
against full-size filtering, orientation selectivity, errors, the scikit-learn contract, the
registry and saved models, and the teaching view."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facebench.baselines.bif import (
    BAND_CELLS,
    FILTER_SIZES,
    BIFFeatures,
    _filter_stack,
    _pool,
    _windows,
    bif_bank,
    bif_features,
    bif_shape,
)

def smooth_images(n=6, shape=(64, 64), seed=0):
    """Blurred noise: structure at several scales."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(128, 60, size=(n, *shape)).astype(np.float32)
    return np.stack([np.clip(cv2.GaussianBlur(im, (0, 0), 2.0), 0, 255) for im in noise]).astype(np.uint8)


@pytest.fixture(scope="module")
def faces(utkface):
    """40 real UTKFace faces, 64x64 grayscale (as facebench.data decodes them)."""
    paths = sorted(Path(utkface).glob("*.jpg"))[::120][:40]
    return np.stack([cv2.resize(cv2.imread(str(p), cv2.IMREAD_REDUCED_GRAYSCALE_2), (64, 64), interpolation=cv2.INTER_AREA)
                     for p in paths])


def _correlation(a, b):
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


# ---------------------------------------------------------------------------- bank and layout


def test_bank_follows_guo_et_al():
    bands = bif_bank()
    assert [b["sizes"] for b in bands] == [FILTER_SIZES[i : i + 2] for i in range(0, 16, 2)]
    assert [b["cell"] for b in bands] == list(BAND_CELLS) == [6, 8, 10, 12, 14, 16, 18, 20]
    assert [b["level"] for b in bands] == [0, 0, 1, 1, 2, 2, 2, 2]  # 64 px faces
    for band in bands:
        for kernels in band["kernels"]:
            assert kernels.shape[0] == 8 and kernels.dtype == np.float32
            np.testing.assert_allclose(kernels.sum(axis=(1, 2)), 0, atol=1e-5)  # zero mean
            np.testing.assert_allclose(np.sqrt((kernels.astype(np.float64) ** 2).sum(axis=(1, 2))), 2 ** band["level"], rtol=1e-5)
    exact = bif_bank(pyramid=False)
    assert [b["level"] for b in exact] == [0] * 8
    assert [k.shape[1] for b in exact for k in b["kernels"]] == list(FILTER_SIZES)


@pytest.mark.parametrize("pooling, overlap, expected", [("both", True, 16016), ("max", True, 8008),
                                                         ("std", False, 2200), ("both", False, 4400)])
def test_shape_dtype_and_layout(pooling, overlap, expected):
    out = bif_features(smooth_images(3), pooling=pooling, overlap=overlap)
    assert out.shape == (3, expected) == (3, bif_shape((64, 64), pooling=pooling, overlap=overlap)[1])
    assert out.dtype == np.float32 and np.isfinite(out).all() and (out >= 0).all()
    cells, _ = bif_shape((64, 64))
    assert cells[0] == (20, 20) and cells[-1] == (5, 5)


def test_non_square_images_and_fewer_bands():
    out = bif_features(smooth_images(2, (48, 72)), n_bands=4, orientations=4)
    cells, n = bif_shape((48, 72), n_bands=4, orientations=4)
    assert out.shape == (2, n) and cells[0] == (15, 23)


def test_chunks_do_not_change_the_result():
    import facebench.baselines.bif as bif

    images = smooth_images(7)
    whole = bif_features(images)
    chunk, bif._CHUNK = bif._CHUNK, 3
    try:
        np.testing.assert_array_equal(bif_features(images), whole)
    finally:
        bif._CHUNK = chunk


# ---------------------------------------------------------------------------- against plain code


def test_mosaic_filtering_equals_filtering_each_image():
    images = smooth_images(3).astype(np.float32) / 255
    kernels = [k for band in bif_bank(pyramid=False)[:3] for size in band["kernels"] for k in size[:2]]
    out = _filter_stack(images, kernels)
    for i, image in enumerate(images):
        for j, kernel in enumerate(kernels):
            expected = np.abs(cv2.filter2D(image, cv2.CV_32F, kernel))  # OpenCV's default border
            np.testing.assert_allclose(out[i, j], expected, atol=2e-5)


@pytest.mark.parametrize("cell, overlap, level_side", [(6, True, 64), (10, True, 32), (14, False, 16), (20, True, 16)])
def test_pooling_equals_plain_numpy(cell, overlap, level_side):
    rng = np.random.default_rng(cell)
    maps = rng.random((2, 3, level_side, level_side), dtype=np.float32)
    rows = cols = _windows(64, cell, overlap, level_side)
    starts, side = rows
    top_max, top_std = _pool(maps, rows, cols, "both")
    assert top_max.shape == top_std.shape == (2, 3, len(starts), len(starts))
    for r, a in enumerate(starts):
        for c, b in enumerate(starts):
            window = maps[:, :, a : a + side, b : b + side].astype(np.float64)
            np.testing.assert_array_equal(top_max[:, :, r, c], window.max(axis=(2, 3)))
            np.testing.assert_allclose(top_std[:, :, r, c], window.std(axis=(2, 3)), rtol=1e-5, atol=1e-6)
    assert starts[-1] + side <= level_side


def test_full_size_pooling_cells_are_the_papers():
    starts, side = _windows(64, 6, True, 64)
    assert side == 6 and list(starts[:3]) == [0, 3, 6] and starts[-1] == 57
    starts, side = _windows(64, 6, False, 64)
    assert side == 6 and list(starts) == list(range(0, 59, 6))


def test_pyramid_is_close_to_filtering_at_full_size(faces):
    r = _correlation(bif_features(faces), bif_features(faces, pyramid=False))
    # measured on real faces: median about 0.97, never below 0.92
    assert np.median(r) >= 0.95, np.median(r)
    assert r.min() >= 0.88, r.min()
    fine = bif_shape((64, 64))[0]
    n_fine = 16 * sum(rr * cc for rr, cc in fine[:2])  # bands 1-2 are filtered at full size either way
    np.testing.assert_allclose(bif_features(faces[:4])[:, :n_fine], bif_features(faces[:4], pyramid=False)[:, :n_fine])


# ---------------------------------------------------------------------------- properties


@pytest.mark.parametrize("band", [1, 3, 5])
def test_a_grating_fills_the_orientation_across_its_stripes(band):
    wavelength = (0.0036 * FILTER_SIZES[2 * band] ** 2 + 0.35 * FILTER_SIZES[2 * band] + 0.18) / 0.8
    x = np.arange(64)
    vertical_stripes = np.tile(127.5 + 100 * np.cos(2 * np.pi * x / wavelength), (64, 1))
    for image, orientation in ((vertical_stripes, 0), (vertical_stripes.T, 4)):
        out = bif_features(np.round(image)[None].astype(np.uint8), pooling="max")
        cells, _ = bif_shape((64, 64), pooling="max")
        start = 8 * sum(r * c for r, c in cells[:band])
        per_orientation = out[0, start : start + 8 * cells[band][0] * cells[band][1]].reshape(8, -1).mean(axis=1)
        assert per_orientation.argmax() == orientation, per_orientation


def test_flat_images_give_no_response():
    out = bif_features(np.full((2, 64, 64), 90, np.uint8))
    np.testing.assert_allclose(out, 0, atol=1e-5)


def test_accepts_whole_numbers_in_other_dtypes():
    images = smooth_images(2)
    np.testing.assert_array_equal(bif_features(images.astype(np.float64)), bif_features(images))


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kwargs, match", [
    ({"n_bands": 0}, "n_bands=0"), ({"n_bands": 9}, "n_bands=9"), ({"orientations": 0}, "orientations=0"),
    ({"pooling": "mean"}, "pooling='mean'"), ({"overlap": "yes"}, "overlap='yes'"), ({"pyramid": None}, "pyramid=None"),
])
def test_errors_name_the_bad_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bif_features(smooth_images(1), **kwargs)


def test_rejects_bad_stacks():
    with pytest.raises(ValueError, match="shape"):
        bif_features(np.zeros((2, 64, 64, 3), np.uint8))  # colour: OnGray converts first
    with pytest.raises(ValueError, match="shape"):
        bif_features(np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        bif_features(np.full((1, 64, 64), 0.5))
    with pytest.raises(ValueError, match=r"16x16 pixels .* n_bands <= 6"):
        bif_features(np.zeros((1, 16, 16), np.uint8))


def test_transformer_is_stateless_and_init_only_stores():
    bif = BIFFeatures(pooling="nope")
    assert bif.pooling == "nope"
    with pytest.raises(ValueError, match="pooling='nope'"):
        bif.fit(smooth_images(1))
    images = smooth_images(2)
    np.testing.assert_array_equal(BIFFeatures().fit(images[:1]).transform(images), bif_features(images))


# scikit-learn's checks and the 3-D contract: tests/test_common.py, which lists BIFFeatures with the other transformers


# ---------------------------------------------------------------------------- registry and saved models


def test_registered_feature_and_models():
    from facebench.baselines import describe, list_all, make_model, uses_flip
    from facebench.baselines.registry import FEATURES, TRUSTED_TYPES

    assert isinstance(FEATURES["bif"](), BIFFeatures)
    assert "facebench.baselines.bif.BIFFeatures" in TRUSTED_TYPES
    for name in [n for n in list_all() if "bif" in n.split("+")]:
        info = describe(name)
        assert "BIF" in info["summary"], info
        for task in info["tasks"]:
            assert uses_flip(make_model(name, task))


def _bif_model(task):
    """A flip-augmented RBF model on HOG + BIF, built as the registry builds its models."""
    from sklearn.pipeline import FeatureUnion, Pipeline

    from facebench.baselines import MODEL_TASKS, HFlipPairs, HOGFeatures, make_head, make_model

    name = next((n for n, tasks in MODEL_TASKS.items() if "bif" in n.split("+") and task in tasks), None)
    if name is not None:
        return make_model(name, task, random_state=0, n_jobs=1)
    head = make_head("hog+lbp+svm" if task == "gender" else "hog6+lbp+svr", task, random_state=0, n_jobs=1)
    features = HFlipPairs(FeatureUnion([("hog", HOGFeatures()), ("bif", BIFFeatures(pooling="std"))]))
    return Pipeline([("features", features), *head.steps])


@pytest.mark.parametrize("task", ["gender", "age"])
def test_a_saved_bif_model_round_trips_with_trusted_types_only(tmp_path, task):
    from facebench.baselines import predict_outputs
    from facebench.baselines.registry import TRUSTED_TYPES
    from facebench.rundir.saved import load_classical, save_classical

    images = smooth_images(40, seed=4)
    y = np.arange(40) % 2 if task == "gender" else np.random.default_rng(0).integers(1, 80, 40)
    fitted = _bif_model(task).fit(images[:32], y[:32])
    path = save_classical(tmp_path / "model.skops", {"task": task}, {task: fitted})
    meta, loaded = load_classical(path, TRUSTED_TYPES)
    assert meta == {"task": task}
    a, b = predict_outputs(fitted, images[32:], task), predict_outputs(loaded[task], images[32:], task)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


# ---------------------------------------------------------------------------- teaching view


def test_bif_view_is_the_bands_part_of_the_features():
    from facebench.baselines.pictures import bif_view, find_steps

    image = smooth_images(1)[0]
    features = bif_features(image[None])[0]
    cells, _ = bif_shape((64, 64))
    start = 0
    for band in range(8):
        view = bif_view(image, band=band)
        rows, cols = cells[band]
        n = 8 * rows * cols
        np.testing.assert_array_equal(view["max"].ravel(), features[start : start + n])
        np.testing.assert_array_equal(view["std"].ravel(), features[start + n : start + 2 * n])
        start += 2 * n
        side = 64 // 2 ** view["level"]
        assert view["s1"].shape == (8, side, side) and view["max"].shape == (8, rows, cols)
        assert view["kernels"].shape == (8, view["sizes"][0], view["sizes"][0])
    # a step's own parameters, found in a pipeline; RGB faces are seen in gray
    from sklearn.pipeline import Pipeline

    step = find_steps(Pipeline([("features", BIFFeatures(pooling="max", orientations=4))]), BIFFeatures)[0]
    view = bif_view(np.stack([image] * 3, axis=-1), step, band=2)
    assert view["std"] is None and view["max"].shape == (4, *cells[2])
    with pytest.raises(ValueError, match="band=8"):
        bif_view(image, band=8)
