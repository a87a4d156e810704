"""The precision a CNN trains in: float32, or bfloat16 mixed precision where the CPU has it.

``precision = "bfloat16"`` builds the model under Keras' ``mixed_bfloat16`` policy
(bfloat16 compute, float32 weights; the built-in presets keep their output heads in
float32); ``"auto"`` does so only on a CPU that computes bfloat16 natively.
"""

from __future__ import annotations

import contextlib

from facebench.cnn.models import keras_module

__all__ = ["compute_precision", "dtype_policy"]


def compute_precision(setting):
    """``"float32"`` or ``"bfloat16"``: the precision a fit with ``precision=setting`` computes in.

    ``"auto"`` is bfloat16 only on a CPU that computes it natively (AMX or AVX512-BF16);
    elsewhere TensorFlow emulates it and training would be slower than in float32.
    """
    if setting == "auto":
        from facebench.machine import has_bf16

        return "bfloat16" if has_bf16() else "float32"
    return setting


@contextlib.contextmanager
def dtype_policy(policy):
    """Keras' global dtype policy for the layers built inside, restored after.

    Under ``"mixed_bfloat16"`` the layers compute in bfloat16 and keep float32 weights;
    the built-in presets' output heads ask for float32 themselves (an age in years has
    only about 3 significant digits in bfloat16).
    """
    keras = keras_module()
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)
