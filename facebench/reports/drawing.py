"""Drawing what each method sees, from the views stored in a run directory.

The arrays are computed when the run finishes (``facebench.compare.inference.explain``) and stored
in ``views/`` (:mod:`facebench.rundir.views`); this module only draws them, so it needs
neither the models nor TensorFlow.

- :func:`overview_figure`: one row per test face: the face, its HOG picture, its LBP
  codes and, with a CNN, the Grad-CAM map of the age and of the gender head.
- :func:`face_figure`: one face in detail: HOG, LBP codes and four cell histograms;
  the CNN's input, first-layer filters and Grad-CAM maps; its feature maps.
- :func:`views_section`: the report's "What each method sees" section.
- :func:`write_explain`: the ``.png`` or small ``.html`` page of ``facebench explain``.

How to read them: HOG cuts the image into cells and draws, per cell, a star of line
segments, one per orientation bin, as bright as the gradient energy in that bin;
segments run *along* edges. LBP compares every pixel with its neighbours on a circle;
for the ``uniform`` method code k counts the brighter neighbours (the last code:
irregular patterns); the models see the code histogram of every cell. Grad-CAM
(Selvaraju et al., ICCV 2017) colours the regions of the CNN's last convolutional block
that raise a head's score: the predicted age, or the evidence for the predicted gender.
"""

from __future__ import annotations

import base64
import html
import io
import textwrap
from pathlib import Path

import numpy as np

from facebench.errors import UserError
from facebench.reports.drawing_pretrained import PRETRAINED_ARRAYS, chip_with_marks, pretrained_row
from facebench.rundir.views import Views, read_views

__all__ = ["explain_out_path", "face_figure", "overview_figure", "views_section", "write_explain"]

#: Resolution of the report's figures (the whole report must stay small).
REPORT_DPI = 64
#: Resolution of ``facebench explain`` PNGs.
CLI_DPI = 100
_CELL_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e")
_FACE_ARRAYS = ("face", "hog", "lbp_codes", "lbp_hist")
_CNN_ARRAYS = ("cnn_face", "cam_age", "cam_gender", "cam_top", "filters")


# --------------------------------------------------------------------------- small pieces


def _wrap(text, width=38):
    return "\n".join(textwrap.wrap(text, width))


def _gray(image):
    """Luminance of an RGB image (ITU-R BT.601, as OpenCV), a gray image unchanged."""
    image = np.asarray(image)
    if image.ndim == 3:
        return image[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return image


def _decorate(ax, title=None, caption=None):
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=10, fontweight="bold")
    if caption:
        ax.set_xlabel(_wrap(caption), fontsize=7.5, color="#333333")


def _show(ax, image, title=None, caption=None, cmap="gray", **kw):
    ax.imshow(image, cmap=cmap, interpolation="nearest", **kw)
    _decorate(ax, title, caption)


def _overlay(ax, face, cam, top, title=None, caption=None):
    """The face in gray under a stored Grad-CAM map (uint8, scaled to its maximum ``top``)."""
    ax.imshow(_gray(face), cmap="gray", interpolation="bilinear")
    heat = np.asarray(cam, dtype=np.float64) / 255.0
    ax.imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="bilinear")
    _decorate(ax, title, caption)
    if top <= 0:
        ax.text(0.5, 0.5, "no region raises\nthis score", transform=ax.transAxes, ha="center", va="center",
                fontsize=8, color="white", bbox={"facecolor": "black", "alpha": 0.5})


def _hog_display(picture):
    picture = np.asarray(picture, dtype=np.float64)
    top = np.percentile(picture, 99.5) if picture.max() > 0 else 1.0
    return np.clip(picture / (top or 1.0), 0, 1)


