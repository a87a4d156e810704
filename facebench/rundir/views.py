"""The stored teaching views of a run: ``views/views.json`` and ``views/views.npz``.

At the end of a run ``facebench.compare.inference.explain.compute_run_views`` computes what each
method sees on a few test faces (HOG picture, LBP codes and cell histograms, the CNN's
filters, feature maps and Grad-CAM) and stores it here; the report only draws it, so
``facebench report`` needs neither the models nor TensorFlow.

Files
-----
``views.json``
    The meta data (JSON): ``format`` (:data:`VIEWS_FORMAT`), ``arrays`` (``{name:
    [shape, dtype]}`` of every array, checked on reading) and whatever the writer adds
    (captions' parameters, labels, predictions).
``views.npz``
    The arrays (``np.savez_compressed``). They are read with ``allow_pickle=False``: a
    run directory from someone else never runs code, and an object array is refused.

Both are written atomically, the arrays first; a reader that finds them missing,
damaged or out of step gets ``None``, never an exception.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facebench.io import atomic_write
from facebench.rundir.layout import views_dir

__all__ = ["VIEWS_FORMAT", "Views", "read_views", "views_files", "write_views"]

#: Version of the views files; a reader ignores any other.
VIEWS_FORMAT = 1
_JSON, _NPZ = "views.json", "views.npz"


@dataclass
class Views:
    """The teaching views of a run, as stored.

    Attributes
    ----------
    meta : dict
        The JSON meta data (with ``format`` and ``arrays``).
    arrays : dict of str to ndarray
        Every stored array, by name.
    """

    meta: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)


def views_files(run_dir) -> tuple[Path, Path]:
    """``(views/views.json, views/views.npz)`` of a run directory."""
    folder = views_dir(run_dir)
    return folder / _JSON, folder / _NPZ


def write_views(run_dir, meta: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Store teaching views in ``run_dir/views/``.

    Parameters
    ----------
    run_dir : path
        The run directory.
    meta : dict
        JSON-serialisable meta data; ``format`` and ``arrays`` are set here.
    arrays : dict of str to ndarray
        Numeric or boolean arrays (no objects: they could not be read back).

    Returns
    -------
    Path
        The ``views`` folder.

    Raises
    ------
    ValueError
        For an array of objects or a name ``np.savez`` cannot store.
    """
    arrays = {str(k): np.asarray(v) for k, v in arrays.items()}
    for name, a in arrays.items():
        if a.dtype.hasobject or a.dtype.kind not in "biufc":
            raise ValueError(f"views array {name!r} has dtype {a.dtype}; only numbers and booleans are stored")
        if not name.isidentifier():
            raise ValueError(f"views array name {name!r} must be an identifier")
    meta = {**meta, "format": VIEWS_FORMAT,
            "arrays": {name: [list(a.shape), a.dtype.str] for name, a in arrays.items()}}
    text = json.dumps(meta, indent=1, sort_keys=True, allow_nan=False)
    json_path, npz_path = views_files(run_dir)
    atomic_write(npz_path, lambda fh: np.savez_compressed(fh, **arrays))
    atomic_write(json_path, lambda fh: fh.write(text.encode("utf-8")))
    return json_path.parent


def read_views(run_dir) -> Views | None:
    """The stored views of a run, or ``None`` when there are none or they cannot be trusted.

    ``None`` for: no ``views/`` files, unreadable or malformed JSON, another
    :data:`VIEWS_FORMAT`, a damaged ``.npz``, an array that would need unpickling, or
    arrays that do not match the shapes and dtypes listed in ``views.json``.
    """
    json_path, npz_path = views_files(run_dir)
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
        listed = meta.get("arrays") if isinstance(meta, dict) else None
        if meta.get("format") != VIEWS_FORMAT or not isinstance(listed, dict):
            return None
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except Exception:  # noqa: BLE001 - any damage (zip, zlib, header, JSON, pickle refused) means "no views"
        return None
    if set(arrays) != set(listed):
        return None
    for name, a in arrays.items():
        entry = listed[name]
        if not (isinstance(entry, list) and len(entry) == 2 and list(a.shape) == entry[0] and a.dtype.str == entry[1]):
            return None
    return Views(meta=meta, arrays=arrays)

