"""TensorFlow, imported on first use: quietly, with its thread pools sized to this process's cores.

Both families that run a network use it: the CNNs learned here (:mod:`facebench.cnn`) and the
pretrained descriptor (:mod:`facebench.pretrained`), which may not import each other.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys

from facebench.machine import usable_cores

__all__ = ["onednn_enabled", "tf_module"]

_TF_READY = False


def onednn_enabled() -> bool:
    """Whether TensorFlow runs (or, not loaded yet, will run) its CPU kernels through oneDNN here.

    TensorFlow turns oneDNN on by itself only on x86 CPUs with AVX-512 VNNI, BF16 or AMX;
    :func:`tf_module` turns it on for every x86-64 CPU, unless ``TF_ENABLE_ONEDNN_OPTS`` was
    set by the user: on an AMD EPYC with AVX2 the default CNN's training step took 4.0 CPU-ms
    an image with oneDNN against 5.9 without it (with XLA; benchmarks/RESULTS.md, "oneDNN").
    Once TensorFlow is loaded its own answer counts: a process that loaded it before facebench
    set the variable keeps the kernels it started with.
    """
    if "tensorflow" in sys.modules:
        try:
            from tensorflow.python.util import _pywrap_util_port

            return bool(_pywrap_util_port.IsMklEnabled())
        except (ImportError, AttributeError):  # another TensorFlow build: the variable says
            pass
    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if setting is None:  # what tf_module will set
        return _x86_64()
    return setting.strip().lower() in ("1", "true")


def _x86_64() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def tf_module():
    """Import TensorFlow on first use: quietly, and with both kinds of threading set.

    ``import facebench`` stays fast because nothing imports TensorFlow at module
    level. On first use the C++ start-up chatter (oneDNN notices, absl warnings)
    is silenced unless the user set ``TF_CPP_MIN_LOG_LEVEL`` themselves, oneDNN's CPU
    kernels are turned on for x86-64 (:func:`onednn_enabled`), and the thread pools are
    sized to the cores this process may use (``FACEBENCH_THREADS`` overrides), which
    matters in containers where ``os.cpu_count()`` over-reports.
    """
    global _TF_READY
    if _TF_READY:
        import tensorflow as tf

        return tf
    quiet = _configure_environment()
    with _stderr_silenced(quiet):
        import tensorflow as tf
    if quiet:  # Python-side chatter too, e.g. retracing warnings for a short last batch
        tf.get_logger().setLevel("ERROR")
    threads = int(os.environ.get("FACEBENCH_THREADS", 0)) or usable_cores()
    with contextlib.suppress(RuntimeError):  # the runtime was already started by someone else
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(2, threads))
    _TF_READY = True
    return tf


def _configure_environment() -> bool:
    """The variables TensorFlow reads when it loads; returns whether facebench silences it.

    The user's own settings stay: ``TF_CPP_MIN_LOG_LEVEL`` (then nothing is silenced) and
    ``TF_ENABLE_ONEDNN_OPTS`` (set to 1 on x86-64 otherwise).
    """
    quiet = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    if quiet:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if _x86_64():
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    return quiet


@contextlib.contextmanager
def _stderr_silenced(active):
    """Send file descriptor 2 to /dev/null (C++ logging ignores Python's sys.stderr)."""
    if not active:
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