def _discrete_cmap(n):
    """One colour per LBP code: codes 0..n-2 along viridis (for ``uniform`` they count the
    brighter neighbours, so their order means something), the last code grey."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    base = colormaps["viridis"]
    colors = [base(i / max(1, n - 2)) for i in range(n - 1)] + [(0.55, 0.55, 0.55, 1.0)]
    return ListedColormap(colors)


def _show_codes(ax, codes, n_bins, title=None, caption=None):
    _show(ax, codes, title, caption, cmap=_discrete_cmap(n_bins), vmin=-0.5, vmax=n_bins - 0.5)


def _filters_tile(kernels):
    """Tile the kernels (n, kh, kw, cin) into one image, each scaled to [-1, 1] (NaN between)."""
    n, kh, kw, _ = kernels.shape
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


def _gender_word(p_female) -> str:
    return "female" if p_female >= 0.5 else "male"


def _said(face_meta) -> tuple[float, float]:
    """The CNN's (age, P(female)) for a stored face; NaN where it gave none."""
    said = face_meta.get("cnn") or {}
    return tuple(float("nan") if said.get(k) is None else float(said[k]) for k in ("age", "p_female"))


def _predictions_text(face_meta) -> str:
    parts = []
    for row in face_meta.get("predictions") or []:
        if "error" in row:
            parts.append(f"{row['model']}: failed ({row['error']})")
            continue
        bits = []
        if row.get("age") is not None:
            bits.append(f"{row['age']:.0f} y")
        if row.get("gender") is not None:
            p = row.get("p_female")
            bits.append(f"{row['gender']} (P(female) {p:.2f})" if p is not None else str(row["gender"]))
        parts.append(f"{row['model']}: " + ", ".join(bits))
    return "Predictions: " + ";  ".join(parts) if parts else ""


# --------------------------------------------------------------------------- the figures


def _hand_crafted_row(axes, meta, arrays, i, labels_text):
    """Face, HOG picture, LBP codes, LBP histograms of face ``i`` into four axes."""
    from matplotlib.patches import Rectangle

    ax_face, ax_hog, ax_lbp, ax_hist = axes
    size, color = meta["classical"]["image_size"], meta["classical"]["color"]
    _show(ax_face, arrays["face"][i], "The face",
          f"What the classical models see: {size}x{size} {color}. {labels_text}".strip(), vmin=0, vmax=255)
    h = meta["hog"]
    _show(ax_hog, _hog_display(arrays["hog"][i]), "HOG: edge directions",
          f"One star per {h['pixels_per_cell'][0]}x{h['pixels_per_cell'][1]} cell; each line is one of "
          f"{h['orientations']} orientations, as bright as the gradient in it. Lines run along edges. "
          f"Parameters from {h['source']}.")
    s = meta["lbp"]
    n_bins = int(s["n_bins"])
    _show_codes(ax_lbp, arrays["lbp_codes"][i], n_bins, "LBP: local texture codes")
    p, r = s["P"], float(s["R"])
    ax_lbp.set_xlabel(_wrap(
        (f"Each pixel compared with {p} neighbours at radius {r:g}. Code k (0-{p}) = k neighbours "
         f"brighter: {p} (yellow) a flat patch or dark spot, ~{p // 2} an edge, 0 (purple) a bright "
         f"spot; {p + 1} (grey) irregular. "
         if s["method"] == "uniform" else f"method {s['method']!r}, P={p}, R={r:g}. ")
        + f"Boxes: the cells on the right. Parameters from {s['source']}."), fontsize=7.5, color="#333333")
    cells = s["cells"]
    for cell, color_ in zip(cells, _CELL_COLORS):
        y0, y1, x0, x1 = cell["box"]
        for lw, ec in ((3, "white"), (1.5, color_)):
            ax_lbp.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=lw, ec=ec))
        ax_lbp.text((x0 + x1) / 2 - 0.5, (y0 + y1) / 2 - 0.5, cell["label"], color=color_, fontsize=8,
                    fontweight="bold", ha="center", va="center",
                    bbox={"facecolor": "white", "alpha": 0.8, "pad": 0.5, "lw": 0})
    width = 0.8 / len(cells)
    bins = np.arange(n_bins)
    for k, (cell, color_) in enumerate(zip(cells, _CELL_COLORS)):
        ax_hist.bar(bins + (k - (len(cells) - 1) / 2) * width, arrays["lbp_hist"][i, k], width=width,
                    color=color_, label=f"cell {cell['label']}")
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


