"""The environment block of ``run.json``: who ran what, when, on which machine, with which libraries."""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

from facebench import machine

LIBRARIES = ("facebench", "numpy", "pandas", "scikit-learn", "scikit-image", "opencv-python-headless",
             "tensorflow-cpu", "tensorflow", "keras", "scipy", "joblib", "skops", "scikit-learn-intelex")


def environment() -> dict:
    """``{"python", "platform", "machine": {cpu, cores, usable_cores, memory_gb}, "versions"}``."""
    libs = {}
    for name in LIBRARIES:
        try:
            libs[name] = version(name)
        except PackageNotFoundError:
            pass
    memory = machine.memory_bytes()
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": {
            "cpu": machine.cpu_name(),
            "cores": os.cpu_count(),
            "usable_cores": machine.usable_cores(),
            "memory_gb": round(memory / 2**30, 1) if memory else None,
        },
        "versions": libs,
    }
