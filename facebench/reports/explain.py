"""What each method sees in one face: HOG, LBP and the CNN side by side.

For a face this module draws, from a run directory's own models and parameters:

- **HOG** (:func:`hog_picture`): scikit-image's picture of the histograms of oriented
  gradients, computed with the parameters of the run's ``HOGFeatures`` step
  (orientations, cell size, block size, block norm) on the image the classical models
  see (``features.image_size`` x ``features.color`` of ``config.toml``). Each cell shows
  a star of line segments, one per orientation bin, as bright as the gradient energy
  in that bin; segments run *along* edges (perpendicular to the gradient).
- **LBP** (:func:`lbp_picture`): the per-pixel codes of
  :func:`facebench.baselines.lbp_codes` (the function the models use) with the run's
  ``P``, ``R`` and method, and the code histograms of a few cells, which is exactly
  what :func:`facebench.baselines.lbp_histograms` feeds the classifier (all cells,
  concatenated).
- **The CNN**: its first-layer filters, the most active feature maps after each block,
  and a Grad-CAM saliency map for each head (:func:`grad_cam`).

Entry points: :func:`explain_figure` (a matplotlib ``Figure`` for one face),
:func:`explain_cli` (``facebench explain``: a PNG or a small HTML page),
:func:`explain_section` (the report's section: a handful of test faces across age
bands and genders).

Grad-CAM (Selvaraju et al., ICCV 2017, :DOI:`10.1109/ICCV.2017.74`) here: the gradient
of a head's score with respect to the last convolutional block's feature maps,
averaged over space, weights those maps; the weighted sum, clipped at zero and
upsampled to the input, is the map. Scores: for ``age`` the predicted age in years
(so the map shows what pushes the age *up*); for ``gender`` the logit of P(female),
with its sign flipped when the face is predicted male, so the map shows the evidence
for the predicted class (the usual Grad-CAM choice). The last block of these small
networks is coarse (4x4 cells for a 64-pixel input), so the maps are blurry by nature.
"""

from __future__ import annotations

import base64
import html
import io
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facebench.errors import UserError

__all__ = [
    "RunMethods",
    "cnn_views",
    "explain_cli",
    "explain_figure",
    "explain_section",
    "first_layer_filters",
    "feature_maps",
    "grad_cam",
    "hog_params",
    "hog_picture",
    "last_conv_layer",
    "lbp_cells",
    "lbp_picture",
    "load_methods",
    "overview_figure",
    "pick_faces",
]

#: Faces shown in the report's section.
N_REPORT_FACES = 6
#: Resolution of the report's figures (the whole report must stay small).
REPORT_DPI = 64
#: Resolution of ``facebench explain`` PNGs.
CLI_DPI = 100
#: Cells whose LBP histograms are drawn: (label, row, column) as fractions of the grid.
LBP_CELLS = (("A", 0.40, 0.28), ("B", 0.40, 0.72), ("C", 0.78, 0.50), ("D", 0.12, 0.50))
_CELL_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e")


# --------------------------------------------------------------------------- HOG and LBP


def hog_params(hog=None) -> dict:
    """The keyword arguments of ``skimage.feature.hog`` that a ``HOGFeatures`` step uses.

    Parameters
    ----------
    hog : facebench.baselines.HOGFeatures, optional
        Default: the registry's HOG (``HOGFeatures()``).

    Returns
    -------
    dict
        ``orientations``, ``pixels_per_cell``, ``cells_per_block``, ``block_norm``.
    """
    from facebench.baselines import HOGFeatures
    from facebench.baselines.features import _pair

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
        The image as the classical models see it (``features.image_size``/``color``).
    hog : facebench.baselines.HOGFeatures, optional
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


def _lbp_settings(lbp=None) -> dict:
    from facebench.baselines import LBPFeatures

    lbp = LBPFeatures() if lbp is None else lbp
    radius = lbp.R if lbp.radii is None else list(np.atleast_1d(lbp.radii))[0]
    return {"P": lbp.P, "R": radius, "method": lbp.method, "grid": tuple(int(v) for v in lbp.grid)}