def face_figure(meta: dict, arrays: dict, index: int | None = None, title: str | None = None,
                dpi: int = CLI_DPI):
    """One stored face as HOG, LBP and the CNN see it.

    Parameters
    ----------
    meta, arrays : dict
        Stored views (:class:`facebench.rundir.views.Views`).
    index : int, optional
        The face (default: ``meta["detail"]``, the one whose feature maps are stored).
    title : str, optional
        Figure title (e.g. the file name).
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        Row 1: face, HOG picture, LBP codes and four cell histograms. With a CNN, row 2:
        its input, first-layer filters, Grad-CAM of the age and gender heads; row 3:
        the most active feature maps after each block (only for ``meta["detail"]``).
        Without one, a note says so.
    """
    from matplotlib.figure import Figure

    detail = int(meta.get("detail", 0))
    i = detail if index is None else int(index)
    face = meta["faces"][i]
    cnn = meta.get("cnn")
    maps = [(name, arrays[f"maps_{k}"]) for k, name in enumerate(cnn["maps"])] if cnn and i == detail else []
    rows = 1 + (cnn is not None) + bool(maps)
    pre = meta.get("pretrained")
    heights = ([1, 1, 0.9][:rows] if cnn else [1, 0.12]) + ([0.9] if pre else [])
    fig = Figure(figsize=(13, (4.6 + 2.8 * (rows - 1) if cnn else 4.6) + (3.4 if pre else 0)), dpi=dpi,
                 layout="constrained")
    subs = fig.subfigures(len(heights), 1, height_ratios=heights)
    if pre:
        pretrained_row(subs[-1], meta, arrays, i)
    preds = _predictions_text(face)
    fig.suptitle((title or "What each method sees") + ("\n" + _wrap(preds, 150) if preds else ""),
                 fontsize=11 if preds else 12)

    s1 = subs[0]
    s1.suptitle("Hand-crafted features: HOG and LBP (fixed formulas, nothing learned)", fontsize=11,
                color="#1f4e79", fontweight="bold")
    truth = face.get("label")
    _hand_crafted_row(s1.subplots(1, 4, width_ratios=[1, 1, 1, 1.5]), meta, arrays, i,
                      f"True: {truth}." if truth else "")
    if cnn is None:
        ax = subs[1].subplots()
        ax.axis("off")
        ax.text(0.5, 0.5, "This run has no CNN, so only HOG and LBP are shown. "
                "Add one with --set models.cnn=['default'] to see what learned features look at.",
                ha="center", va="center", fontsize=10, color="#7f2704")
        return fig

    age, p_female = _said(face)
    s2 = subs[1]
    s2.suptitle(f"Learned features: the CNN ({cnn['name']}); it says {age:.0f} years, P(female) {p_female:.2f}",
                fontsize=11, color="#7f2704", fontweight="bold")
    a_face, a_filt, a_age, a_gen = s2.subplots(1, 4)
    cnn_face = arrays["cnn_face"][i]
    _show(a_face, cnn_face, "Its input", f"{cnn['image_size']}x{cnn['image_size']} {cnn['color']}, scaled to 0-1 "
          "inside the network.", vmin=0, vmax=255)
    kernels = arrays["filters"]
    _show(a_filt, _filters_tile(kernels), "First-layer filters",
          f"The {len(kernels)} {kernels.shape[1]}x{kernels.shape[2]} kernels of {cnn['filter_layer']}, learned "
          "from the faces (red +, blue -). Compare with HOG's fixed gradient filter.", cmap="bwr", vmin=-1, vmax=1)
    top_age, top_gender = (float(v) for v in arrays["cam_top"][i])
    _overlay(a_age, cnn_face, arrays["cam_age"][i], top_age, "Grad-CAM: age head",
             f"Red: regions of {cnn['cam_layer']} that push the predicted age up.")
    _overlay(a_gen, cnn_face, arrays["cam_gender"][i], top_gender, "Grad-CAM: gender head",
             f"Red: regions that are evidence for '{_gender_word(p_female)}', the predicted gender.")
    if maps:
        _feature_maps(subs[2], maps)
    return fig


