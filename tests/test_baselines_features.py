"""HOG, LBP and pixel features: agreement with scikit-image, shapes, properties, errors."""

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.feature import hog as skimage_hog
from skimage.feature import local_binary_pattern

from facebench.baselines import (
    HFlipPairs,
    HOGFeatures,
    LBPFeatures,
    PixelFeatures,
    hog_features,
    lbp_codes,
    lbp_histograms,
    pixel_features,
)
from facebench.baselines.lbp import lbp_n_bins

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def utkface_dir():
    """The real-face folder: $FACEBENCH_UTKFACE or ../shared/data/utkface-5k next to the project."""
    env = os.environ.get("FACEBENCH_UTKFACE")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "data" / "utkface-5k"


@pytest.fixture(scope="module")
def faces():
    """60 real UTKFace faces, 64x64 grayscale uint8 (decoded as facebench.data does)."""
    folder = utkface_dir()
    paths = sorted(folder.glob("*.jpg"))[:: 80][:60] if folder.is_dir() else []
    if not paths:
        pytest.skip(f"real UTKFace faces not found at {folder} (set FACEBENCH_UTKFACE to a folder of them)")
    images = [cv2.imread(str(p), cv2.IMREAD_REDUCED_GRAYSCALE_2) for p in paths]
    return np.stack([cv2.resize(im, (64, 64), interpolation=cv2.INTER_AREA) for im in images])


