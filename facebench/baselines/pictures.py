"""The teaching pictures of the hand-crafted features, as arrays (drawn by ``facebench.reports``).

As scikit-image's ``hog(..., visualize=True)`` sits beside ``hog``, these sit beside the
features they picture and compute them with the same code and parameters:

- :func:`hog_picture`: scikit-image's picture of the histograms of oriented gradients,
  with the parameters of a ``HOGFeatures`` step (:func:`hog_params`). Each cell shows a
  star of line segments, one per orientation bin, as bright as the gradient energy in
  that bin; segments run *along* edges (perpendicular to the gradient).
- :func:`lbp_picture`: the per-pixel codes of :func:`facebench.baselines.lbp_codes`
  (what the models use) with a ``LBPFeatures`` step's ``P``, ``R`` and method, and the
  code histogram of every cell, exactly what :func:`facebench.baselines.lbp_histograms`
  feeds the classifier. :func:`lbp_cells` names four cells worth showing.
- :func:`bif_view`: one band of the biologically inspired features
  (:class:`facebench.baselines.bif.BIFFeatures`): its Gabor filters, the S1 responses of
  the face (the maximum over the band's two filter sizes) and the C1 cells, exactly the
  band's part of the feature vector.
- :func:`find_steps`: the ``HOGFeatures`` / ``LBPFeatures`` steps inside a fitted
  pipeline, so the pictures use a run's own parameters.
"""

from __future__ import annotations

import numpy as np

from facebench.baselines.bif import BIFFeatures, _band_maps, _pyramid, bif_bank, bif_features, bif_shape
from facebench.baselines.features import _pair
from facebench.baselines.transformers import HOGFeatures, LBPFeatures
from facebench.baselines.lbp import lbp_codes, lbp_histograms

__all__ = ["LBP_CELLS", "bif_view", "find_steps", "hog_params", "hog_picture", "lbp_cells", "lbp_picture", "lbp_settings"]

#: Cells whose LBP histograms are shown: (label, row, column) as fractions of the grid
#: (A and B near the eyes, C the mouth, D the forehead on an aligned face).
LBP_CELLS = (("A", 0.40, 0.28), ("B", 0.40, 0.72), ("C", 0.78, 0.50), ("D", 0.12, 0.50))


def hog_params(hog=None) -> dict:
    """The keyword arguments of ``skimage.feature.hog`` that a ``HOGFeatures`` step uses.

    Parameters
    ----------
    hog : HOGFeatures, optional
        Default: the registry's HOG (``HOGFeatures()``).

    Returns
    -------
    dict
        ``orientations``, ``pixels_per_cell``, ``cells_per_block``, ``block_norm``.
    """
    hog = HOGFeatures() if hog is None else hog
    return {
        "orientations": int(hog.orientations),
        "pixels_per_cell": _pair(hog.pixels_per_cell, "pixels_per_cell"),
        "cells_per_block": _pair(hog.cells_per_block, "cells_per_block"),
        "block_norm": hog.block_norm,
    }


def hog_picture(image, hog=None) -> np.ndarray:
    """scikit-image's HOG picture of one image, with a ``HOGFeatures`` step's parameters.

    Parameters
    ----------
    image : ndarray of shape (H, W) or (H, W, 3), uint8
        The image as the classical models see it.
    hog : HOGFeatures, optional
        The run's HOG step (default: the registry's).

    Returns
    -------
    picture : ndarray of shape (H, W), float64 >= 0
        ``skimage.feature.hog(image, **hog_params(hog), visualize=True)[1]``. Its
        feature vector is ``hog_features(image[None], ..., backend="skimage")``: the
        same cells, blocks and bins as the model's (OpenCV) features, which agree
        with it approximately (see :func:`facebench.baselines.hog_features`).
    """
    from skimage.feature import hog as sk_hog

    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W) or (H, W, 3); got shape {image.shape}")
    _, picture = sk_hog(image, **hog_params(hog), visualize=True, channel_axis=-1 if image.ndim == 3 else None)
    return np.asarray(picture, dtype=np.float64)


def lbp_settings(lbp=None) -> dict:
    """``P``, ``R`` (the first radius of a multi-scale step), ``method`` and ``grid`` of a ``LBPFeatures`` step."""
    lbp = LBPFeatures() if lbp is None else lbp
    radius = lbp.R if lbp.radii is None else list(np.atleast_1d(lbp.radii))[0]
    return {"P": int(lbp.P), "R": float(radius), "method": str(lbp.method), "grid": tuple(int(v) for v in lbp.grid)}


def lbp_picture(image, lbp=None) -> tuple[np.ndarray, np.ndarray]:
    """LBP codes of every pixel and the code histogram of every cell, as the models compute them.

    Parameters
    ----------
    image : ndarray of shape (H, W), uint8
        Grayscale (an RGB image is converted to gray first).
    lbp : LBPFeatures, optional
        The run's LBP step (default: the registry's). For multi-scale LBP (``radii``)
        the first radius is shown.

    Returns
    -------
    codes : ndarray of shape (H, W)
        :func:`facebench.baselines.lbp_codes` with the step's ``P``, ``R``, ``method``.
    histograms : ndarray of shape (grid_rows, grid_cols, n_bins), float32
        :func:`facebench.baselines.lbp_histograms` of the image, reshaped per cell:
        the fraction of the cell's pixels with each code. Flattened, it is the
        model's LBP feature vector (its first radius).
    """
    image = _gray(np.asarray(image))
    s = lbp_settings(lbp)
    codes = lbp_codes(image, P=s["P"], R=s["R"], method=s["method"])
    hist = lbp_histograms(image[None], P=s["P"], R=s["R"], method=s["method"], grid=s["grid"])
    return codes, hist.reshape(s["grid"][0], s["grid"][1], -1)