def _feature_maps(sub, maps):
    sub.suptitle(f"Inside the CNN: the {len(maps[0][1])} most active feature maps after each block (bright = "
                 "strong response; deeper blocks are coarser and more abstract)", fontsize=10, color="#7f2704")
    for part, (name, m) in zip(np.atleast_1d(sub.subfigures(1, len(maps))), maps):
        part.suptitle(f"{name}\n{m.shape[1]}x{m.shape[2]}", fontsize=8)
        for ax, fmap in zip(part.subplots(2, 2).flat, list(m) + [None] * (4 - len(m))):
            if fmap is None:
                ax.axis("off")
            else:
                _show(ax, fmap.astype(np.float32), cmap="viridis")


def _columns(meta) -> list[str]:
    cols = ["face (model input)", "HOG picture", "LBP codes"]
    cols = cols + ["Grad-CAM: age", "Grad-CAM: gender"] if meta.get("cnn") else cols
    return cols + ["dlib's aligned chip"] if meta.get("pretrained") else cols


def overview_figure(meta: dict, arrays: dict, dpi: int = REPORT_DPI):
    """A grid: one row per stored face; face, HOG, LBP codes (and Grad-CAM age / gender with a CNN)."""
    from matplotlib.figure import Figure

    faces, cnn = meta["faces"], meta.get("cnn")
    titles = _columns(meta)
    fig = Figure(figsize=(2.0 * len(titles), 2.15 * len(faces) + 0.4), dpi=dpi, layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(faces), len(titles)))
    n_bins = int(meta["lbp"]["n_bins"])
    for row, face in enumerate(faces):
        head = titles if row == 0 else [None] * len(titles)
        _show(axes[row, 0], arrays["face"][row], head[0], vmin=0, vmax=255)
        axes[row, 0].set_ylabel(_wrap(face.get("label") or "", 22), fontsize=8)
        _show(axes[row, 1], _hog_display(arrays["hog"][row]), head[1])
        _show_codes(axes[row, 2], arrays["lbp_codes"][row], n_bins, head[2])
        if cnn:
            age, p = _said(face)
            top_age, top_gender = (float(v) for v in arrays["cam_top"][row])
            _overlay(axes[row, 3], arrays["cnn_face"][row], arrays["cam_age"][row], top_age, head[3])
            axes[row, 3].set_xlabel(f"CNN: {age:.0f} y", fontsize=8)
            _overlay(axes[row, 4], arrays["cnn_face"][row], arrays["cam_gender"][row], top_gender, head[4])
            axes[row, 4].set_xlabel(f"CNN: {_gender_word(p)} ({p:.2f})", fontsize=8)
        if meta.get("pretrained"):
            chip_with_marks(axes[row, -1], arrays, row, head[-1])
    return fig


# --------------------------------------------------------------------------- the report's section


def _usable(views) -> bool:
    """Stored views with everything the figures draw."""
    if not isinstance(views, Views):
        return False
    meta, arrays = views.meta, views.arrays
    try:
        n = len(meta["faces"])
        need = _FACE_ARRAYS + (_CNN_ARRAYS + tuple(f"maps_{k}" for k in range(len(meta["cnn"]["maps"])))
                               if meta.get("cnn") else ()) + (PRETRAINED_ARRAYS if meta.get("pretrained") else ())
        return n > 0 and all(k in arrays for k in need) and all(len(arrays[k]) == n for k in _FACE_ARRAYS) \
            and all(k in meta for k in ("classical", "hog", "lbp"))
    except (KeyError, TypeError):
        return False


