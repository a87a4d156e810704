"""Reproduce: the commands that repeat the run and rebuild the report, and where it ran.

The environment comes from ``run.json`` (``command``, ``started``, ``finished``,
``machine`` {cpu, cores, usable_cores, memory_gb}, ``python``, ``platform``,
``versions``).
"""

from __future__ import annotations

import shlex
from typing import Any

from facebench.rundir import layout


def _number(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.1f}".removesuffix(".0")
    return str(v)


def machine_line(env: dict[str, Any]) -> str | None:
    """``Intel Xeon, 16 cores (2 usable), 62.8 GB memory; Python 3.11.9 on Linux-...``; None when not recorded."""
    m = env.get("machine") if isinstance(env.get("machine"), dict) else {}
    parts = []
    if m.get("cpu"):
        parts.append(str(m["cpu"]))
    cores, usable = m.get("cores"), m.get("usable_cores")
    if cores:
        parts.append(f"{cores} cores" + (f" ({usable} usable)" if usable and usable != cores else ""))
    elif usable:
        parts.append(f"{usable} usable cores")
    if m.get("memory_gb"):
        parts.append(f"{_number(m['memory_gb'])} GB memory")
    text = ", ".join(parts)
    software = " on ".join(str(x) for x in (f"Python {env['python']}" if env.get("python") else None, env.get("platform")) if x)
    if software:
        text = f"{text}; {software}" if text else software
    return text or None


def reproduce_section(run) -> dict[str, Any]:
    env = run.environment
    command = env.get("command")
    if isinstance(command, (list, tuple)):
        command = shlex.join(str(c) for c in command)
    versions = env.get("versions")
    run_dir = shlex.quote(str(run.dir))
    return {
        "rerun": f"facebench run --config {shlex.quote(str(run.dir / layout.CONFIG_FILE))}",
        "rebuild": f"facebench report {run_dir}",
        "command": command,
        "started": env.get("started"),
        "finished": env.get("finished"),
        "config": run.config_text,
        "versions": [(str(k), str(v)) for k, v in versions.items()] if isinstance(versions, dict) else [],
        "machine": machine_line(env),
        "facebench": env.get("facebench"),
        "failed": list(env.get("failed_units") or []),
    }
