"""Biologically inspired features (BIF): a Gabor bank (S1), then scale and position pooling (C1).

:func:`bif_features` takes ``(n_images, height, width)`` uint8 grayscale stacks and
returns ``(n_images, n_features)`` float32, as the other feature functions of
:mod:`facebench.baselines.features`; :class:`BIFFeatures` is its stateless
scikit-learn transformer.

The model is Guo et al.'s age estimator (after Serre et al.'s HMAX front end):

- **S1**: the absolute response of even (cosine) Gabor filters at 16 sizes, 5x5 to
  35x35 pixels, and ``orientations`` angles; ``sigma = 0.0036 s^2 + 0.35 s + 0.18`` and
  wavelength ``sigma / 0.8`` for a filter of side ``s``, aspect ratio 0.3; every
  filter has zero mean and unit L2 norm.
- **C1**: the 16 sizes form 8 bands of two adjacent sizes; per band and orientation,
  the pixel-wise maximum over its two sizes, then over square pooling cells of 6, 8, ...,
  20 pixels (band 1 to 8) placed every half cell (``overlap=True``, as in the paper) or
  side by side: the maximum in each cell (``"max"``), the standard deviation in each
  cell (``"std"``, Guo's "STD" operator) or both.

Output layout: band by band; within a band ``max`` then ``std`` (as chosen), each
``(orientations, cell rows, cell columns)`` in C order.

References
----------
G. Guo, G. Mu, Y. Fu, T. S. Huang, "Human age estimation using bio-inspired
features", CVPR 2009, doi:10.1109/CVPR.2009.5206681.
T. Serre, L. Wolf, S. Bileschi, M. Riesenhuber, T. Poggio, "Robust object
recognition with cortex-like mechanisms", IEEE TPAMI 29(3), 2007,
doi:10.1109/TPAMI.2007.56.

Notes
-----
Departures from the paper:

(I) By default (``pyramid=True``) the bands whose filters are coarse are computed on
a Gaussian pyramid (``cv2.pyrDown``): a band is filtered at the coarsest level where
its shortest wavelength still spans at least ``MIN_WAVELENGTH_PX`` pixels, with the
filter scaled to that level (side, sigma and wavelength divided by 2 per level, L2
norm doubled so responses keep their size), and its cells mapped to that level. On
64x64 faces, bands 1-2 are filtered at full size, 3-4 at 32x32 and 5-8 at 16x16: about
3x faster than ``pyramid=False`` (every filter at full size), with features that
correlate with those at r = 0.97 (median; at least 0.92) face by face on real faces
(``tests/test_bif.py``).
(II) Cells are laid from the top-left corner; pixels right of or below the last whole
cell are not pooled (at most half a cell).
(III) Guo et al. used 60x60 faces; facebench's are 64x64, with the same cell sizes.
"""

from __future__ import annotations

import numbers

import cv2
import numpy as np
from facebench.baselines.features import _as_uint8, _check_stack
from facebench.baselines.transformers import _ImageTransformer

__all__ = ["BAND_CELLS", "BIFFeatures", "FILTER_SIZES", "MIN_WAVELENGTH_PX", "POOLINGS", "bif_bank",
           "bif_features", "bif_shape"]

#: Gabor filter sides (pixels), two per band (Guo et al., Table 1).
FILTER_SIZES = tuple(range(5, 37, 2))
#: Pooling cell side (pixels) of each band (Guo et al., Table 1).
BAND_CELLS = tuple(range(6, 22, 2))
#: Aspect ratio of the Gabor envelope (Serre et al.).
GAMMA = 0.3
#: Pooling statistics.
POOLINGS = ("max", "std", "both")
#: With ``pyramid=True``, a band is filtered at the coarsest pyramid level where its
#: shortest wavelength still spans this many pixels (2 is the Nyquist limit).
MIN_WAVELENGTH_PX = 2.8
# Smallest side of a pyramid level (pixels).
_MIN_LEVEL_SIDE = 8
# Images per chunk: bounds the memory of the response maps (chunk * orientations * h * w floats).
_CHUNK = 256


def _sigma(size):
    return 0.0036 * size * size + 0.35 * size + 0.18


def _check_params(n_bands, orientations, pooling, overlap, pyramid, contrast=False):
    if isinstance(n_bands, bool) or not isinstance(n_bands, numbers.Integral) or not 1 <= n_bands <= len(BAND_CELLS):
        raise ValueError(f"n_bands must be an int in 1..{len(BAND_CELLS)}; got n_bands={n_bands!r}")
    if isinstance(orientations, bool) or not isinstance(orientations, numbers.Integral) or orientations < 1:
        raise ValueError(f"orientations must be a positive int; got orientations={orientations!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}; got pooling={pooling!r}")
    for name, value in (("overlap", overlap), ("pyramid", pyramid), ("contrast", contrast)):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False; got {name}={value!r}")