def lbp_cells(shape, grid) -> list[tuple[str, int, int, tuple[int, int, int, int]]]:
    """The cells of :data:`LBP_CELLS` on an image: ``(label, row, col, (y0, y1, x0, x1))``.

    Cell borders are those of :func:`facebench.baselines.lbp_histograms`
    (``i * height // rows``).
    """
    h, w = shape[:2]
    gy, gx = grid
    ey, ex = (np.arange(gy + 1) * h) // gy, (np.arange(gx + 1) * w) // gx
    out = []
    for label, fy, fx in LBP_CELLS:
        r, c = min(gy - 1, int(fy * gy)), min(gx - 1, int(fx * gx))
        out.append((label, r, c, (int(ey[r]), int(ey[r + 1]), int(ex[c]), int(ex[c + 1]))))
    return out


def bif_view(image, bif=None, band=0) -> dict:
    """What one band of BIF sees in one image, with a ``BIFFeatures`` step's parameters.

    Parameters
    ----------
    image : ndarray of shape (H, W), uint8
        Grayscale (an RGB image is converted to gray first).
    bif : BIFFeatures, optional
        The run's BIF step (default: the registry's, ``BIFFeatures()``).
    band : int, default=0
        0 (finest: 5x5 and 7x7 filters, 6-pixel cells) to ``bif.n_bands - 1``.

    Returns
    -------
    view : dict
        ``kernels``: float32 ``(orientations, k, k)``, the band's smaller Gabor filter at
        full size, one per orientation (angle ``i * pi / orientations``; 0 responds to
        vertical stripes); ``s1``: float32 ``(orientations, h, w)``, the absolute
        responses, the maximum over the band's two sizes, at the pyramid level the band is
        filtered at (``level``; ``h = H / 2**level``); ``max`` and ``std``: float32
        ``(orientations, rows, cols)`` per pooling cell (``None`` when the step does not
        pool that way), which flattened and joined are the band's part of the feature vector;
        ``cell`` (pooling cell side, pixels of the image) and ``sizes`` (the two filter sides).
    """
    bif = BIFFeatures() if bif is None else bif
    image = _gray(np.asarray(image))
    if image.ndim != 2:
        raise ValueError(f"image must be (H, W) or (H, W, 3); got shape {image.shape}")
    if isinstance(band, bool) or not isinstance(band, (int, np.integer)) or not 0 <= band < bif.n_bands:
        raise ValueError(f"band must be an int in 0..{bif.n_bands - 1}; got band={band!r}")
    args = (bif.n_bands, bif.orientations, bif.pooling, bif.overlap)
    features = bif_features(image[None], *args, bif.pyramid)[0]
    bank = bif_bank(bif.orientations, bif.n_bands, min(image.shape), bif.pyramid)
    cells, _ = bif_shape(image.shape, *args)
    stats = ("max", "std") if bif.pooling == "both" else (bif.pooling,)
    sizes = [len(stats) * bif.orientations * r * c for r, c in cells]
    start = sum(sizes[:band])
    part = features[start : start + sizes[band]].reshape(len(stats), bif.orientations, *cells[band])
    pooled = dict(zip(stats, part))
    this = bank[band]
    s1 = _band_maps(_pyramid(image[None], this["level"]), this)[0]
    full = bif_bank(bif.orientations, bif.n_bands, min(image.shape), pyramid=False)[band]
    return {"kernels": full["kernels"][0], "s1": s1, "max": pooled.get("max"), "std": pooled.get("std"),
            "level": this["level"], "cell": this["cell"], "sizes": this["sizes"]}


def find_steps(estimator, cls) -> list:
    """The instances of ``cls`` inside a fitted pipeline, in order.

    Looks through ``Pipeline`` steps, ``FeatureUnion`` transformers and wrappers with a
    ``features`` attribute (``OnGray``, ``HFlipPairs``), and a meta-estimator's fitted
    ``best_estimator_`` / ``estimator_`` / ``transformer_``.

    Parameters
    ----------
    estimator : object
        Usually a fitted scikit-learn pipeline of the registry.
    cls : type
        Usually :class:`HOGFeatures` or :class:`LBPFeatures`.

    Returns
    -------
    list
    """
    if isinstance(estimator, cls):
        return [estimator]
    if hasattr(estimator, "steps"):
        children = [step for _, step in estimator.steps]
    elif hasattr(estimator, "transformer_list"):
        children = [t for _, t in estimator.transformer_list]
    else:
        children = [getattr(estimator, a) for a in ("features", "best_estimator_", "estimator_", "transformer_")
                    if getattr(estimator, a, None) is not None][:1]
    return [found for child in children for found in find_steps(child, cls)]


def _gray(image):
    if image.ndim == 3:
        import cv2

        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return image
