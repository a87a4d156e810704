"""Saved models and the models table.

Classical models are saved with ``skops.io``, which stores an object's state and
rebuilds it without unpickling: loading checks every type in the file against an
explicit list of trusted ones and refuses the file, naming the others, before
anything is built. A run directory is what people share, so opening one must never
run code from it (``pickle`` / ``joblib.load`` would). CNNs are Keras ``.keras``
files, loaded by the CNN module with Keras' safe mode (no Lambda layers).

The models table (``models.csv``) says what each model of the run is: its kind,
tasks, family, input and resolved parameters, so that readers never guess from a
model's name.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from facebench.errors import UserError
from facebench.io import atomic_write

from . import layout

#: "learned" is learned here (the CNNs), "learned elsewhere" a pretrained network's features.
FAMILIES = ("trivial", "hand-crafted", "learned", "learned elsewhere")


def save_classical(path, meta: dict, estimators: dict) -> Path:
    """Write ``{"meta": meta, "estimators": {task: fitted pipeline}}`` as a skops file, atomically."""
    import skops.io as sio

    data = sio.dumps({"meta": dict(meta), "estimators": dict(estimators)})
    return atomic_write(path, lambda fh: fh.write(data))


def load_classical(path, trusted) -> tuple[dict, dict]:
    """``(meta, estimators)`` of a skops model file whose every type is in ``trusted``.

    Raises
    ------
    UserError
        One line: the file is not a skops model file, or it holds types outside
        ``trusted`` (named; nothing from the file was built).
    """
    import skops.io as sio

    path = Path(path)
    try:
        data = path.read_bytes()
        untrusted = sio.get_untrusted_types(data=data)
    except OSError as exc:
        raise UserError(f"{path}: cannot read the model file ({exc.strerror or exc})") from None
    except Exception as exc:  # noqa: BLE001 - skops raises many kinds on a foreign file
        raise UserError(f"{path}: not a facebench model file ({type(exc).__name__}); refused") from None
    allowed = set(trusted)
    refused = sorted(t for t in untrusted if t not in allowed)
    if refused:
        shown = ", ".join(refused[:4]) + (f" (+{len(refused) - 4} more)" if len(refused) > 4 else "")
        raise UserError(f"{path}: refused to load: the file holds types facebench does not trust: {shown}")
    try:
        obj = sio.loads(data, trusted=list(untrusted))
        return dict(obj["meta"]), dict(obj["estimators"])
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"{path}: damaged model file ({type(exc).__name__}: {exc})") from None


def model_file(run_dir, uid: str) -> Path | None:
    """The fitted model of a unit (``model.skops`` or ``model.keras``), or None."""
    folder = layout.unit_dir(run_dir, uid)
    for name in (layout.CLASSICAL_MODEL, layout.CNN_MODEL):
        if (folder / name).is_file():
            return folder / name
    return None


def write_models_table(run_dir, rows: list[dict]) -> Path:
    """``models.csv``: one row per model of the run (columns ``layout.MODELS_COLUMNS``)."""
    out = []
    for row in rows:
        if row.get("family") not in FAMILIES:
            raise ValueError(f"model {row.get('name')!r}: family {row.get('family')!r} is not one of {FAMILIES}")
        r = {c: row.get(c, "") for c in layout.MODELS_COLUMNS}
        r["tasks"] = ";".join(sorted(row.get("tasks") or ()))
        r["params"] = json.dumps(row.get("params") or {}, sort_keys=True, default=str)
        r["color"] = row.get("color") or ""
        r["image_size"] = int(row["image_size"]) if row.get("image_size") else ""
        out.append(r)
    frame = pd.DataFrame(out, columns=layout.MODELS_COLUMNS)
    return atomic_write(Path(run_dir) / layout.MODELS_FILE, lambda fh: frame.to_csv(fh, index=False))


def read_models_table(run_dir) -> pd.DataFrame:
    """``models.csv`` with ``tasks`` as tuples and ``params`` as dicts; an empty table when absent."""
    path = Path(run_dir) / layout.MODELS_FILE
    if not path.is_file():
        return pd.DataFrame(columns=layout.MODELS_COLUMNS)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "base" not in frame:  # written before variants: every model is its own base
        frame["base"] = frame["name"]
    frame["tasks"] = [tuple(t for t in str(v).split(";") if t) for v in frame["tasks"]]
    frame["params"] = [_params(v) for v in frame["params"]]
    frame["image_size"] = pd.to_numeric(frame["image_size"], errors="coerce").astype("Int64")
    return frame


def _params(text: str) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
