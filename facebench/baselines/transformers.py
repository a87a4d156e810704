"""The stateless scikit-learn transformers around the feature functions of :mod:`.features`.

The transformers take ``X`` of shape ``(n_images, height, width)`` (uint8 grayscale;
HOG and pixels also take ``(n_images, height, width, 3)``) and return
``(n_images, n_features)`` float32. :class:`ColorFeatures` takes RGB stacks only, and
:class:`OnGray` runs a grayscale transformer on RGB stacks, so that one RGB stack can
feed a union of HOG, LBP and colour features. :class:`HFlipPairs` turns any of them
into a transformer whose rows hold the features of each image *and* of its mirror
image, which is what the flip-augmented models of :mod:`facebench.baselines.registry`
train on.
"""

from __future__ import annotations

import cv2
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone

from facebench.baselines.features import (
    _as_uint8,
    _check_stack,
    _per_pixel,
    color_features,
    hog_features,
    pixel_features,
)
from facebench.baselines.lbp import lbp_histograms
from facebench.image_stacks import StackInput

__all__ = ["ColorFeatures", "HFlipPairs", "HOGFeatures", "LBPFeatures", "OnGray", "PixelFeatures"]


class _ImageTransformer(StackInput, TransformerMixin, BaseEstimator):
    """Base of the stateless image-stack transformers: fit validates and does nothing else."""

    def fit(self, X, y=None):
        """Validate the parameters on ``X``; nothing is learned.

        Parameters
        ----------
        X : ndarray of shape (n_images, height, width)
            Image stack.
        y : Ignored

        Returns
        -------
        self : object
        """
        self.transform(X[:1] if hasattr(X, "__len__") and len(X) else X)
        return self


class HOGFeatures(_ImageTransformer):
    """HOG descriptor of each image (see :func:`hog_features`).

    Parameters
    ----------
    orientations : int, default=9
    pixels_per_cell : (int, int), default=(8, 8)
    cells_per_block : (int, int), default=(2, 2)
    block_norm : {"L2-Hys", "L2", "L1", "L1-sqrt"}, default="L2-Hys"
    backend : {"opencv", "skimage"}, default="opencv"

    Examples
    --------
    >>> import numpy as np
    >>> HOGFeatures().transform(np.zeros((2, 64, 64), np.uint8)).shape
    (2, 1764)
    """

    def __init__(self, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2), block_norm="L2-Hys", backend="opencv"):
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.block_norm = block_norm
        self.backend = backend

    def transform(self, X):
        """HOG features of each image of ``X`` (uint8, ``(n_images, height, width[, 3])``):
        float32 ``(n_images, n_features)``."""
        return hog_features(X, self.orientations, self.pixels_per_cell, self.cells_per_block, self.block_norm, self.backend)


class LBPFeatures(_ImageTransformer):
    """Per-cell LBP code histograms of each image (see :func:`lbp_histograms`).

    Parameters
    ----------
    P : int, default=8
        Number of neighbours.
    R : float, default=1
        Radius (ignored when ``radii`` is given).
    method : {"uniform", "nri_uniform", "ror", "default"}, default="uniform"
    grid : (int, int), default=(8, 8)
        Cells (rows, cols).
    radii : sequence of float, optional
        Several radii: multi-scale LBP, histograms concatenated.

    Examples
    --------
    >>> import numpy as np
    >>> LBPFeatures().transform(np.zeros((2, 64, 64), np.uint8)).shape
    (2, 640)
    """

    def __init__(self, P=8, R=1, method="uniform", grid=(8, 8), radii=None):
        self.P = P
        self.R = R
        self.method = method
        self.grid = grid
        self.radii = radii

    def transform(self, X):
        """LBP histograms of each image.

        Parameters
        ----------
        X : ndarray of shape (n_images, height, width)
            Grayscale images (uint8 recommended).

        Returns
        -------
        features : ndarray of shape (n_images, n_radii * rows * cols * n_bins), float32
        """
        X = _check_stack(X, "X", allow_color=False)
        return lbp_histograms(X, self.P, self.R, self.method, self.grid, self.radii)


class PixelFeatures(_ImageTransformer):
    """Raw pixels in [0, 1], optionally downscaled (see :func:`pixel_features`).

    Parameters
    ----------
    size : int or (int, int), optional
        Output image size (height, width); ``None`` keeps the input size.
    """

    def __init__(self, size=None):
        self.size = size

    def transform(self, X):
        """Flattened pixels of each image of ``X`` (``(n_images, height, width[, 3])``): float32
        ``(n_images, n_pixels)``."""
        return pixel_features(X, self.size)


class ColorFeatures(_ImageTransformer):
    """CIELAB mean and standard deviation per cell of RGB images (see :func:`color_features`).

    Parameters
    ----------
    grid : (int, int), default=(8, 8)
        Cells (rows, cols).

    Examples
    --------
    >>> import numpy as np
    >>> ColorFeatures().transform(np.zeros((2, 64, 64, 3), np.uint8)).shape
    (2, 384)
    """

    def __init__(self, grid=(8, 8)):
        self.grid = grid

    def transform(self, X):
        """Colour statistics of each image.

        Parameters
        ----------
        X : ndarray of shape (n_images, height, width, 3)
            RGB uint8 images.

        Returns
        -------
        features : ndarray of shape (n_images, rows * cols * 6), float32
        """
        return color_features(X, self.grid)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = False  # (n, h, w, 3) only
        return tags


class _Wrapper(_ImageTransformer):
    """Base of the transformers that wrap another one (``features``)."""

    def __init__(self, features):
        self.features = features


class OnGray(_Wrapper):
    """Run a grayscale feature transformer on RGB images, converted to gray first.

    The conversion is OpenCV's ``COLOR_RGB2GRAY`` (ITU-R BT.601 luma, as JPEG
    decoders use for grayscale), so HOG or LBP of an RGB stack describes nearly
    the same image as of the stack decoded in gray (pixel values may differ by
    one from rounding). Grayscale stacks pass through unchanged.

    Parameters
    ----------
    features : transformer
        A stateless image-stack transformer.
    """

    def transform(self, X):
        """The features of the grayscale images.

        Parameters
        ----------
        X : ndarray of shape (n_images, height, width) or (n_images, height, width, 3)

        Returns
        -------
        features : ndarray of shape (n_images, n_features)
        """
        X = _check_stack(X, "X")
        if X.ndim == 4:
            X = _as_uint8(X, "X")
            X = _per_pixel(X, cv2.COLOR_RGB2GRAY)
        return clone(self.features).fit_transform(X)


class HFlipPairs(_Wrapper):
    """Features of each image next to those of its horizontal mirror image.

    The output row of image ``x`` is ``[f(x), f(x[:, ::-1])]``: twice as many
    columns as ``features`` gives. Flip-augmented models
    (:class:`facebench.baselines.estimators.HFlipAugmented`) train on both halves
    as separate rows and predict from the first half (or, for regressors that
    ask, from the mean over both), while the features of a stack are still
    computed once, by this stateless step.

    Parameters
    ----------
    features : transformer
        A stateless image-stack transformer (HOG, LBP, pixels or a union of them).
    """

    def transform(self, X):
        """Features of the images (``X``: a gray or RGB stack) and of their mirror images,
        side by side: ``(n_images, 2 * n_features)``."""
        X = _check_stack(X, "X")
        features = clone(self.features)
        return np.hstack([features.fit_transform(X), features.fit_transform(np.ascontiguousarray(X[:, :, ::-1]))])


