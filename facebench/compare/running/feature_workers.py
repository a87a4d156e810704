"""Where a run's parallel work runs: the run's local workers, or its Dask cluster.

The units go there (:func:`facebench.compare.running.executor.parallel`), and so does a
feature step's own parallel work.

Feature steps run in the main process: the hand-crafted ones in the run's ``n_jobs``
threads, a pretrained network's embeddings (:class:`facebench.pretrained.DlibDescriptor`,
about 13 ms a face) on TensorFlow's threads there too, unless the run has a ``--dask``
cluster, whose workers then embed the chunks (through ``joblib``, which
:func:`feature_workers` points at the cluster).
"""

from __future__ import annotations

import contextlib

import joblib

from facebench.errors import UserError

__all__ = ["feature_workers"]


@contextlib.contextmanager
def feature_workers(config: dict):
    """A ``joblib.parallel_config`` for the run's parallel work: its ``n_jobs``, or its Dask cluster (``dask``)."""
    if not config.get("dask"):
        with joblib.parallel_config(n_jobs=config["n_jobs"]):
            yield
        return
    try:
        from dask.distributed import Client
    except ImportError:
        raise UserError("--dask needs the dask extra: pip install 'facebench[dask]'") from None
    try:
        client = Client(config["dask"], timeout="10s")
    except OSError as exc:
        raise UserError(f"--dask {config['dask']}: cannot reach the scheduler ({exc})") from None
    try:
        with joblib.parallel_config(backend="dask", wait_for_workers_timeout=30):
            yield
    finally:
        client.close()
