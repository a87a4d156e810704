"""Find the images of a dataset, read their labels, and audit everything left out.

``load_dataset(path)`` takes a folder of UTKFace-named images or a CSV manifest
(``path,age,gender[,race]``, paths relative to the manifest) and returns a
:class:`Dataset`: the table of usable images and an audit that lists every file
that did not make it, with a one-line reason.

Folder rules
------------
* Sub-folders are scanned recursively (UTKFace ships as ``UTKFace/`` or as
  ``part1/ part2/ part3/``); hidden files and folders (``.name``) are not, and are
  listed under ``not_used``.
* A symlink is followed only when its target stays inside the folder; links that
  leave the folder, dangle or loop are skipped with that reason.
* Only regular files are opened, so a FIFO or device named ``x.jpg`` can never
  hang the scan.
* Every candidate image is fully decoded once (Pillow): empty, truncated and
  undecodable files and decompression bombs are skipped; grayscale, CMYK, RGBA,
  palette images, PNG bytes under a ``.jpg`` name, tiny and huge images are used
  (``decode`` converts them). The pixel hash of the decode finds exact
  duplicates: copies with the same labels keep the first; copies whose labels
  disagree are all excluded.
* Per-file results are cached (keyed by path, size and modification time), so a
  second scan of a large folder only stats the files.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from PIL import Image

from ..errors import UserError
from ..machine import usable_cores
from ..io import json_default
from .cache import atomic_write_bytes, default_cache_dir
from .labels import LabelError, parse_utkface_name, validate_labels
from .manifest_split import check_user_split

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# Pillow's own bomb guard triggers at ~89 MP (a warning) and ~179 MP (an error);
# a face crop is never near that, so anything above this many pixels is refused.
MAX_PIXELS = 40_000_000
SCAN_VERSION = 1
SYNTHETIC_MARKER = "SYNTHETIC.txt"
TABLE_COLUMNS = ["image_id", "path", "age", "gender", "race", "width", "height"]


@dataclass
class Dataset:
    """The usable images (``table``) and what happened to everything else (``audit``).

    ``table`` columns: ``image_id`` (path relative to the dataset root),
    ``path`` (absolute), ``age`` (int 0-116), ``gender`` (0 male, 1 female),
    ``race`` (0-4 or <NA>), ``width``, ``height`` (source pixels).
    """

    table: pd.DataFrame
    audit: dict = field(default_factory=dict)
    #: A manifest's own split (``image_id``, ``trial``, ``part``; trial -1: every trial), else None.
    user_split: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self.table)

    @property
    def root(self) -> Path:
        return Path(self.audit.get("root", "."))

    @property
    def synthetic(self) -> bool:
        return bool(self.audit.get("synthetic", False))


def load_dataset(path, *, cache_dir=None, n_jobs: int | None = None) -> Dataset:
    """Scan a folder of UTKFace-named images, or read a CSV manifest.

    Parameters
    ----------
    path : str or Path
        A folder (scanned recursively) or a ``.csv`` manifest.
    cache_dir : str or Path, optional
        Where per-file scan results are cached; defaults to the user cache
        directory (``$FACEBENCH_CACHE`` overrides). ``False`` disables it.
    n_jobs : int, optional
        Threads used to decode-check images (default: all cores).

    Returns
    -------
    Dataset

    Raises
    ------
    UserError
        When the path does not exist or holds no usable image.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"--data {path}: no such file or folder")
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise UserError(
                f"--data {path}: expected a folder of images or a .csv manifest (path,age,gender[,race])"
            )
        candidates, skipped, not_used, root, user_split = _read_manifest(path)
        source = "manifest"
    else:
        root = path.resolve()
        candidates, skipped, not_used = _walk_folder(root)
        source = "folder"
        user_split = None

    checks = _check_images([c["path"] for c in candidates], cache_dir=cache_dir, n_jobs=n_jobs)
    rows = []
    for cand, check in zip(candidates, checks):
        if check.get("error"):
            skipped.append({"file": cand["image_id"], "reason": check["error"]})
        else:
            rows.append({**cand, **check})

    rows, duplicates, dup_skipped = _resolve_duplicates(rows)
    skipped.extend(dup_skipped)

    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    table = table.astype({"age": "int64", "gender": "int64", "width": "int64", "height": "int64"})
    table["race"] = table["race"].astype("Int64")
    table = table.sort_values("image_id", kind="stable").reset_index(drop=True)
    found = len(candidates) + sum(1 for s in skipped if s.get("stage") == "scan")
    for s in skipped:
        s.pop("stage", None)
    audit = {
        "source": source,
        "root": str(root),
        "found": found,
        "used": int(len(table)),
        "skipped": sorted(skipped, key=lambda s: s["file"]),
        "duplicates": duplicates,
        "not_used": not_used,
        "synthetic": _looks_synthetic(root),
        "labels": _label_summary(table),
    }
    if user_split is not None:
        audit["split_from_manifest"] = {"column": "part", "trials": int(max(1, user_split["trial"].max() + 1))}
    if table.empty:
        reasons = _top_reasons(audit["skipped"])
        raise UserError(f"--data {path}: no usable image ({audit['found']} file(s) found{reasons})")
    return Dataset(table=table, audit=audit, user_split=user_split)


