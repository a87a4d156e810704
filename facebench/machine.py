"""What this machine offers the process: usable cores, physical memory, the CPU's name.

Every count of cores or bytes facebench uses comes from here, so a container
that limits the process to a few cores (CPU affinity) is respected everywhere.
"""

from __future__ import annotations

import numbers
import os
import platform

__all__ = ["cpu_flags", "cpu_name", "has_bf16", "memory_bytes", "resolve_n_jobs", "usable_cores"]


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity where the system has one, else all.

    Returns
    -------
    n : int
        At least 1.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def memory_bytes() -> int | None:
    """Physical memory of the machine in bytes, or ``None`` where the system does not say."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        return None
    return int(total) if total > 0 else None


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows, else ``"unknown"``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> frozenset[str]:
    """The instruction-set flags the CPU reports (``/proc/cpuinfo``); empty where the system does not say."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def has_bf16() -> bool:
    """Whether the CPU computes in bfloat16 natively (AMX-BF16 or AVX512-BF16).

    Elsewhere TensorFlow emulates bfloat16 and mixed precision trains slower than float32.
    """
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def resolve_n_jobs(n_jobs) -> int:
    """A worker count as joblib reads it: ``None`` -> 1, ``-1`` -> every usable core, ``-2`` -> all but one, ...

    Parameters
    ----------
    n_jobs : int or None
        A positive count, a negative one (``usable_cores() + 1 + n_jobs``, at
        least 1) or ``None``.

    Returns
    -------
    n : int
        At least 1.

    Raises
    ------
    ValueError
        For 0 or anything but an int or ``None``.
    """
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a positive int, a negative one (-1: every core) or None; got n_jobs={n_jobs!r}")
    if n_jobs < 0:
        return max(1, usable_cores() + 1 + int(n_jobs))
    return int(n_jobs)
