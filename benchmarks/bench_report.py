"""Build time and size of report.html for an existing run directory.

    .venv/bin/python benchmarks/bench_report.py RUN_DIR

Targets: a `standard` report under 10 MB, built in under 30 s.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from facebench.reports import write_report


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    run_dir = Path(sys.argv[1])
    t = time.perf_counter()
    report = write_report(run_dir)
    took = time.perf_counter() - t
    size = report.stat().st_size / 2**20
    print(f"{report}: {size:.2f} MB, built in {took:.1f} s (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