# --------------------------------------------------------------------------- folder


def _walk_folder(root: Path):
    """List candidate images under ``root`` with labels parsed from their names."""
    candidates, skipped, not_used = [], [], []
    seen_dirs = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            real = folder.resolve(strict=True)
            if real in seen_dirs:
                not_used.append({"file": _rel(folder, root), "reason": "folder already scanned (symlink loop)"})
                continue
            seen_dirs.add(real)
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except (OSError, RuntimeError) as exc:
            not_used.append({"file": _rel(folder, root), "reason": f"cannot list folder: {_oserror(exc)}"})
            continue
        for entry in entries:
            rel = _rel(Path(entry.path), root)
            if entry.name.startswith("."):
                not_used.append({"file": rel, "reason": "hidden entry, not scanned"})
                continue
            if entry.name == SYNTHETIC_MARKER and folder == root:
                not_used.append({"file": rel, "reason": "marker: these faces are synthetic"})
                continue
            target, problem = _follow(Path(entry.path), root)
            if problem:
                skipped.append({"file": rel, "reason": problem, "stage": "scan"})
                continue
            kind = _file_kind(target)
            if kind == "dir":
                stack.append(Path(entry.path))
                continue
            if kind != "file":
                skipped.append({"file": rel, "reason": kind, "stage": "scan"})
                continue
            if not entry.name.lower().endswith(IMAGE_SUFFIXES):
                suffix = Path(entry.name).suffix or "(none)"
                skipped.append({"file": rel, "reason": f"not an image file (extension {suffix})", "stage": "scan"})
                continue
            try:
                labels = parse_utkface_name(entry.name)
            except LabelError as exc:
                skipped.append({"file": rel, "reason": f"bad label: {exc}", "stage": "scan"})
                continue
            candidates.append(
                {"image_id": rel, "path": str(Path(entry.path).absolute()),
                 "age": labels.age, "gender": labels.gender, "race": labels.race}
            )
    return candidates, skipped, not_used


def _follow(path: Path, root: Path):
    """Resolve a symlink; return (target, None) or (None, reason)."""
    if not path.is_symlink():
        return path, None
    try:
        target = path.resolve(strict=True)
    except RuntimeError:
        return None, "symlink loop"
    except FileNotFoundError:
        return None, "broken symlink (target missing)"
    except OSError as exc:
        if "loop" in str(exc).lower() or getattr(exc, "errno", None) == 40:
            return None, "symlink loop"
        return None, f"cannot follow symlink: {_oserror(exc)}"
    if not target.is_relative_to(root):
        return None, "symlink points outside the dataset folder"
    return target, None


# --------------------------------------------------------------------------- manifest


