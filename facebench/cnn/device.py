"""Where a CNN trains: the first GPU TensorFlow sees, else the CPU.

TensorFlow places every op on its first visible GPU by itself; facebench only says
which it is, once per process, and explains the one case a user with a GPU meets:
the default install pins ``tensorflow-cpu`` on x86-64, which never sees a GPU.
``pip install 'facebench[gpu]'`` adds TensorFlow with CUDA (``tensorflow[and-cuda]``,
Linux x86-64); the CPU-only package must then leave, since both install the same
``tensorflow`` module (README, "A GPU").
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger("facebench.cnn")

#: What to run where an NVIDIA GPU is present but TensorFlow sees none.
GPU_INSTALL = ("pip install 'facebench[gpu]' && pip uninstall -y tensorflow-cpu && "
               "pip install --force-reinstall 'tensorflow[and-cuda]'")



def nvidia_gpu_present() -> bool:
    """Whether this machine has an NVIDIA driver loaded (whatever TensorFlow can use)."""
    return Path("/proc/driver/nvidia/gpus").is_dir() or shutil.which("nvidia-smi") is not None


def training_device() -> str:
    """``"gpu"`` when TensorFlow sees a GPU (the CNN trains there), else ``"cpu"``."""
    from .models import tf_module

    tf = tf_module()
    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


def describe_device() -> str:
    """One line: where the CNN trains, and how to use a GPU that TensorFlow does not see."""
    from .models import tf_module

    tf = tf_module()
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0]) or {}
        return f"the CNN trains on the GPU ({details.get('device_name', gpus[0].name)})"
    from facebench.tf_runtime import onednn_enabled

    threads = os.environ.get("FACEBENCH_THREADS")
    kernels = ", oneDNN kernels" if onednn_enabled() else ""
    cores = "every core" if not threads else f"{threads} thread" + ("" if threads.strip() == "1" else "s")
    line = f"the CNN trains on the CPU ({cores}{kernels})"
    if nvidia_gpu_present():
        line += f"; this machine has an NVIDIA GPU that TensorFlow does not see: {GPU_INSTALL}"
    return line


def log_device(logger=None) -> str:
    """Log :func:`describe_device` on ``logger`` (this module's by default; a warning when a GPU
    goes unused); return it. A run logs it once before its CNN units, a sweep before its points."""
    line = describe_device()
    logger = logger or log
    (logger.warning if "does not see" in line else logger.info)(line)
    return line