def _level(wavelength, side, pyramid):
    """The pyramid level a band with this shortest wavelength is filtered at."""
    level = 0
    while pyramid and wavelength / 2 ** (level + 1) >= MIN_WAVELENGTH_PX and side / 2 ** (level + 1) >= _MIN_LEVEL_SIDE:
        level += 1
    return level


def _kernel(size, theta, level):
    """Zero-mean even Gabor filter of side ``size`` at full resolution, scaled to a pyramid level."""
    f = 2**level
    sigma, wavelength = _sigma(size) / f, _sigma(size) / 0.8 / f
    side = max(3, 2 * int(round((size / f - 1) / 2)) + 1)
    kernel = cv2.getGaborKernel((side, side), sigma, theta, wavelength, GAMMA, 0, ktype=cv2.CV_64F)
    kernel -= kernel.mean()
    kernel *= f / np.linalg.norm(kernel)
    return kernel.astype(np.float32)


def bif_bank(orientations=8, n_bands=8, side=64, pyramid=True):
    """The filters of each band, as :func:`bif_features` applies them.

    Parameters
    ----------
    orientations : int, default=8
        Angles ``k * pi / orientations``; 0 responds to vertical stripes (intensity varying
        along the columns), ``pi / 2`` to horizontal ones.
    n_bands : int, default=8
    side : int, default=64
        The smaller image side (it bounds the pyramid).
    pyramid : bool, default=True

    Returns
    -------
    bands : list of dict
        Per band: ``sizes`` (the two filter sides at full resolution), ``cell`` (pooling
        cell side, pixels), ``level`` (pyramid level filtered at) and ``kernels``, one float32
        ``(orientations, k, k)`` array per size, at that level.
    """
    _check_params(n_bands, orientations, "max", True, pyramid)
    bands = []
    for b in range(n_bands):
        sizes = FILTER_SIZES[2 * b : 2 * b + 2]
        level = _level(_sigma(sizes[0]) / 0.8, side, pyramid)
        kernels = [np.stack([_kernel(s, np.pi * o / orientations, level) for o in range(orientations)]) for s in sizes]
        bands.append({"sizes": sizes, "cell": BAND_CELLS[b], "level": level, "kernels": kernels})
    return bands


def _windows(length, cell, overlap, level_length):
    """Cell starts along one axis and the cell side, in the pixels of a pyramid level."""
    stride = cell // 2 if overlap else cell
    starts = np.arange(0, length - cell + 1, stride)
    f = length / level_length
    side = max(1, min(level_length, int(np.floor(cell / f + 0.5))))
    return np.minimum(np.floor(starts / f + 0.5).astype(int), level_length - side), side