def lbp_picture(image, lbp=None) -> tuple[np.ndarray, np.ndarray]:
    """LBP codes of every pixel and the code histogram of every cell, as the models compute them.

    Parameters
    ----------
    image : ndarray of shape (H, W), uint8
        Grayscale (an RGB image is converted to gray first).
    lbp : facebench.baselines.LBPFeatures, optional
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
    from facebench.baselines import lbp_codes, lbp_histograms

    image = _gray(np.asarray(image))
    s = _lbp_settings(lbp)
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


def _gray(image):
    if image.ndim == 3:
        import cv2

        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return image


# --------------------------------------------------------------------------- the CNN


def _as_input(image, input_shape) -> np.ndarray:
    """(1, H, W, C) float32 for a model with ``input_shape`` (H, W, C)."""
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim == 3:
        x = x[None]
    want = tuple(input_shape[1:])
    if tuple(x.shape[1:]) != want:
        raise ValueError(f"image of shape {tuple(x.shape[1:])} does not fit the CNN's input {want}; "
                         "convert it with facebench.data.to_face_array(image, size, color)")
    return x


def _model_input(model):
    """The single input tensor (a list would make Keras warn about the input structure)."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def _is_spatial(layer) -> bool:
    shape = getattr(layer, "output", None)
    shape = getattr(shape, "shape", None)
    return shape is not None and len(shape) == 4


def _is_pool(layer) -> bool:
    return "Pooling" in type(layer).__name__ or "Dropout" in type(layer).__name__


def last_conv_layer(model):
    """The last layer of the last convolutional block (a 4-D output, not a pooling layer)."""
    layers = [layer for layer in model.layers if _is_spatial(layer) and not _is_pool(layer)
              and type(layer).__name__ not in ("InputLayer", "Rescaling")]
    if not layers:
        raise ValueError(f"model {model.name!r} has no convolutional layer")
    return layers[-1]


