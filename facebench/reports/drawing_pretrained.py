"""Drawing what the features learned elsewhere see: the face box, the 5 landmarks, the aligned chip.

dlib's network never sees the face as the run decoded it: it sees a 150-pixel chip cut
so that the 5 landmarks (the corners of both eyes and the base of the nose) land where
they did in the faces it was trained on. These pictures show that chip and where the
landmarks were found, and the 128 numbers the network returns for it (arrays stored by
``facebench.compare.inference.explain_pretrained``; drawn here without dlib).
"""

from __future__ import annotations

import numpy as np

__all__ = ["PRETRAINED_ARRAYS", "chip_with_marks", "pretrained_row"]

PRETRAINED_ARRAYS = ("pretrained_input", "pretrained_box", "pretrained_source_marks", "pretrained_chip",
                     "pretrained_marks", "pretrained_descriptor")
_MARK = {"c": "#00e5ff", "s": 14, "edgecolors": "black", "linewidths": 0.6}


def _axes_off(ax, title=None, caption=None):
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10, fontweight="bold")
    if caption:
        import textwrap

        ax.set_xlabel(textwrap.fill(caption, 38), fontsize=7.5, color="#333333")


def chip_with_marks(ax, arrays, i, title=None, caption=None):
    """The aligned chip of face ``i`` with its 5 landmarks."""
    ax.imshow(arrays["pretrained_chip"][i])
    marks = arrays["pretrained_marks"][i]
    ax.scatter(marks[:, 0], marks[:, 1], **_MARK)
    _axes_off(ax, title, caption)


def pretrained_row(sub, meta, arrays, i):
    """Three pictures of face ``i`` into a subfigure: box and landmarks, the aligned chip, the 128 numbers."""
    from matplotlib.patches import Rectangle

    info = meta["pretrained"]
    sub.suptitle(f"Features learned elsewhere: dlib's face descriptor ({info['name']}), a network trained "
                 "for face identity on ~3 million faces, frozen", fontsize=11, color="#3f007d", fontweight="bold")
    a_in, a_chip, a_vec = sub.subplots(1, 3, width_ratios=[1, 1, 1.4])
    a_in.imshow(arrays["pretrained_input"][i])
    left, top, right, bottom = (int(v) for v in arrays["pretrained_box"][i])
    a_in.add_patch(Rectangle((left, top), right - left, bottom - top, fill=False, ec="#ffd400", lw=1.5))
    marks = arrays["pretrained_source_marks"][i]
    a_in.scatter(marks[:, 0], marks[:, 1], **_MARK)
    _axes_off(a_in, "Box and 5 landmarks",
              f"The face at {info['image_size']}x{info['image_size']} RGB; yellow: the {info['box']} face box; "
              "blue: the 5 landmarks dlib's shape predictor finds in it (eye corners, base of the nose).")
    chip_with_marks(a_chip, arrays, i, "What the network receives",
                    f"The {info['chip_size']}x{info['chip_size']} chip, rotated and scaled so the landmarks "
                    "sit where they did in the faces it was trained on.")
    vector = arrays["pretrained_descriptor"][i].astype(np.float32)
    top_value = float(np.abs(vector).max()) or 1.0
    a_vec.imshow(vector.reshape(8, 16), cmap="coolwarm", vmin=-top_value, vmax=top_value)
    _axes_off(a_vec, "Its 128 numbers",
              "The descriptor, 8 rows of 16 (red +, blue -). Trained to tell people apart, not age or "
              "gender: the heads (SVC, SVR, ridge, logistic) learn those from it here.")
