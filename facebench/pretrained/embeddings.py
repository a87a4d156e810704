"""The descriptor as a cached, parallel feature step: :class:`DlibDescriptor`, and its disk cache.

Embedding a face costs about 10-15 ms (the chip cut by dlib, the network run by TensorFlow
from dlib's weights: :mod:`facebench.pretrained.resnet`), so a face is embedded once: every
descriptor is kept on disk under the digest of the decoded image's pixels and of the model
files (:class:`EmbeddingCache`), whatever run, split, subset or order brought it. The faces
not in the cache are embedded in chunks, each saved as it arrives, so an interrupted run
keeps what it embedded; progress goes to the log and, on a terminal, to a progress bar.

Where the chunks are embedded: in this process by default, where TensorFlow spreads each
face's network over the cores (10.4 ms a face on the 5k subset, against 38 ms in two worker
processes, each of which first spends seconds importing TensorFlow; benchmarks/RESULTS.md).
Inside a ``--dask`` run (a Dask ``joblib`` backend) they go to the cluster's workers, and an
explicit ``n_jobs`` asks for that many local processes.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from facebench.data.cache import default_cache_dir
from facebench.image_stacks import StackInput
from facebench.io import atomic_write_bytes
from facebench.pretrained import resnet
from facebench.pretrained.descriptor import BOXES, N_FEATURES, embed_batch, model_digest, require

__all__ = ["DlibDescriptor", "EmbeddingCache", "image_keys"]

log = logging.getLogger("facebench.pretrained")

#: Faces per worker task (and per cache file written).
CHUNK = 128


def image_keys(images) -> np.ndarray:
    """One key per image: BLAKE2b (16 bytes, hex) of its shape and pixels."""
    keys = []
    for image in images:
        image = np.ascontiguousarray(image)
        h = hashlib.blake2b(repr(image.shape).encode(), digest_size=16)
        h.update(image.data)
        keys.append(h.hexdigest())
    return np.asarray(keys, dtype="<U32")


class EmbeddingCache:
    """Descriptors on disk, keyed by image content, in one folder per model files, face box, runner and kernels.

    The folder holds ``.npz`` files of ``keys`` (hex strings) and ``vectors`` (float32
    ``(n, 128)``), each written whole (temporary file, then rename) and read with
    ``allow_pickle=False``; a file that does not read is ignored.

    Parameters
    ----------
    root : path, optional
        The cache root; default the user cache directory (``$FACEBENCH_CACHE``).
    box : {"fixed", "detect"}
    batch_size : int
        Chips per call of the network the descriptors were computed with (1: each face alone).
    kernels : {"onednn", "eigen"}, optional
        TensorFlow's CPU kernels that computed them; default: this process's
        (:func:`facebench.pretrained.resnet.kernels`).
    """

    def __init__(self, root=None, box="fixed", batch_size=1, kernels=None):
        root = Path(root) if root else default_cache_dir()
        # "-tf-<kernels>": computed by TensorFlow from dlib's weights, on its oneDNN or Eigen CPU
        # kernels (each within 1e-6 of dlib's own runner, whose descriptors stay in the folder
        # without the suffix; none of them are mixed, since they differ in the last bits); faces
        # batched together differ from faces run alone in the last bits too: a folder of their own
        self.root, self.kernels = root, kernels or resnet.kernels()
        batched = "" if batch_size == 1 else f"-b{batch_size}"
        self.folder = root / "embeddings" / f"dlib128-{model_digest()}-{box}-tf-{self.kernels}{batched}"

    def lookup(self, keys) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors, found)``: float32 ``(n, 128)`` (zeros where missing) and a bool mask."""
        wanted = {key: i for i, key in enumerate(keys)}
        vectors = np.zeros((len(keys), N_FEATURES), dtype=np.float32)
        found = np.zeros(len(keys), dtype=bool)
        for path in sorted(self.folder.glob("*.npz")) if self.folder.is_dir() else ():
            try:
                with np.load(path, allow_pickle=False) as data:
                    file_keys, file_vectors = data["keys"], data["vectors"]
            except (OSError, ValueError, KeyError):
                log.warning("ignoring unreadable embedding cache file %s", path)
                continue
            if file_vectors.shape != (len(file_keys), N_FEATURES):
                continue
            for j, key in enumerate(file_keys):
                i = wanted.get(str(key))
                if i is not None:
                    vectors[i], found[i] = file_vectors[j], True
        return vectors, found

    def store(self, keys, vectors) -> None:
        """Add descriptors (one file, named by their keys' digest)."""
        keys = np.asarray(keys, dtype="<U32")
        name = hashlib.sha256("".join(keys).encode()).hexdigest()[:24]
        buffer = io.BytesIO()
        np.savez(buffer, keys=keys, vectors=np.asarray(vectors, dtype=np.float32))
        try:
            atomic_write_bytes(self.folder / f"{name}.npz", buffer.getvalue())
        except OSError as exc:
            log.warning("could not write the embedding cache in %s: %s", self.folder, exc)