def _read_manifest(path: Path):
    root = path.resolve().parent
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except Exception as exc:  # pandas raises many types for bad CSV
        raise UserError(f"--data {path}: cannot read the manifest as CSV ({exc})") from None
    frame.columns = [c.strip().lower() for c in frame.columns]
    missing = [c for c in ("path", "age", "gender") if c not in frame.columns]
    if missing:
        raise UserError(
            f"--data {path}: manifest lacks column(s) {', '.join(missing)}; "
            "expected path,age,gender[,race]"
        )
    has_race = "race" in frame.columns
    split = check_user_split(frame, path)  # a manifest's own split, checked before any image is read
    trial_of = dict(zip(split["line"], split["trial"])) if split is not None else {}
    split_rows = []
    candidates, skipped = [], []
    listed: dict[tuple, int] = {}  # (resolved file, trial) -> the manifest line that listed it first
    first_id: dict[str, str] = {}  # resolved file -> its image_id (a file listed in several trials)
    for line, row in enumerate(frame.itertuples(index=False), start=2):
        rel = str(row.path).strip()
        label = f"{rel} (line {line})"
        if not rel:
            skipped.append({"file": f"line {line}", "reason": "empty path", "stage": "scan"})
            continue
        race = getattr(row, "race", "") if has_race else ""
        try:
            labels = validate_labels(row.age, row.gender, race if str(race).strip() != "" else None)
        except LabelError as exc:
            skipped.append({"file": label, "reason": f"bad label: {exc}", "stage": "scan"})
            continue
        file = (root / rel) if not Path(rel).is_absolute() else Path(rel)
        if not file.exists() and not file.is_symlink():
            skipped.append({"file": label, "reason": "file not found", "stage": "scan"})
            continue
        kind = _file_kind(file)
        if kind != "file":
            skipped.append({"file": label, "reason": "a folder, not an image file" if kind == "dir" else kind,
                            "stage": "scan"})
            continue
        resolved = str(file.resolve())
        first = listed.setdefault((resolved, trial_of.get(line, -1)), line)
        if first != line:
            skipped.append({"file": label, "reason": f"listed again: the same file as line {first}",
                            "stage": "scan"})
            continue
        if split is not None:
            split_rows.append({"image_id": first_id.get(resolved, rel), "trial": trial_of[line],
                               "part": str(row.part).strip().lower()})
        if resolved in first_id:
            continue  # the same face in another trial of the manifest's split
        first_id[resolved] = rel
        candidates.append(
            {"image_id": rel, "path": str(file.absolute()),
             "age": labels.age, "gender": labels.gender, "race": labels.race}
        )
    user_split = pd.DataFrame(split_rows, columns=["image_id", "trial", "part"]) if split is not None else None
    return candidates, skipped, [], root, user_split


# --------------------------------------------------------------------------- image checks


def _check_images(paths, *, cache_dir=None, n_jobs=None) -> list[dict]:
    """Decode-check every image once; results cached by (path, size, mtime)."""
    cache_file = None
    cached = {}
    if cache_dir is not False and paths:
        cache_root = Path(cache_dir) if cache_dir else default_cache_dir()
        digest = hashlib.sha256(str(Path(paths[0]).parent).encode()).hexdigest()[:16]
        cache_file = cache_root / "scan" / f"scan-v{SCAN_VERSION}-{digest}.json"
        try:
            cached = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            cached = {}

    def key(p):
        try:
            st = os.stat(p)
        except OSError:
            return None
        return f"{p}|{st.st_size}|{st.st_mtime_ns}"

    keys = [key(p) for p in paths]
    todo = [i for i, k in enumerate(keys) if k is None or k not in cached]
    workers = n_jobs if n_jobs and n_jobs > 0 else usable_cores()
    results = {}
    if todo:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for i, res in zip(todo, pool.map(lambda i: check_image(paths[i]), todo, chunksize=64)):
                results[i] = res
    out = []
    for i, k in enumerate(keys):
        res = results[i] if i in results else cached[k]
        if k is not None:
            cached[k] = res
        out.append(res)
    if cache_file is not None and todo:
        try:
            atomic_write_bytes(cache_file, json.dumps(cached).encode())
        except OSError:
            pass  # the cache is an optimisation; a read-only cache dir must not stop a scan
    return out