def grad_cam(model, image, head, layer=None) -> np.ndarray:
    """Grad-CAM saliency of one head on the last convolutional block, at the input's size.

    Parameters
    ----------
    model : keras.Model
        A facebench CNN (outputs ``"age"`` and ``"gender"``, layers named alike).
    image : ndarray of shape (H, W) or (H, W, C)
        One face in the model's input format (uint8 range, the model rescales).
    head : {"age", "gender"}
        ``"age"``: what raises the predicted age. ``"gender"``: the evidence for the
        predicted class (the logit of P(female), negated for a face predicted male).
    layer : str, optional
        The convolutional layer to explain (default: :func:`last_conv_layer`).

    Returns
    -------
    cam : ndarray of shape (H, W), float64, >= 0
        Not normalised (all zeros when no region raises the score).
    """
    import cv2

    from facebench.cnn.models import keras_module, tf_module

    tf, keras = tf_module(), keras_module()
    if head not in ("age", "gender"):
        raise ValueError(f"head must be 'age' or 'gender'; got head={head!r}")
    conv = model.get_layer(layer) if layer else last_conv_layer(model)
    out_layer = model.get_layer(head)
    logit = head == "gender" and isinstance(out_layer, keras.layers.Dense) and \
        getattr(out_layer.activation, "__name__", "") == "sigmoid"
    target = out_layer.input if logit else out_layer.output
    grad_model = keras.Model(_model_input(model), [conv.output, target])
    x = tf.constant(_as_input(image, model.input_shape))
    with tf.GradientTape() as tape:
        maps, t = grad_model(x, training=False)
        tape.watch(maps)
        if logit:
            score = tf.matmul(t, out_layer.kernel) + out_layer.bias
        else:
            score = t
        score = tf.reshape(score, [-1])[0]
        if head == "gender":
            score = tf.abs(score) if logit else score  # evidence for the predicted class
    grads = tape.gradient(score, maps)
    maps, grads = np.asarray(maps)[0], np.asarray(grads)[0]
    weights = grads.mean(axis=(0, 1))
    cam = np.maximum((maps * weights).sum(axis=-1), 0.0).astype(np.float32)
    h, w = x.shape[1], x.shape[2]
    cam = cv2.resize(cam, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.maximum(cam.astype(np.float64), 0.0)


def first_layer_filters(model, n: int = 16) -> tuple[str, np.ndarray]:
    """The first convolution's kernels: ``(layer name, array (n, kh, kw, in_channels))``."""
    for layer in model.layers:
        if type(layer).__name__ == "Conv2D":
            kernel = np.asarray(layer.kernel)  # (kh, kw, cin, cout)
            return layer.name, np.transpose(kernel, (3, 0, 1, 2))[:n]
    raise ValueError(f"model {model.name!r} has no Conv2D layer")


def feature_maps(model, image, per_block: int = 4) -> list[tuple[str, np.ndarray]]:
    """The ``per_block`` most active feature maps at the end of each block.

    Blocks are the layer-name prefixes (``stem``, ``block1``, ...); each block's
    last non-pooling layer is taken, and its channels with the highest mean
    activation for this face.

    Returns
    -------
    list of (layer name, ndarray of shape (per_block, h, w))
    """
    from facebench.cnn.models import keras_module

    keras = keras_module()
    ends: dict[str, object] = {}
    for layer in model.layers:
        if _is_spatial(layer) and not _is_pool(layer) and type(layer).__name__ not in ("InputLayer", "Rescaling"):
            ends[layer.name.split("_")[0]] = layer
    if not ends:
        return []
    chosen = list(ends.values())
    outputs = keras.Model(_model_input(model), [layer.output for layer in chosen])(
        _as_input(image, model.input_shape), training=False)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    result = []
    for layer, out in zip(chosen, outputs):
        a = np.asarray(out)[0]  # (h, w, c)
        top = np.argsort(-a.mean(axis=(0, 1)), kind="stable")[:per_block]
        result.append((layer.name, np.transpose(a[..., top], (2, 0, 1))))
    return result


def cnn_views(fitted, image) -> dict:
    """Everything the figure shows for a CNN: prediction, Grad-CAMs, filters, feature maps."""
    pred = fitted.predict(np.asarray(image)[None])
    return {
        "age": float(pred["age"][0]),
        "p_female": float(pred["p_female"][0]),
        "cam_age": grad_cam(fitted.model, image, "age"),
        "cam_gender": grad_cam(fitted.model, image, "gender"),
        "cam_layer": last_conv_layer(fitted.model).name,
        "filters": first_layer_filters(fitted.model),
        "maps": feature_maps(fitted.model, image),
    }


# --------------------------------------------------------------------------- the run's methods


@dataclass
class RunMethods:
    """What :func:`explain_figure` draws with.

    Attributes
    ----------
    image_size, color : the classical models' input (``features`` of ``config.toml``).
    hog, lbp : the ``HOGFeatures`` / ``LBPFeatures`` steps whose parameters are drawn.
    hog_source, lbp_source : where those came from, in words (for the captions).
    cnn : facebench.cnn.FittedCNN or None; cnn_name : its model name (``cnn-default``).
    predictors : list of :class:`facebench.compare.predict.LoadedModel` whose
        predictions head the figure (may be empty).
    """

    image_size: int = 64
    color: str = "gray"
    hog: object = None
    lbp: object = None
    hog_source: str = "the registry's defaults"
    lbp_source: str = "the registry's defaults"
    cnn: object = None
    cnn_name: str | None = None
    predictors: list = field(default_factory=list)


def _cnn_input(fitted) -> tuple[int, str]:
    """(side, colour) of a FittedCNN's input images."""
    shape = tuple(fitted.model.input_shape[1:])
    color = fitted.params.get("color") or ("rgb" if len(shape) == 3 and shape[-1] == 3 else "gray")
    return int(shape[0]), color


def _find_steps(obj, cls, found):
    """Collect the instances of ``cls`` inside a fitted pipeline (unions and flip wrappers too)."""
    if isinstance(obj, cls):
        found.append(obj)
        return
    children = []
    if hasattr(obj, "steps"):
        children = [step for _, step in obj.steps]
    elif hasattr(obj, "transformer_list"):
        children = [t for _, t in obj.transformer_list]
    elif hasattr(obj, "features"):
        children = [obj.features]
    for child in children:
        _find_steps(child, cls, found)


def load_methods(run_dir, with_predictors: bool = True) -> RunMethods:
    """Read a run's feature settings, its HOG/LBP steps, its first CNN and (optionally)
    the models ``facebench predict`` uses by default.

    Raises
    ------
    UserError
        If ``run_dir`` is not a run directory.
    """
    import tomllib

    import joblib

    from facebench.baselines import HOGFeatures, LBPFeatures
    from facebench.compare.predict import _check_run_dir, _load_one, available_models, default_models

    run_dir = _check_run_dir(run_dir)
    methods = RunMethods(hog=HOGFeatures(), lbp=LBPFeatures())
    try:
        config = tomllib.loads((run_dir / "config.toml").read_text(encoding="utf-8"))
        methods.image_size = int(config["features"]["image_size"])
        methods.color = str(config["features"]["color"])
    except (OSError, KeyError, ValueError, TypeError):
        pass
    available = available_models(run_dir)
    found_hog = found_lbp = False
    for name, info in available.items():
        if info["kind"] != "classical" or (found_hog and found_lbp):
            continue
        saved = joblib.load(info["path"])
        for estimator in saved.get("estimators", {}).values():
            hogs, lbps = [], []
            _find_steps(estimator, HOGFeatures, hogs)
            _find_steps(estimator, LBPFeatures, lbps)
            if hogs and not found_hog:
                methods.hog, methods.hog_source, found_hog = hogs[0], f"the run's {name}", True
            if lbps and not found_lbp:
                methods.lbp, methods.lbp_source, found_lbp = lbps[0], f"the run's {name}", True
    names = default_models(run_dir, available) if with_predictors else []
    cnns = [n for n, info in available.items() if info["kind"] == "cnn"]
    if cnns and cnns[0] not in names:
        names.append(cnns[0])
    loaded = [_load_one(n, available[n]) for n in names]
    methods.predictors = loaded if with_predictors else []
    for m in loaded:
        if m.cnn is not None:
            methods.cnn, methods.cnn_name = m.cnn, m.name
            break
    return methods


# --------------------------------------------------------------------------- drawing


def _wrap(text, width=38):
    return "\n".join(textwrap.wrap(text, width))


def _show(ax, image, title=None, caption=None, cmap="gray", **kw):
    ax.imshow(image, cmap=cmap, interpolation="nearest", **kw)
    _decorate(ax, title, caption)


def _decorate(ax, title=None, caption=None):
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=10, fontweight="bold")
    if caption:
        ax.set_xlabel(_wrap(caption), fontsize=7.5, color="#333333")


