"""One writer at a time: a lock on the run directory for the whole of a run.

``filelock`` takes an OS-level lock on ``RUN_DIR/.lock``: it is released when the
run ends by any path, the process killed included (the kernel drops it). Who holds
it is written beside it, so that a refused second run can say so.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path

from facebench.errors import UserError

from . import layout

HOLDER_FILE = ".lock.holder"


@contextlib.contextmanager
def hold(run_dir, command: str = ""):
    """Hold the run directory's lock, or stop at once with one line naming the holder."""
    from filelock import FileLock, Timeout

    run_dir = Path(run_dir)
    lock = FileLock(str(run_dir / layout.LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise UserError(f"{run_dir} is in use by another facebench run ({_holder(run_dir)}); wait for it to "
                        "finish or use another --out") from None
    except OSError as exc:
        raise UserError(f"{run_dir}: cannot lock the run directory ({exc.strerror or exc})") from None
    holder = run_dir / HOLDER_FILE
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        holder.write_text(json.dumps(info))
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


def _holder(run_dir: Path) -> str:
    try:
        info = json.loads((run_dir / HOLDER_FILE).read_text())
        return f"pid {info['pid']} on {info['host']} since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