def bif_shape(image_shape, n_bands=8, orientations=8, pooling="both", overlap=True):
    """Cells ``(rows, cols)`` per band for an image of ``(height, width)``, and the feature count."""
    h, w = image_shape
    cells = [(len(range(0, h - c + 1, c // 2 if overlap else c)), len(range(0, w - c + 1, c // 2 if overlap else c)))
             for c in BAND_CELLS[:n_bands]]
    per_cell = orientations * (2 if pooling == "both" else 1)
    return cells, per_cell * sum(r * c for r, c in cells)


def _filter_stack(levels, kernels):
    """|response| of every image of ``levels`` (n, h, w) to each kernel, as (n, len(kernels), h, w)."""
    n, h, w = levels.shape
    pad = max(k.shape[0] for k in kernels) // 2
    # one tall mosaic of the reflect-padded images: one filter2D call per kernel for the whole chunk,
    # the same values as filtering each image with OpenCV's default (reflect-101) border
    padded = np.pad(levels, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    mosaic = padded.reshape(n * (h + 2 * pad), w + 2 * pad)
    out = np.empty((n, len(kernels), h, w), np.float32)
    for i, kernel in enumerate(kernels):
        response = cv2.filter2D(mosaic, cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT_101)
        out[:, i] = np.abs(response.reshape(n, h + 2 * pad, w + 2 * pad)[:, pad : pad + h, pad : pad + w])
    return out


def _pool(maps, rows, cols, pooling):
    """Per-cell max and/or standard deviation of maps (n, o, h, w): list of (n, o, R, C) float32 arrays."""
    (ra, tall), (ca, wide) = rows, cols
    n, o, h, w = maps.shape
    # the maps as one tall image; a cell never crosses from one map to the next
    mosaic = maps.reshape(n * o * h, w)
    top = (np.arange(n * o) * h)[:, None, None] + ra[None, :, None]  # (maps, R, 1) mosaic rows
    left = ca[None, None, :]
    out = []
    if pooling in ("max", "both"):
        # max over the window whose top-left corner is each pixel (anchor (0, 0)), kept at the cell corners
        dilated = cv2.dilate(mosaic, np.ones((tall, wide), np.uint8), anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
        out.append(dilated[top, left].reshape(n, o, len(ra), len(ca)))
    if pooling in ("std", "both"):
        total, squares = cv2.integral2(mosaic, sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)

        def box(s):
            return s[top + tall, left + wide] - s[top, left + wide] - s[top + tall, left] + s[top, left]

        area = float(tall * wide)
        mean = box(total) / area
        std = np.sqrt(np.maximum(box(squares) / area - mean * mean, 0.0))
        out.append(std.astype(np.float32).reshape(n, o, len(ra), len(ca)))
    return out


def bif_features(X, n_bands=8, orientations=8, pooling="both", overlap=True, pyramid=True, contrast=False):
    """Biologically inspired features (Guo et al.) of each image of a grayscale stack.

    Parameters
    ----------
    X : ndarray of shape (n_images, height, width)
        Grayscale images, uint8 (or whole numbers in 0..255).
    n_bands : int, default=8
        Bands used, from the finest: 1 to 8.
    orientations : int, default=8
    pooling : {"both", "max", "std"}, default="both"
        Statistic per pooling cell (see the module notes).
    overlap : bool, default=True
        Cells every half cell (as the paper), else side by side.
    pyramid : bool, default=True
        Filter coarse bands on a Gaussian pyramid (fast; see the module notes).
    contrast : bool, default=False
        Divide each image by the standard deviation of its pixels first, so that the
        features do not grow with the face's contrast (flat images stay all zero).

    Returns
    -------
    features : ndarray of shape (n_images, n_features), float32
        ``bif_shape((height, width), ...)[1]`` features.

    Raises
    ------
    ValueError
        For a bad parameter, a stack that is not grayscale uint8, or images smaller than
        the largest pooling cell used.
    """
    _check_params(n_bands, orientations, pooling, overlap, pyramid, contrast)
    X = _as_uint8(_check_stack(X, "X", allow_color=False), "X")
    n, h, w = X.shape
    biggest = BAND_CELLS[n_bands - 1]
    if min(h, w) < biggest:
        raise ValueError(f"images of {h}x{w} pixels are smaller than the {biggest}x{biggest}-pixel pooling cells of "
                         f"band {n_bands}; use n_bands <= {sum(c <= min(h, w) for c in BAND_CELLS)} or larger images")
    bands = bif_bank(orientations, n_bands, min(h, w), pyramid)
    n_features = bif_shape((h, w), n_bands, orientations, pooling, overlap)[1]
    out = np.empty((n, n_features), np.float32)
    for start in range(0, n, _CHUNK):
        chunk = X[start : start + _CHUNK]
        levels = _pyramid(chunk, max(b["level"] for b in bands), contrast)
        parts = []
        for band in bands:
            maps = _band_maps(levels, band)
            rows = _windows(h, band["cell"], overlap, maps.shape[2])
            cols = _windows(w, band["cell"], overlap, maps.shape[3])
            parts.extend(p.reshape(len(chunk), -1) for p in _pool(maps, rows, cols, pooling))
        out[start : start + len(chunk)] = np.concatenate(parts, axis=1)
    return out


def _pyramid(X, top, contrast=False):
    """Levels 0..top of the Gaussian pyramid of a uint8 stack, as float32 in [0, 1] (or of unit
    standard deviation per image, with ``contrast``)."""
    base = X.astype(np.float32) / 255.0
    if contrast:
        base /= np.maximum(base.std(axis=(1, 2), keepdims=True), 1e-3)
    levels = [base]
    for _ in range(top):
        levels.append(np.stack([cv2.pyrDown(im) for im in levels[-1]]))
    return levels


def _band_maps(levels, band):
    """S1 of a band, the maximum over its two sizes: (n, orientations, h, w) at the band's level."""
    small, large = band["kernels"]
    responses = _filter_stack(levels[band["level"]], [*small, *large])
    return np.maximum(responses[:, : len(small)], responses[:, len(small) :])


class BIFFeatures(_ImageTransformer):
    """Biologically inspired features of each image (see :func:`bif_features`).

    Parameters
    ----------
    n_bands : int, default=8
    orientations : int, default=8
    pooling : {"both", "max", "std"}, default="both"
    overlap : bool, default=True
    pyramid : bool, default=True
    contrast : bool, default=False

    Examples
    --------
    >>> import numpy as np
    >>> BIFFeatures().transform(np.zeros((2, 64, 64), np.uint8)).shape
    (2, 16016)
    """

    def __init__(self, n_bands=8, orientations=8, pooling="both", overlap=True, pyramid=True, contrast=False):
        self.n_bands = n_bands
        self.orientations = orientations
        self.pooling = pooling
        self.overlap = overlap
        self.pyramid = pyramid
        self.contrast = contrast

    def transform(self, X):
        """BIF of each image.

        Parameters
        ----------
        X : ndarray of shape (n_images, height, width)
            Grayscale uint8 images.

        Returns
        -------
        features : ndarray of shape (n_images, n_features), float32
        """
        return bif_features(X, self.n_bands, self.orientations, self.pooling, self.overlap, self.pyramid, self.contrast)