def _overlay(ax, face, cam, title, caption):
    gray = _gray(np.asarray(face))
    ax.imshow(gray, cmap="gray", interpolation="bilinear")
    top = float(cam.max())
    heat = cam / top if top > 0 else cam
    ax.imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="bilinear")
    _decorate(ax, title, caption)
    if top <= 0:
        ax.text(0.5, 0.5, "no region raises\nthis score", transform=ax.transAxes, ha="center", va="center",
                fontsize=8, color="white", bbox={"facecolor": "black", "alpha": 0.5})


def _hog_display(picture):
    top = np.percentile(picture, 99.5) if picture.max() > 0 else 1.0
    return np.clip(picture / (top or 1.0), 0, 1)


def _lbp_row(axes, face_gray, methods, labels_text):
    """Face, HOG picture, LBP codes, LBP histograms into four axes."""
    from matplotlib.patches import Rectangle

    ax_face, ax_hog, ax_lbp, ax_hist = axes
    size = face_gray.shape[0]
    _show(ax_face, face_gray, "The face",
          f"What the classical models see: {size}x{size} {methods.color}. {labels_text}".strip(),
          vmin=0, vmax=255)
    p = hog_params(methods.hog)
    _show(ax_hog, _hog_display(hog_picture(face_gray, methods.hog)), "HOG: edge directions",
          f"One star per {p['pixels_per_cell'][0]}x{p['pixels_per_cell'][1]} cell; each line is one of "
          f"{p['orientations']} orientations, as bright as the gradient in it. Lines run along edges. "
          f"Parameters from {methods.hog_source}.", cmap="gray")
    codes, hist = lbp_picture(face_gray, methods.lbp)
    s = _lbp_settings(methods.lbp)
    n_bins = hist.shape[-1]
    cmap = _discrete_cmap(n_bins)
    _show(ax_lbp, codes, "LBP: local texture codes", None, cmap=cmap, vmin=-0.5, vmax=n_bins - 0.5)
    uniform = s["method"] == "uniform"
    ax_lbp.set_xlabel(_wrap(
        (f"Each pixel compared with {s['P']} neighbours at radius {s['R']:g}. Code k (0-{s['P']}) = k neighbours "
         f"brighter: {s['P']} (yellow) a flat patch or dark spot, ~{s['P'] // 2} an edge, 0 (purple) a bright "
         f"spot; {s['P'] + 1} (grey) irregular. "
         if uniform else f"method {s['method']!r}, P={s['P']}, R={s['R']:g}. ")
        + f"Boxes: the cells on the right. Parameters from {methods.lbp_source}."), fontsize=7.5, color="#333333")
    cells = lbp_cells(codes.shape, s["grid"])
    for (label, r, c, (y0, y1, x0, x1)), color in zip(cells, _CELL_COLORS):
        ax_lbp.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=3, ec="white"))
        ax_lbp.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1.5, ec=color))
        ax_lbp.text((x0 + x1) / 2 - 0.5, (y0 + y1) / 2 - 0.5, label, color=color, fontsize=8, fontweight="bold",
                    ha="center", va="center", bbox={"facecolor": "white", "alpha": 0.8, "pad": 0.5, "lw": 0})
    width = 0.8 / len(cells)
    bins = np.arange(n_bins)
    for k, ((label, r, c, _), color) in enumerate(zip(cells, _CELL_COLORS)):
        ax_hist.bar(bins + (k - (len(cells) - 1) / 2) * width, hist[r, c], width=width, color=color, label=f"cell {label}")
    ax_hist.set_title("LBP: code histograms", fontsize=10, fontweight="bold")
    ax_hist.set_xticks(bins if n_bins <= 12 else bins[:: max(1, n_bins // 10)])
    ax_hist.tick_params(labelsize=7)
    ax_hist.set_ylabel("fraction of the cell", fontsize=8)
    ax_hist.legend(fontsize=7, frameon=False)
    ax_hist.spines[["top", "right"]].set_visible(False)
    gy, gx = s["grid"]
    ax_hist.set_xlabel(_wrap(f"LBP code. The model's LBP features are these histograms for all "
                             f"{gy}x{gx} = {gy * gx} cells, side by side ({gy * gx * n_bins} numbers).", 44),
                       fontsize=7.5, color="#333333")


def _discrete_cmap(n):
    """One colour per LBP code: codes 0..n-2 along viridis (for ``uniform`` they count the
    brighter neighbours, so their order means something), the last code grey."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    base = colormaps["viridis"]
    colors = [base(i / max(1, n - 2)) for i in range(n - 1)] + [(0.55, 0.55, 0.55, 1.0)]
    return ListedColormap(colors)


def _predictions_text(methods, face_rgb) -> str:
    parts = []
    for m in methods.predictors:
        try:
            row = m.predict([face_rgb])[0]
        except Exception as exc:  # one broken model must not cost the picture
            parts.append(f"{m.name}: failed ({type(exc).__name__})")
            continue
        bits = []
        if "age" in row:
            bits.append(f"{row['age']:.0f} y")
        if "gender" in row:
            bits.append(f"{row['gender']} (P(female) {row['p_female']:.2f})")
        parts.append(f"{m.name}: " + ", ".join(bits))
    return "Predictions: " + ";  ".join(parts) if parts else ""


def explain_figure(image, methods: RunMethods | None = None, title: str | None = None,
                   truth: str | None = None, dpi: int = CLI_DPI):
    """One face as HOG, LBP and the CNN see it.

    Parameters
    ----------
    image : ndarray of shape (H, W[, 3])
        The face (RGB or gray, any size): it is converted to each method's input with
        :func:`facebench.data.to_face_array`, as training images were decoded.
    methods : RunMethods, optional
        From :func:`load_methods`; default: the registry's HOG and LBP, no CNN.
    title : str, optional
        Figure title (e.g. the file name).
    truth : str, optional
        The true labels, when known, shown under the face.

    Returns
    -------
    matplotlib.figure.Figure
        Row 1: face, HOG picture, LBP codes and four cell histograms. With a CNN, row 2:
        its input, first-layer filters, Grad-CAM of the age and gender heads; row 3:
        the most active feature maps after each block. Without one, a note says so.
    """
    from matplotlib.figure import Figure

    from facebench.data import to_face_array

    methods = methods or RunMethods()
    from facebench.baselines import HOGFeatures, LBPFeatures

    methods.hog = methods.hog if methods.hog is not None else HOGFeatures()
    methods.lbp = methods.lbp if methods.lbp is not None else LBPFeatures()
    image = np.asarray(image)
    face_rgb = to_face_array(image, max(image.shape[:2]), "rgb") if image.ndim == 2 else image
    face = to_face_array(image, methods.image_size, methods.color)
    has_cnn = methods.cnn is not None
    fig = Figure(figsize=(13, 10.2 if has_cnn else 4.6), dpi=dpi, layout="constrained")
    subs = fig.subfigures(3 if has_cnn else 2, 1, height_ratios=[1, 1, 0.9] if has_cnn else [1, 0.12])
    head = title or "What each method sees"
    preds = _predictions_text(methods, face_rgb)
    fig.suptitle(head + ("\n" + _wrap(preds, 150) if preds else ""), fontsize=12 if not preds else 11)

    s1 = subs[0]
    s1.suptitle("Hand-crafted features: HOG and LBP (fixed formulas, nothing learned)", fontsize=11,
                color="#1f4e79", fontweight="bold")
    axes = s1.subplots(1, 4, width_ratios=[1, 1, 1, 1.5])
    _lbp_row(axes, face, methods, f"True: {truth}." if truth else "")

    if not has_cnn:
        ax = subs[1].subplots()
        ax.axis("off")
        ax.text(0.5, 0.5, "This run has no CNN, so only HOG and LBP are shown. "
                "Add one with --set models.cnn=['default'] to see what learned features look at.",
                ha="center", va="center", fontsize=10, color="#7f2704")
        return fig

    cnn = methods.cnn
    size, color = _cnn_input(cnn)
    cnn_face = to_face_array(image, size, color)
    v = cnn_views(cnn, cnn_face)
    s2 = subs[1]
    s2.suptitle(f"Learned features: the CNN ({methods.cnn_name}); it says {v['age']:.0f} years, "
                f"P(female) {v['p_female']:.2f}", fontsize=11, color="#7f2704", fontweight="bold")
    a_face, a_filt, a_age, a_gen = s2.subplots(1, 4)
    _show(a_face, cnn_face, "Its input",
          f"{size}x{size} {color}, scaled to 0-1 inside the network.", vmin=0, vmax=255)
    name, kernels = v["filters"]
    _show(a_filt, _filters_tile(kernels), "First-layer filters",
          f"The {len(kernels)} {kernels.shape[1]}x{kernels.shape[2]} kernels of {name}, learned from the faces "
          "(red +, blue -). Compare with HOG's fixed gradient filter.", cmap="bwr",
          vmin=-1, vmax=1)
    gender_word = "female" if v["p_female"] >= 0.5 else "male"
    _overlay(a_age, cnn_face, v["cam_age"], "Grad-CAM: age head",
             f"Red: regions of {v['cam_layer']} that push the predicted age up.")
    _overlay(a_gen, cnn_face, v["cam_gender"], "Grad-CAM: gender head",
             f"Red: regions that are evidence for '{gender_word}', the predicted gender.")

    s3 = subs[2]
    s3.suptitle("Inside the CNN: the 4 most active feature maps after each block (bright = strong response; "
                "deeper blocks are coarser and more abstract)", fontsize=10, color="#7f2704")
    maps = v["maps"]
    outer = s3.subfigures(1, len(maps))
    outer = np.atleast_1d(outer)
    for sub, (lname, m) in zip(outer, maps):
        sub.suptitle(f"{lname}\n{m.shape[1]}x{m.shape[2]}", fontsize=8)
        grid = sub.subplots(2, 2)
        for ax, fmap in zip(grid.flat, list(m) + [None] * (4 - len(m))):
            if fmap is None:
                ax.axis("off")
                continue
            _show(ax, fmap, cmap="viridis")
    return fig


def _filters_tile(kernels):
    """Tile the kernels (n, kh, kw, cin) into one image, each scaled to [-1, 1] (NaN between)."""
    n, kh, kw, cin = kernels.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    pad = 1
    tile = np.full((rows * (kh + pad) - pad, cols * (kw + pad) - pad), np.nan)
    for i, k in enumerate(kernels):
        k = k.mean(axis=-1)
        top = np.abs(k).max() or 1.0
        r, c = divmod(i, cols)
        tile[r * (kh + pad): r * (kh + pad) + kh, c * (kw + pad): c * (kw + pad) + kw] = k / top
    return tile


# --------------------------------------------------------------------------- several faces


def overview_figure(faces, methods: RunMethods, dpi: int = REPORT_DPI):
    """A grid: one row per face; face, HOG, LBP codes (and Grad-CAM age / gender with a CNN).

    Parameters
    ----------
    faces : list of (image RGB array, label str)
    """
    from matplotlib.figure import Figure

    from facebench.data import to_face_array

    has_cnn = methods.cnn is not None
    cols = 5 if has_cnn else 3
    fig = Figure(figsize=(2.0 * cols, 2.15 * len(faces) + 0.4), dpi=dpi, layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(faces), cols))
    titles = ["face (model input)", "HOG picture", "LBP codes", "Grad-CAM: age", "Grad-CAM: gender"]
    for row, (image, label) in enumerate(faces):
        face = to_face_array(image, methods.image_size, methods.color)
        codes, hist = lbp_picture(face, methods.lbp)
        n_bins = hist.shape[-1]
        _show(axes[row, 0], face, titles[0] if row == 0 else None, None, vmin=0, vmax=255)
        axes[row, 0].set_ylabel(_wrap(label, 22), fontsize=8)
        _show(axes[row, 1], _hog_display(hog_picture(face, methods.hog)), titles[1] if row == 0 else None)
        _show(axes[row, 2], codes, titles[2] if row == 0 else None, cmap=_discrete_cmap(n_bins),
              vmin=-0.5, vmax=n_bins - 0.5)
        if has_cnn:
            size, color = _cnn_input(methods.cnn)
            cnn_face = to_face_array(image, size, color)
            pred = methods.cnn.predict(cnn_face[None])
            word = "female" if pred["p_female"][0] >= 0.5 else "male"
            _overlay(axes[row, 3], cnn_face, grad_cam(methods.cnn.model, cnn_face, "age"),
                     titles[3] if row == 0 else None, None)
            axes[row, 3].set_xlabel(f"CNN: {pred['age'][0]:.0f} y", fontsize=8)
            _overlay(axes[row, 4], cnn_face, grad_cam(methods.cnn.model, cnn_face, "gender"),
                     titles[4] if row == 0 else None, None)
            axes[row, 4].set_xlabel(f"CNN: {word} ({pred['p_female'][0]:.2f})", fontsize=8)
    return fig


def pick_faces(table, n: int = N_REPORT_FACES):
    """Up to ``n`` rows of ``table`` (``path``, ``age``, ``gender``) spread over age bands and genders.

    Bands are visited from young to old, evenly spaced when there are more bands than
    faces, alternating female and male; within a band and gender the first row by
    ``image_id`` (or path) whose file exists is taken. Deterministic.
    """
    import pandas as pd

    from facebench.data import age_band

    t = table.dropna(subset=["path", "age", "gender"]).copy()
    if not len(t):
        return t
    t["band"] = age_band(t["age"].to_numpy())
    t = t.sort_values(["image_id" if "image_id" in t.columns else "path"], kind="stable")
    t = t[[Path(str(p)).is_file() for p in t["path"]]]
    bands = sorted(t["band"].unique(), key=lambda b: int(str(b).rstrip("+").split("-")[0]))
    if not bands:
        return t.iloc[:0]
    picks = np.unique(np.linspace(0, len(bands) - 1, min(n, len(bands))).round().astype(int))
    order = [bands[i] for i in picks] + [b for i, b in enumerate(bands) if i not in set(picks)]
    chosen, used = [], set()
    gender = 1
    while len(chosen) < n and len(used) < len(t):
        progress = False
        for band in order:
            if len(chosen) >= n:
                break
            for g in (gender, 1 - gender):
                rows = t[(t["band"] == band) & (t["gender"].astype(int) == g) & ~t.index.isin(used)]
                if len(rows):
                    chosen.append(rows.index[0])
                    used.add(rows.index[0])
                    gender = 1 - g
                    progress = True
                    break
        if not progress:
            break
    return pd.DataFrame(t.loc[chosen]).reset_index(drop=True)


def _test_faces(run_dir: Path, run=None):
    """Test-image rows (path, age, gender, image_id) of the run's first trial."""
    import pandas as pd

    preds = getattr(run, "predictions", None) if run is not None else None
    if preds is None and (run_dir / "predictions.csv.gz").is_file():
        preds = pd.read_csv(run_dir / "predictions.csv.gz", usecols=lambda c: c in
                            {"trial", "image_id", "path", "age", "gender"})
    if preds is not None and {"path", "age", "gender"} <= set(preds.columns):
        if "trial" in preds.columns and len(preds):
            preds = preds[preds["trial"] == preds["trial"].min()]
        key = "image_id" if "image_id" in preds.columns else "path"
        return preds.drop_duplicates(key)
    split = run_dir / "split.csv"
    if split.is_file():
        s = pd.read_csv(split)
        s = s[(s["part"] == "test") & (s["trial"] == s["trial"].min())]
        return s
    return None


def _labels(row) -> str:
    gender = {0: "male", 1: "female"}.get(int(row["gender"]), "?")
    return f"{int(row['age'])} y, {gender}"


def explain_section(run_dir, run=None):
    """The report's "What each method sees" section, or ``None`` when there is nothing to show.

    Returns
    -------
    dict or None
        ``{"intro": str, "figures": [{"title", "image": "data:image/png;base64,...", "caption"}]}``:
        an overview of a handful of test faces across age bands and genders, and the
        full picture of the first one.
    """
    from facebench.compare.predict import read_image

    run_dir = Path(run_dir)
    table = _test_faces(run_dir, run)
    if table is None or not len(table):
        return None
    picked = pick_faces(table)
    faces = []
    for _, row in picked.iterrows():
        try:
            faces.append((read_image(row["path"]), _labels(row), row))
        except ValueError:
            continue
    if not faces:
        return None
    methods = load_methods(run_dir, with_predictors=True)
    cnn_note = (f"the CNN ({methods.cnn_name}) and its Grad-CAM saliency for each head"
                if methods.cnn is not None else "no CNN: this run trained none, so only HOG and LBP are shown")
    intro = (f"The same test faces through each method's eyes: {len(faces)} faces across age bands and "
             f"genders, as the classical models see them ({methods.image_size}x{methods.image_size} "
             f"{methods.color}); HOG with the parameters of {methods.hog_source}, LBP with those of "
             f"{methods.lbp_source}; {cnn_note}. facebench explain --run RUN_DIR FACE draws this for any face.")
    figures = []
    fig = overview_figure([(img, label) for img, label, _ in faces], methods)
    figures.append({
        "title": "Test faces, four views",
        "image": _data_uri(fig, REPORT_DPI),
        "caption": "Left to right: the face; HOG (edge directions per cell, lines along edges); LBP codes "
                   "(colour = how many neighbours are brighter: texture); "
                   + ("Grad-CAM of the CNN's age and gender heads (red: the regions that drive the prediction). "
                      if methods.cnn is not None else "")
                   + "Labels on the left are the true age and gender.",
    })
    image, label, row = faces[0]
    fig = explain_figure(image, methods, title=f"{Path(str(row['path'])).name}", truth=label)
    figures.append({
        "title": f"One face in detail ({label})",
        "image": _data_uri(fig, REPORT_DPI),
        "caption": "The hand-crafted row shows HOG's gradient stars and LBP's texture codes with the "
                   "histograms of four cells (what the LBP models are given, for every cell). "
                   + ("The CNN rows show filters it learned, where its heads look (Grad-CAM) and what its "
                      "blocks respond to." if methods.cnn is not None else "This run has no CNN."),
    })
    return {"intro": intro, "figures": figures}


# --------------------------------------------------------------------------- output


def _png_bytes(fig, dpi) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def _data_uri(fig, dpi) -> str:
    return "data:image/png;base64," + base64.b64encode(_png_bytes(fig, dpi)).decode("ascii")


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1300px;margin:1.5em auto;color:#222}}
img{{max-width:100%}} li{{margin:.3em 0}}</style></head>
<body><h1>{title}</h1>
<p>Run: <code>{run}</code></p>
<img alt="what HOG, LBP and the CNN see in this face" src="{uri}">
<ul>
<li><b>HOG</b> (histograms of oriented gradients): the image is cut into cells; each cell counts how much
gradient (change of brightness) points in each direction. The picture draws one line per direction, along the
edge, as bright as its count.</li>
<li><b>LBP</b> (local binary patterns): every pixel is compared with its neighbours on a circle; the pattern of
brighter/darker neighbours is a code (flat patch, edge, corner, spot). The models see the histogram of codes in
every cell.</li>
<li><b>CNN</b>: the filters are learned from the faces. Grad-CAM colours the regions of the last convolutional
block that drive each head's prediction.</li>
</ul></body></html>
"""


def explain_cli(run_dir, image, out=None, detect=False) -> Path:
    """``facebench explain``: write what HOG, LBP and the CNN see in one face.

    Parameters
    ----------
    run_dir : path
        A run directory (its feature parameters and saved models are used).
    image : path
        A face image, cropped like the training faces (a UTKFace chip, or a crop
        around a face box that ``facebench predict`` prints).
    out : path, optional
        ``*.png`` or ``*.html`` (a small self-contained page around the PNG). Default:
        ``<image name>-explain.png`` in the current folder.
    detect : bool
        Find the largest face with the same detector and crop as ``facebench predict``
        first (for ordinary photos).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    UserError
        Not a run directory, an unreadable image, or an output that is not .png/.html
        or cannot be written.
    """
    from facebench.compare.predict import _check_run_dir, crop_chip, detect_faces, read_image
    from facebench.data import parse_utkface_name

    run_dir = _check_run_dir(run_dir)
    image = Path(image)
    out = Path(out) if out is not None else Path(f"{image.name.split('.')[0] or 'face'}-explain.png")
    if out.suffix.lower() not in (".png", ".html", ".htm"):
        raise UserError(f"--out {out}: expected a .png or .html file name")
    try:
        pixels = read_image(image)
    except ValueError as exc:
        raise UserError(f"{image}: {exc}") from None
    if detect:
        boxes = detect_faces(pixels)
        if not boxes:
            raise UserError(f"{image}: no face found (drop --detect if the image is already a cropped face)")
        pixels = crop_chip(pixels, max(boxes, key=lambda b: b[2] * b[3]))
    truth = None
    try:
        labels = parse_utkface_name(image.name)
        truth = f"{labels.age} y, {'female' if labels.gender == 1 else 'male'}"
    except Exception:
        pass
    methods = load_methods(run_dir)
    fig = explain_figure(pixels, methods, title=f"What each method sees: {image.name}", truth=truth)
    png = _png_bytes(fig, CLI_DPI)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".png":
            out.write_bytes(png)
        else:
            uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            out.write_text(_HTML.format(title=html.escape(f"What each method sees: {image.name}"),
                                        run=html.escape(str(run_dir)), uri=uri), encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    return out
