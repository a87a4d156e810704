"""Colour features, the gray wrapper, and the colour models' RGB input."""

import cv2
import numpy as np
import pytest

from facebench.baselines import (
    ColorFeatures,
    HOGFeatures,
    LBPFeatures,
    OnGray,
    color_features,
    input_color,
    list_models,
    make_model,
    predict_outputs,
)


def rgb_stack(n=6, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_color_features_are_lab_mean_and_std_per_cell():
    X = rgb_stack(2, 16)
    out = color_features(X, grid=(2, 4))
    assert out.shape == (2, 2 * 4 * 6) and out.dtype == np.float32
    lab = cv2.cvtColor(X[1], cv2.COLOR_RGB2LAB).astype(np.float64)
    cell = lab[8:16, 4:8].reshape(-1, 3)  # row 1, column 1 of the 2x4 grid: cell 5
    np.testing.assert_allclose(out[1, 5 * 6 : 5 * 6 + 3], cell.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(out[1, 5 * 6 + 3 : 6 * 6], cell.std(axis=0), rtol=1e-4)


def test_color_features_see_what_gray_features_cannot():
    red, green = np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 8, 8, 3), np.uint8)
    red[..., 0], green[..., 1] = 200, 102  # the same gray level (60)
    assert np.array_equal(cv2.cvtColor(red[0], cv2.COLOR_RGB2GRAY), cv2.cvtColor(green[0], cv2.COLOR_RGB2GRAY))
    assert np.abs(color_features(red, (1, 1)) - color_features(green, (1, 1))).max() > 50


def test_color_features_reject_gray_stacks_and_big_grids():
    with pytest.raises(ValueError, match=r"need RGB images .* shape \(3, 16, 16\)"):
        ColorFeatures().transform(np.zeros((3, 16, 16), np.uint8))
    with pytest.raises(ValueError, match="grid="):
        color_features(rgb_stack(1, 4), grid=(8, 8))


def test_on_gray_runs_a_gray_transformer_on_rgb_stacks():
    X = rgb_stack(3, 32)
    gray = np.stack([cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in X])
    np.testing.assert_array_equal(OnGray(LBPFeatures(grid=(2, 2))).transform(X), LBPFeatures(grid=(2, 2)).transform(gray))
    np.testing.assert_array_equal(OnGray(HOGFeatures()).transform(gray), HOGFeatures().transform(gray))  # gray passes through


def test_colour_models_take_rgb_and_the_others_the_runs_choice():
    assert input_color("hog+lbp+color+svm") == "rgb" and input_color("hog6+lbp+color+svr") == "rgb"
    assert input_color("hog+lbp+svm") is None and input_color("dummy") is None
    assert "hog+lbp+color+svm" in list_models("gender") and "hog6+lbp+color+svr" in list_models("age")
    with pytest.raises(ValueError, match="name='nope'"):
        input_color("nope")


@pytest.mark.parametrize("name, task", [("hog+lbp+color+svm", "gender"), ("hog6+lbp+color+svr", "age")])
def test_colour_models_fit_and_predict_on_rgb_faces(name, task):
    X = rgb_stack(40, 64, seed=1)
    y = np.arange(40) % 2 if task == "gender" else np.linspace(1, 80, 40)
    model = make_model(name, task, random_state=0).fit(X, y)
    out = predict_outputs(model, X[:5], task)
    assert len(out[task]) == 5
    with pytest.raises(ValueError, match="need RGB images"):
        model.predict(X[:5].mean(axis=3).astype(np.uint8))


@pytest.mark.parametrize("grid", [(8, 8), (3, 5)])  # cells of equal size (fast path) and of unequal sizes
def test_color_features_match_numpy_on_every_cell(grid):
    X = rgb_stack(3, 24, seed=2)
    rows, cols = grid
    out = color_features(X, grid=grid).reshape(3, rows * cols, 6)
    ey, ex = (np.arange(rows + 1) * 24) // rows, (np.arange(cols + 1) * 24) // cols
    for k, im in enumerate(X):
        lab = cv2.cvtColor(im, cv2.COLOR_RGB2LAB).astype(np.float64)
        for i in range(rows):
            for j in range(cols):
                cell = lab[ey[i] : ey[i + 1], ex[j] : ex[j + 1]].reshape(-1, 3)
                np.testing.assert_allclose(out[k, i * cols + j, :3], cell.mean(axis=0), atol=1e-3)
                np.testing.assert_allclose(out[k, i * cols + j, 3:], cell.std(axis=0), atol=1e-2)
