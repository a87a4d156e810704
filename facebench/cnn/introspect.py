"""What a trained CNN looks at, as arrays: first-layer filters, feature maps, Grad-CAM.

Grad-CAM (Selvaraju et al., ICCV 2017, :DOI:`10.1109/ICCV.2017.74`) here: the gradient
of a head's score with respect to the last convolutional block's feature maps,
averaged over space, weights those maps; the weighted sum, clipped at zero and
upsampled to the input, is the map. Scores: for ``age`` the predicted age in years
(so the map shows what pushes the age *up*); for ``gender`` the logit of P(female),
with its sign flipped when the face is predicted male, so the map shows the evidence
for the predicted class (the usual Grad-CAM choice). The last block of these small
networks is coarse (4x4 cells for a 64-pixel input), so the maps are blurry by nature.

TensorFlow is imported on first use (through :func:`facebench.cnn.models.tf_module`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["cnn_views", "feature_maps", "first_layer_filters", "grad_cam", "last_conv_layer"]


def _as_input(image, input_shape) -> np.ndarray:
    """(1, H, W, C) float32 for a model with ``input_shape`` (None, H, W, C)."""
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
    shape = getattr(getattr(layer, "output", None), "shape", None)
    return shape is not None and len(shape) == 4


def _is_block_layer(layer) -> bool:
    """A layer with a 4-D output that is not the input, the rescaling, a pooling or a dropout."""
    kind = type(layer).__name__
    return (_is_spatial(layer) and "Pooling" not in kind and "Dropout" not in kind
            and kind not in ("InputLayer", "Rescaling"))


def last_conv_layer(model):
    """The last layer of the last convolutional block (a 4-D output, not a pooling layer).

    Raises
    ------
    ValueError
        If the model has no such layer.
    """
    layers = [layer for layer in model.layers if _is_block_layer(layer)]
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
        score = tf.matmul(tf.cast(t, out_layer.kernel.dtype), out_layer.kernel) + out_layer.bias if logit else t
        score = tf.reshape(score, [-1])[0]
        if logit:
            score = tf.abs(score)  # evidence for the predicted class
    grads = tape.gradient(score, maps)
    maps, grads = np.asarray(maps, dtype=np.float32)[0], np.asarray(grads, dtype=np.float32)[0]
    weights = grads.mean(axis=(0, 1))
    cam = np.maximum((maps * weights).sum(axis=-1), 0.0).astype(np.float32)
    h, w = x.shape[1], x.shape[2]
    cam = cv2.resize(cam, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.maximum(cam.astype(np.float64), 0.0)


def first_layer_filters(model, n: int = 16) -> tuple[str, np.ndarray]:
    """The first convolution's kernels: ``(layer name, array (n, kh, kw, in_channels))``.

    Raises
    ------
    ValueError
        If the model has no ``Conv2D`` layer.
    """
    for layer in model.layers:
        if type(layer).__name__ == "Conv2D":
            kernel = np.asarray(layer.kernel, dtype=np.float32)  # (kh, kw, cin, cout)
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
        if _is_block_layer(layer):
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
        a = np.asarray(out, dtype=np.float32)[0]  # (h, w, c)
        top = np.argsort(-a.mean(axis=(0, 1)), kind="stable")[:per_block]
        result.append((layer.name, np.transpose(a[..., top], (2, 0, 1))))
    return result


def cnn_views(fitted, image, maps: bool = True) -> dict:
    """Everything the teaching figures show for a CNN on one face.

    Parameters
    ----------
    fitted : facebench.cnn.FittedCNN
    image : ndarray of shape (H, W) or (H, W, C)
        The face in the model's input format.
    maps : bool
        Also compute :func:`feature_maps` (the one-face figure needs them, the
        overview does not).

    Returns
    -------
    dict
        ``age`` (years), ``p_female`` (floats, as :meth:`FittedCNN.predict`),
        ``cam_age``, ``cam_gender`` (:func:`grad_cam`), ``cam_layer`` (its layer name),
        ``filters`` (:func:`first_layer_filters`) and ``maps`` (:func:`feature_maps`,
        an empty list with ``maps=False``).
    """
    pred = fitted.predict(np.asarray(image)[None])
    return {
        "age": float(pred["age"][0]),
        "p_female": float(pred["p_female"][0]),
        "cam_age": grad_cam(fitted.model, image, "age"),
        "cam_gender": grad_cam(fitted.model, image, "gender"),
        "cam_layer": last_conv_layer(fitted.model).name,
        "filters": first_layer_filters(fitted.model),
        "maps": feature_maps(fitted.model, image) if maps else [],
    }