def check_image(path) -> dict:
    """Fully decode one image; return its size and pixel hash, or ``{"error": reason}``."""
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        return {"error": f"cannot read: {_oserror(exc)}"}
    if size == 0:
        return {"error": "empty file (0 bytes)"}
    try:
        with open(path, "rb") as fh, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fh) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    return {"error": f"decompression bomb refused ({w}x{h} pixels > {MAX_PIXELS:,})"}
                if w < 1 or h < 1:
                    return {"error": f"image has no pixels ({w}x{h})"}
                im.load()
                digest = hashlib.blake2b(im.tobytes(), digest_size=16)
                digest.update(f"{im.mode}{w}x{h}".encode())
                return {"width": w, "height": h, "hash": digest.hexdigest(), "mode": im.mode}
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return {"error": f"decompression bomb refused ({exc})"}
    except PermissionError as exc:
        return {"error": f"cannot read: {_oserror(exc)}"}
    except Image.UnidentifiedImageError:
        return {"error": "not a decodable image (unknown format)"}
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "truncated" in msg.lower():
            return {"error": f"truncated image ({msg})"}
        return {"error": f"cannot decode image ({msg})"}
    except Exception as exc:  # a decoder bug on one file must not stop the scan
        return {"error": f"cannot decode image ({type(exc).__name__}: {exc})"}


# --------------------------------------------------------------------------- duplicates


def _resolve_duplicates(rows):
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["hash"], []).append(row)
    kept, duplicates, skipped = [], [], []
    for group in groups.values():
        if len(group) == 1:
            kept.append(group[0])
            continue
        group = sorted(group, key=lambda r: r["image_id"])
        files = [r["image_id"] for r in group]
        labels = {(r["age"], r["gender"], r["race"]) for r in group}
        if len(labels) == 1:
            kept.append(group[0])
            duplicates.append({"files": files, "action": f"same pixels, same labels: kept {files[0]}"})
            for r in group[1:]:
                skipped.append({"file": r["image_id"], "reason": f"exact duplicate of {files[0]}"})
        else:
            duplicates.append({"files": files, "action": "same pixels, labels disagree: all excluded"})
            for r in group:
                skipped.append({"file": r["image_id"], "reason": "exact duplicate with disagreeing labels"})
    return kept, duplicates, skipped


# --------------------------------------------------------------------------- helpers


def _file_kind(path: Path) -> str:
    """``"file"``, ``"dir"``, or the reason the entry cannot be an image (FIFOs never get opened)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"cannot stat: {_oserror(exc)}"
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else "not a regular file"


def _rel(path: Path, root: Path) -> str:
    try:
        return Path(os.path.relpath(path, root)).as_posix()
    except ValueError:
        return str(path)


def _oserror(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _looks_synthetic(root: Path) -> bool:
    return (Path(root) / SYNTHETIC_MARKER).exists()


def _label_summary(table: pd.DataFrame) -> dict:
    if table.empty:
        return {}
    return {
        "age_min": int(table["age"].min()),
        "age_max": int(table["age"].max()),
        "age_median": float(table["age"].median()),
        "gender_counts": {str(k): int(v) for k, v in table["gender"].value_counts().sort_index().items()},
        "race_counts": {
            str(k): int(v) for k, v in table["race"].astype("object").fillna("missing").value_counts().items()
        },
    }


def _top_reasons(skipped) -> str:
    if not skipped:
        return ""
    counts = pd.Series([s["reason"].split(":")[0] for s in skipped]).value_counts()
    top = "; ".join(f"{n} {r}" for r, n in counts.head(3).items())
    return f"; skipped: {top}"


def audit_to_json(audit: dict) -> str:
    return json.dumps(audit, indent=2, default=json_default)