def views_section(run) -> dict | None:
    """The report's "What each method sees" section, drawn from the run's stored views.

    Parameters
    ----------
    run : facebench.rundir.read.Run
        Its ``views`` (from :func:`facebench.rundir.views.read_views`) are drawn; a
        ``run`` without that attribute has them read from ``run.dir``.

    Returns
    -------
    dict or None
        ``{"intro": str, "figures": [{"title", "image": "data:image/png;base64,...", "caption"}]}``
        (an overview of the stored test faces and the first one in detail), or ``None``
        when the run stored no usable views.
    """
    views = run.views if hasattr(run, "views") else read_views(run.dir)
    if not _usable(views):
        return None
    meta, arrays = views.meta, views.arrays
    n, cnn = len(meta["faces"]), meta.get("cnn")
    c = meta["classical"]
    cnn_note = (f"the CNN ({cnn['name']}) and its Grad-CAM saliency for each head" if cnn
                else "no CNN: this run trained none, so only HOG and LBP are shown")
    intro = (f"The same test faces through each method's eyes: {n} faces across age bands and genders, as the "
             f"classical models see them ({c['image_size']}x{c['image_size']} {c['color']}); HOG with the "
             f"parameters of {meta['hog']['source']}, LBP with those of {meta['lbp']['source']}; {cnn_note}. "
             + (f"The last column is what the pretrained network ({meta['pretrained']['name']}) receives: dlib's "
                "aligned chip with its 5 landmarks. " if meta.get("pretrained") else "")
             + "Computed when the run finished, from its saved models. "
             "facebench explain --run RUN_DIR FACE draws this for any face.")
    columns = _columns(meta)
    overview = {
        "title": f"{n} test faces, {len(columns)} columns: " + ("the face, HOG, LBP, Grad-CAM (age), Grad-CAM (gender)"
                                                               if cnn else "the face, HOG, LBP"),
        "image": _data_uri(overview_figure(meta, arrays), REPORT_DPI),
        "caption": "Left to right: the face; HOG (edge directions per cell, lines along edges); LBP codes "
                   "(colour = how many neighbours are brighter: texture); "
                   + ("Grad-CAM of the CNN's age and gender heads (red: the regions that drive the prediction; "
                      "below, what the CNN predicts). " if cnn else "")
                   + "Labels on the left are the true age and gender.",
    }
    detail = int(meta.get("detail", 0))
    face = meta["faces"][detail]
    one = {
        "title": f"One face in detail ({face.get('label') or face.get('file')})",
        "image": _data_uri(face_figure(meta, arrays, detail, title=face.get("file") or None, dpi=REPORT_DPI),
                           REPORT_DPI),
        "caption": "The hand-crafted row shows HOG's gradient stars and LBP's texture codes with the "
                   "histograms of four cells (what the LBP models are given, for every cell). "
                   + ("The CNN rows show filters it learned, where its heads look (Grad-CAM) and what its "
                      "blocks respond to." if cnn else "This run has no CNN."),
    }
    return {"intro": intro, "figures": [overview, one]}


# --------------------------------------------------------------------------- facebench explain


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


def explain_out_path(out_path, image_name: str = "") -> Path:
    """``facebench explain``'s output file: ``out_path``, or ``<image name>-explain.png`` when None.

    Raises
    ------
    UserError
        For a name that does not end in .png or .html (checked before any work is done).
    """
    name = Path(str(image_name or "")).name
    out = Path(out_path) if out_path is not None else Path(f"{name.split('.')[0] or 'face'}-explain.png")
    if out.suffix.lower() not in (".png", ".html", ".htm"):
        raise UserError(f"--out {out}: expected a .png or .html file name")
    return out


def write_explain(out_path, meta: dict, arrays: dict, run_dir) -> Path:
    """Write ``facebench explain``'s picture of one face: a ``.png``, or a small ``.html`` page around it.

    Parameters
    ----------
    out_path : path or None
        ``*.png`` or ``*.html``; None: ``<image name>-explain.png`` (``meta["name"]``)
        in the current folder (:func:`explain_out_path`).
    meta, arrays : dict
        The views of one face (``facebench.compare.inference.explain.explain_image``).
    run_dir : path
        The run whose models were used (named on the page).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    UserError
        An output name that is not .png/.html, or a file that cannot be written.
    """
    from facebench.io import atomic_write_bytes, atomic_write_text

    name = Path(str(meta.get("name") or "")).name
    out = explain_out_path(out_path, name)
    suffix = out.suffix.lower()
    title = f"What each method sees: {name}" if name else "What each method sees"
    png = _png_bytes(face_figure(meta, arrays, title=title, dpi=CLI_DPI), CLI_DPI)
    try:
        if suffix == ".png":
            atomic_write_bytes(out, png)
        else:
            uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            atomic_write_text(out, _HTML.format(title=html.escape(title), run=html.escape(str(run_dir)), uri=uri))
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    return out
