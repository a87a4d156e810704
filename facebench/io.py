"""Small file helpers shared by every layer: atomic writes that honour the umask.

A reader of any file facebench writes sees the old file, no file, or the whole new
file, never a part: data goes to a temporary file beside the target, is flushed to
disk, then renamed over it. ``tempfile.mkstemp`` creates private (0600) files and
``mkdtemp`` private (0700) folders; the result is given the mode an ordinary
``open()`` / ``mkdir()`` would have had under the process umask (0644 / 0755 under
umask 022), so reports and run directories can be shared.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

import numpy as np

from facebench.errors import UserError

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (read by setting and restoring it; guarded against other threads)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new regular file under the umask (0644 under 022)."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """Mode of a new folder under the umask (0755 under 022)."""
    return 0o777 & ~current_umask()


def make_temp_dir(parent, prefix: str) -> Path:
    """A new empty folder in ``parent`` with the umask's mode (unlike ``mkdtemp``'s 0700)."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    os.chmod(path, dir_mode())
    return path


def share_tree(root) -> None:
    """Give every file and folder under ``root`` (``root`` included) the umask's modes."""
    root = Path(root)
    fmode, dmode = file_mode(), dir_mode()
    os.chmod(root, dmode)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), dmode)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), fmode)


def atomic_write(path, write) -> Path:
    """Call ``write(fh)`` on a temporary file beside ``path``, fsync it, then rename it to ``path``.

    An exception (or Ctrl-C, or a full disk) midway leaves the old file as it was and
    no temporary file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path, data: bytes) -> Path:
    return atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npy(path, array: np.ndarray) -> Path:
    """Save an array as ``.npy`` atomically (a memory-mappable file, no pickle)."""
    return atomic_write(path, lambda fh: np.save(fh, array, allow_pickle=False))


def write_json(path, obj) -> Path:
    """``obj`` as indented JSON, atomically (numpy scalars and ``pd.NA`` become plain values)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=json_default) + "\n")


def json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if obj is None or repr(obj) == "<NA>":
        return None
    return str(obj)


def writable_dir(path, flag: str = "--out") -> Path:
    """Create ``path`` if needed and check that it is a writable folder; one-line UserError if not."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{flag} {path}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {path}: the folder is not writable")
    return path
