"""TensorFlow, imported on first use: quietly, with its thread pools sized to this process's cores.

Both families that run a network use it: the CNNs learned here (:mod:`facebench.cnn`) and the
pretrained descriptor (:mod:`facebench.pretrained`), which may not import each other.
"""

from __future__ import annotations

import contextlib
import os

from facebench.machine import usable_cores

__all__ = ["tf_module"]

_TF_READY = False


def tf_module():
    """Import TensorFlow on first use: quietly, and with both kinds of threading set.

    ``import facebench`` stays fast because nothing imports TensorFlow at module
    level. On first use the C++ start-up chatter (oneDNN notices, absl warnings)
    is silenced unless the user set ``TF_CPP_MIN_LOG_LEVEL`` themselves, and the
    thread pools are sized to the cores this process may use (``FACEBENCH_THREADS``
    overrides), which matters in containers where ``os.cpu_count()`` over-reports.
    """
    global _TF_READY
    if _TF_READY:
        import tensorflow as tf

        return tf
    quiet = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    if quiet:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
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