class DlibDescriptor(StackInput, TransformerMixin, BaseEstimator):
    """dlib's 128-d face descriptor of each face: a stateless feature step, cached on disk.

    Parameters
    ----------
    box : {"fixed", "detect"}, default="fixed"
        The face box the 5 landmarks are found in: fixed inside a face chip, or dlib's detector.
    batch_size : int, default=1
        Chips per call of the network. With 1 a face's descriptor depends on its pixels
        alone; larger batches are about twice as fast, but a face's last bits then depend on
        its batch (such descriptors are cached apart).
    n_jobs : int, optional
        Worker processes for the faces not cached; None: this process, or the cluster's
        workers inside a Dask ``joblib.parallel_config``.
    cache : bool, default=True
        Read and write the embedding cache (the user cache directory).

    Notes
    -----
    The model files come from the installed package only (there is no parameter
    naming a file), so a saved model that holds this step loads nothing from where
    it was saved. ``X`` is a face stack ``(n_images, height, width[, 3])`` uint8, as
    :func:`facebench.data.decode` gives it; the output is float32 ``(n_images, 128)``.
    """

    def __init__(self, box="fixed", batch_size=1, n_jobs=None, cache=True):
        self.box = box
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.cache = cache

    def fit(self, X, y=None):
        """Check the parameters and the input; nothing is learned.

        Parameters
        ----------
        X : ndarray of shape (n_images, height, width[, 3])
        y : Ignored

        Returns
        -------
        self : object
        """
        self._check(X)
        return self

    def transform(self, X):
        """The descriptors of ``X``: cached ones read, the others embedded (in workers) and cached.

        Parameters
        ----------
        X : ndarray of shape (n_images, height, width[, 3]) uint8

        Returns
        -------
        F : ndarray of shape (n_images, 128) float32
        """
        self._check(X)
        n = len(X)
        if n == 0:
            return np.zeros((0, N_FEATURES), dtype=np.float32)
        store = EmbeddingCache(box=self.box, batch_size=self.batch_size) if self.cache else None
        keys = image_keys(X)
        if store is not None:
            out, found = store.lookup(keys)
        else:
            out, found = np.zeros((n, N_FEATURES), dtype=np.float32), np.zeros(n, dtype=bool)
        todo = np.flatnonzero(~found)
        if len(todo):
            self._embed_missing(X, keys, todo, out, store)
        return out

    def _embed_missing(self, X, keys, todo, out, store) -> None:
        import joblib

        chunks = [todo[i:i + CHUNK] for i in range(0, len(todo), CHUNK)]
        log.info("embedding %d faces with dlib's descriptor (%d cached)", len(todo), len(X) - len(todo))
        started, done = time.perf_counter(), 0
        bar = _bar(len(todo))
        jobs = (joblib.delayed(_embed_chunk)(np.asarray(X[idx]), self.box, self.batch_size) for idx in chunks)
        results = joblib.Parallel(n_jobs=self._n_jobs(), return_as="generator")(jobs)
        try:
            for idx, (vectors, kernels) in zip(chunks, results):
                out[idx] = vectors
                if store is not None:  # filed under the kernels that computed them, wherever that was
                    folder = store if kernels == store.kernels else EmbeddingCache(
                        store.root, self.box, self.batch_size, kernels)
                    folder.store(keys[idx], vectors)
                done += len(idx)
                bar.update(len(idx))
                elapsed = time.perf_counter() - started
                log.info("embedded %d/%d faces, %.0f ms/face, %.0f s left", done, len(todo), 1000 * elapsed / done,
                         elapsed / done * (len(todo) - done))
        finally:
            bar.close()

    def _n_jobs(self):
        """``n_jobs`` as given; by default 1 (this process), unless a Dask cluster is the backend."""
        if self.n_jobs is not None:
            return self.n_jobs
        from joblib.parallel import get_active_backend

        backend, n_jobs = get_active_backend()
        return n_jobs if "dask" in type(backend).__name__.lower() else 1

    def _check(self, X):
        if self.box not in BOXES:
            raise ValueError(f"box={self.box!r}: expected one of {', '.join(BOXES)}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size!r}: expected a positive integer")
        shape = getattr(X, "shape", None)
        if shape is None or len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] != 3):
            raise ValueError(f"expected a face stack (n_images, height, width[, 3]); got shape {shape}")
        if getattr(X, "dtype", None) != np.uint8:
            raise ValueError(f"expected uint8 images; got dtype {getattr(X, 'dtype', None)}")
        if min(shape[1:3], default=0) < 32:
            raise ValueError(f"images of {shape[1]}x{shape[2]} pixels are too small for the descriptor "
                             "(at least 32; it sees a 150-pixel chip)")
        require()


def _embed_chunk(images, box, batch_size):
    """A worker's job: the descriptors of a chunk, and the kernels that computed them."""
    vectors = embed_batch(images, box, batch_size)
    return vectors, resnet.kernels()


def _bar(total):
    from tqdm.auto import tqdm

    # shown on a terminal only (disable=None); the log has a line per chunk anyway
    return tqdm(total=total, desc="dlib128 embeddings", unit="face", disable=None, leave=False)
