"""The first epochs of a CNN trained on smaller faces (``low_res_epochs``, ``low_res_size``).

Called by :func:`facebench.cnn.fit`; measured and not adopted by a preset (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import numpy as np

from facebench.cnn.inputs import make_dataset
from facebench.cnn.models import build_model
from facebench.cnn.params import ParamError, builder_keys
from facebench.cnn.precision import compute_precision, dtype_policy

__all__ = ["low_res_epochs"]


def low_res_epochs(name, model, x, age, gender, p, seed, train_idx, val_idx, steps_per_epoch, compile_, callbacks,
                    verbose):
    """Train ``model``'s first ``low_res_epochs`` epochs on the faces shrunk to ``low_res_size``.

    A twin of ``model`` built for the small faces has the same weights (global pooling
    makes them independent of the image size); it trains on the same batches and
    augmentation, validates on the shrunk validation faces, and hands its weights to
    ``model``. The learning-rate schedule goes on where it stopped (the optimizer's step
    count is carried; its moments start again). Returns the epochs' history.
    """
    small = _shrink(x, p["low_res_size"])
    with dtype_policy("mixed_bfloat16" if compute_precision(p["precision"]) == "bfloat16" else "float32"):
        twin = build_model(name, small.shape[1:], **{k: p[k] for k in builder_keys(name)})
    shapes, twin_shapes = [tuple(w.shape) for w in model.weights], [tuple(w.shape) for w in twin.weights]
    if shapes != twin_shapes:
        raise ParamError("low_res_epochs", p["low_res_epochs"],
                         f"0: CNN {name!r} has weights that depend on the image size (no global pooling)")
    twin.set_weights(model.get_weights())
    compile_(twin)
    train_ds = make_dataset(small[train_idx], age[train_idx], gender[train_idx], p, seed=seed, training=True)
    val_ds = make_dataset(small[val_idx], age[val_idx], gender[val_idx], p, seed=seed, training=False) \
        if len(val_idx) else None
    hist = twin.fit(train_ds, validation_data=val_ds, epochs=p["low_res_epochs"], steps_per_epoch=steps_per_epoch,
                    callbacks=callbacks, verbose=verbose, shuffle=False)
    model.set_weights(twin.get_weights())
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(twin.optimizer.iterations)
    return {k: [float(v) for v in vals] for k, vals in hist.history.items()}


def _shrink(x, side):
    """Images ``(n, H, W[, 3])`` shrunk to ``side`` x ``side`` by pixel-area averaging, as the decoder shrinks faces."""
    import cv2

    out = np.stack([cv2.resize(np.ascontiguousarray(im), (side, side), interpolation=cv2.INTER_AREA) for im in x])
    return out.astype(x.dtype, copy=False).reshape((len(x), side, side) + x.shape[3:])