def smooth_images(n=12, shape=(64, 64), seed=0):
    """Blurred noise: images with structure at several scales (unlike raw noise)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(128, 60, size=(n, *shape)).astype(np.float32)
    return np.stack([np.clip(cv2.GaussianBlur(im, (0, 0), 2.0), 0, 255) for im in noise]).astype(np.uint8)


# ---------------------------------------------------------------------------- OpenCV


def test_opencv_has_hog_descriptor():
    assert hasattr(cv2, "HOGDescriptor"), (
        f"cv2 {cv2.__version__} has no HOGDescriptor: OpenCV 5 removed it, and the fast HOG backend needs it. "
        "Install opencv-python-headless < 5 (pyproject pins it)."
    )


# ---------------------------------------------------------------------------- HOG


@pytest.mark.parametrize("backend", ["opencv", "skimage"])
def test_hog_shape_and_dtype(backend):
    out = hog_features(smooth_images(3), backend=backend)
    assert out.shape == (3, 7 * 7 * 2 * 2 * 9)
    assert out.dtype == np.float32


def test_skimage_backend_is_skimage():
    images = smooth_images(2)
    expected = np.stack([skimage_hog(im, 9, (8, 8), (2, 2), "L2-Hys") for im in images])
    np.testing.assert_allclose(hog_features(images, backend="skimage"), expected, rtol=1e-6, atol=1e-7)


def _per_image_correlation(a, b):
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


# The backends cannot agree bit for bit: OpenCV splits every gradient vote between
# the two nearest orientation bins and the four nearest cells of a block (trilinear
# interpolation); scikit-image gives it to one bin of one cell. Same layout, same
# cells, blocks, bins and normalisation otherwise. Measured on real 64x64 faces: per
# image Pearson r about 0.92 on average, never below 0.85; with the raw OpenCV
# order it is about 0.2. So the tolerance is on correlation, not on values.
HOG_MIN_R, HOG_MEDIAN_R = 0.85, 0.90


def test_hog_backends_agree_on_real_faces(faces):
    r = _per_image_correlation(hog_features(faces, backend="opencv"), hog_features(faces, backend="skimage"))
    assert np.median(r) >= HOG_MEDIAN_R, np.median(r)
    assert r.min() >= HOG_MIN_R, r.min()


@pytest.mark.parametrize(
    "shape, cells, block",
    [((64, 64), (8, 8), (2, 2)), ((48, 72), (8, 6), (2, 3)), ((50, 70), (8, 8), (2, 2)), ((64, 64), (16, 16), (1, 1))],
)
def test_hog_backends_agree_in_layout(shape, cells, block):
    images = smooth_images(6, shape)
    a = hog_features(images, pixels_per_cell=cells, cells_per_block=block, backend="opencv")
    b = hog_features(images, pixels_per_cell=cells, cells_per_block=block, backend="skimage")
    assert a.shape == b.shape
    assert np.median(_per_image_correlation(a, b)) >= 0.8


@pytest.mark.parametrize("backend", ["opencv", "skimage"])
def test_hog_horizontal_edge_fills_the_90_degree_bin(backend):
    image = np.zeros((64, 64), np.uint8)
    image[32:] = 200  # gradient points down: 90 degrees, the centre of bin 4 of 9
    per_bin = hog_features(image[None], backend=backend).reshape(-1, 9).sum(axis=0)
    assert per_bin[4] / per_bin.sum() > 0.95


@pytest.mark.parametrize("backend", ["opencv", "skimage"])
def test_hog_colour_images(backend):
    rgb = np.stack([smooth_images(2, seed=s) for s in range(3)], axis=-1)
    assert hog_features(rgb, backend=backend).shape == (2, 1764)


def test_hog_l2_norm_option():
    a = hog_features(smooth_images(2), block_norm="L2")
    blocks = a.reshape(2, -1, 36)
    np.testing.assert_allclose(np.linalg.norm(blocks, axis=-1), 1.0, atol=3e-3)  # OpenCV adds a small epsilon


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"backend": "cuda"}, "backend='cuda'"),
        ({"block_norm": "L1"}, "block_norm='L1'"),
        ({"block_norm": "Linf", "backend": "skimage"}, "block_norm='Linf'"),
        ({"orientations": 0}, "orientations=0"),
        ({"pixels_per_cell": (8, 0)}, r"pixels_per_cell=\(8, 0\)"),
        ({"cells_per_block": "big"}, "cells_per_block='big'"),
        ({"pixels_per_cell": (40, 40)}, "fewer than one block"),
    ],
)
def test_hog_errors_name_the_bad_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        hog_features(smooth_images(1), **kwargs)


def test_hog_rejects_bad_stacks():
    with pytest.raises(ValueError, match=r"shape \(64, 64\)"):
        HOGFeatures().transform(np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        HOGFeatures().transform(np.full((1, 64, 64), 0.5))
    with pytest.raises(ValueError, match="no images"):
        HOGFeatures().fit(np.zeros((0, 64, 64), np.uint8))


def test_hog_accepts_whole_numbers_in_other_dtypes():
    images = smooth_images(2)
    np.testing.assert_array_equal(hog_features(images.astype(np.float64)), hog_features(images))


# ---------------------------------------------------------------------------- LBP codes

LBP_SETTINGS = [(8, 1), (8, 2), (16, 2), (4, 1), (12, 1.5), (24, 3), (8, 2.5), (6, 0.7)]
LBP_METHODS = ["default", "ror", "uniform", "nri_uniform", "var"]


def _skimage_codes(images, P, R, method):
    return np.stack([local_binary_pattern(im, P, R, method) for im in images])


def _assert_same_codes(ours, ref):
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours.astype(np.float64), ref)  # NaN == NaN here (var)


@pytest.mark.parametrize("P, R", LBP_SETTINGS)
@pytest.mark.parametrize("method", LBP_METHODS)
def test_lbp_codes_identical_to_skimage_on_random_images(P, R, method):
    if method in ("ror", "nri_uniform") and P > 20:
        pytest.skip("table methods need P <= 20")
    rng = np.random.default_rng(P * 100 + int(R * 10))
    images = rng.integers(0, 256, size=(4, 19, 23), dtype=np.uint8)
    images[0] = 77  # flat: every neighbour ties with the centre
    images[1, :, :9] = 0  # flat half, a step edge
    images[2] = rng.integers(100, 103, size=(19, 23))  # near-flat: many ties
    _assert_same_codes(lbp_codes(images, P, R, method), _skimage_codes(images, P, R, method))


@pytest.mark.parametrize("P, R", [(8, 1), (8, 2), (16, 2), (8, 3)])
@pytest.mark.parametrize("method", ["default", "ror", "uniform", "var"])
def test_lbp_codes_identical_to_skimage_on_real_faces(faces, P, R, method):
    images = faces[:12]
    _assert_same_codes(lbp_codes(images, P, R, method), _skimage_codes(images, P, R, method))


def test_lbp_codes_identical_on_float_and_uint16_images():
    rng = np.random.default_rng(1)
    floats = rng.random((3, 16, 17)) * 255
    floats[0, 4:8, 4:8] = 10.0
    wide = rng.integers(0, 65536, size=(2, 16, 17), dtype=np.uint16)
    with pytest.warns(UserWarning):  # skimage warns about float images
        ref = _skimage_codes(floats, 8, 1, "uniform")
    _assert_same_codes(lbp_codes(floats, 8, 1, "uniform"), ref)
    _assert_same_codes(lbp_codes(wide, 16, 2, "default"), _skimage_codes(wide, 16, 2, "default"))


@pytest.mark.parametrize("P, R", [(8, 1), (16, 2), (12, 1.5), (8, 2.5), (6, 0.7), (24, 3)])
@pytest.mark.parametrize("method", ["default", "var"])
def test_lbp_codes_identical_on_flat_images_of_every_level(P, R, method):
    # Every neighbour interpolates equal pixels: whether it comes out as exactly
    # the centre or one ulp off depends on the last bits of the weights at that
    # position, so this catches any weight that is not scikit-image's own.
    images = np.repeat(np.arange(256, dtype=np.uint8), 2)[:, None, None] * np.ones((1, 64, 61), np.uint8)
    images[1::2, 20:40, 25:45] = 255 - images[1::2, 20:40, 25:45]  # and a square of the mirrored level
    _assert_same_codes(lbp_codes(images, P, R, method), _skimage_codes(images, P, R, method))


def test_lbp_codes_identical_across_chunks():
    # a stack of several chunks (16 images of 64x64 each), the last one partial
    images = smooth_images(37, seed=3)
    _assert_same_codes(lbp_codes(images, 8, 1, "uniform"), _skimage_codes(images, 8, 1, "uniform"))
    _assert_same_codes(lbp_codes(images, 8, 2, "var", n_jobs=2), _skimage_codes(images, 8, 2, "var"))


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (5, 1), (3, 7)])
@pytest.mark.parametrize("P, R", [(8, 1), (16, 2), (12, 1.5), (8, 2.5), (6, 0.7), (24, 3)])
def test_lbp_codes_tiny_images(shape, P, R):
    image = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape) * 40
    _assert_same_codes(lbp_codes(image, P, R, "default"), local_binary_pattern(image, P, R, "default"))


def test_lbp_codes_2d_in_2d_out_and_dtype():
    image = smooth_images(1)[0]
    codes = lbp_codes(image)
    assert codes.shape == image.shape and codes.dtype == np.uint8
    assert lbp_codes(image[None], 16, 2, "default").dtype == np.uint16


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"P": 0}, "P=0"),
        ({"P": 2.5}, "P=2.5"),
        ({"R": -1}, "R=-1"),
        ({"method": "fancy"}, "method='fancy'"),
        ({"P": 24, "method": "ror"}, "P <= 20"),
    ],
)
def test_lbp_codes_errors_name_the_bad_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lbp_codes(smooth_images(1), **kwargs)


def test_lbp_codes_rejects_bad_stacks():
    with pytest.raises(ValueError, match=r"shape \(2, 8, 8, 3\)"):
        lbp_codes(np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        lbp_codes(np.full((1, 8, 8), np.nan))


# ---------------------------------------------------------------------------- LBP histograms


def test_lbp_histograms_count_codes_per_cell():
    images = smooth_images(3, (64, 48))
    hist = lbp_histograms(images, P=8, R=1, grid=(4, 3))
    assert hist.shape == (3, 4 * 3 * 10) and hist.dtype == np.float32
    codes = lbp_codes(images, 8, 1)
    cell = codes[1, 16:32, 32:48]  # cell (row 1, col 2): 16x16 pixels
    expected = np.bincount(cell.ravel(), minlength=10) / cell.size
    np.testing.assert_allclose(hist[1].reshape(4, 3, 10)[1, 2], expected, rtol=1e-6)
    np.testing.assert_allclose(hist.reshape(3, 12, 10).sum(axis=-1), 1.0, rtol=1e-6)


def test_lbp_histograms_uneven_cells_still_normalised():
    hist = lbp_histograms(smooth_images(2, (30, 31)), grid=(4, 4))
    np.testing.assert_allclose(hist.reshape(2, 16, 10).sum(axis=-1), 1.0, rtol=1e-6)


def test_lbp_multiscale_concatenates_radii():
    images = smooth_images(2)
    multi = LBPFeatures(radii=(1, 2)).transform(images)
    single = [LBPFeatures(R=r).transform(images) for r in (1, 2)]
    np.testing.assert_array_equal(multi, np.hstack(single))


@pytest.mark.parametrize("method", ["default", "ror", "nri_uniform"])
def test_lbp_histogram_bins_per_method(method):
    hist = lbp_histograms(smooth_images(1, (16, 16)), P=8, method=method, grid=(1, 1))
    assert hist.shape == (1, lbp_n_bins(8, method))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "var"}, "method='var'"),
        ({"grid": (0, 4)}, r"grid=\(0, 4\)"),
        ({"grid": "8x8"}, "grid='8x8'"),
        ({"grid": (100, 8)}, "100 cells"),
        ({"radii": []}, "radii"),
    ],
)
def test_lbp_histogram_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LBPFeatures(**kwargs).transform(smooth_images(1))


def test_lbp_features_reject_colour():
    with pytest.raises(ValueError, match=r"\(n_images, height, width\)"):
        LBPFeatures().fit(np.zeros((2, 16, 16, 3), np.uint8))


# ---------------------------------------------------------------------------- pixels, flip pairs


def test_pixel_features():
    images = smooth_images(2)
    full = PixelFeatures().transform(images)
    assert full.shape == (2, 4096) and full.dtype == np.float32 and 0 <= full.min() and full.max() <= 1
    small = pixel_features(images, size=(16, 8))
    expected = cv2.resize(images[1], (8, 16), interpolation=cv2.INTER_AREA).ravel() / 255
    np.testing.assert_allclose(small[1], expected, rtol=1e-6)
    with pytest.raises(ValueError, match="size=0"):
        PixelFeatures(size=0).transform(images)


def test_flip_pairs_hold_the_mirror_images_features():
    images = smooth_images(3)
    pairs = HFlipPairs(HOGFeatures()).transform(images)
    hog = HOGFeatures().transform(images)
    np.testing.assert_array_equal(pairs[:, :1764], hog)
    np.testing.assert_array_equal(pairs[:, 1764:], HOGFeatures().transform(images[:, :, ::-1]))


def test_transformers_are_stateless_and_init_only_stores():
    hog = HOGFeatures(backend="nope")  # no validation in __init__
    assert hog.backend == "nope"
    with pytest.raises(ValueError, match="backend='nope'"):
        hog.fit(smooth_images(1))
    images = smooth_images(2)
    assert np.array_equal(HOGFeatures().transform(images), HOGFeatures().fit(images[:1]).transform(images))


def test_lbp_threads_give_the_same_result():
    images = smooth_images(40, (32, 32))
    np.testing.assert_array_equal(lbp_codes(images, n_jobs=3), lbp_codes(images))
    np.testing.assert_array_equal(lbp_histograms(images, radii=(1, 2), n_jobs=2), lbp_histograms(images, radii=(1, 2)))
    with pytest.raises(ValueError, match="n_jobs=0"):
        lbp_codes(images, n_jobs=0)
