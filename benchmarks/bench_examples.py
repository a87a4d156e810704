"""Wall time of each teaching example (issue: all of them together under a minute on 2 cores).

    .venv/bin/python benchmarks/bench_examples.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def main():
    total = 0.0
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}
    for script in sorted(EXAMPLES.glob("*.py")):
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            subprocess.run([sys.executable, str(script), out], check=True, capture_output=True, env=env)
            took = time.perf_counter() - t
        total += took
        print(f"{script.name:28s} {took:6.1f} s")
    print(f"{'all examples':28s} {total:6.1f} s (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
