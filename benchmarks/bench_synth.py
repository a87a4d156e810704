"""Time :func:`facebench.data.synth.write_synthetic` (the issue asks for 2,000 faces in under 30 s).

Usage: ``python benchmarks/bench_synth.py [--n 2000] [--n-jobs N] [--size 128]``.
Writes into a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from facebench.data.synth import write_synthetic


def time_write(n: int, n_jobs: int | None, size: int) -> float:
    """Seconds to write ``n`` synthetic faces into a fresh temporary folder."""
    with tempfile.TemporaryDirectory(prefix="facebench-synth-") as tmp:
        start = time.perf_counter()
        write_synthetic(tmp, n=n, seed=0, size=size, n_jobs=n_jobs)
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="worker processes; default: write_synthetic's choice")
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args(argv)
    seconds = time_write(args.n, args.n_jobs, args.size)
    per_face = 1000 * seconds / max(args.n, 1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"wrote {args.n} synthetic faces of {args.size}x{args.size} (n_jobs={args.n_jobs}) "
          f"in {seconds:.2f} s ({per_face:.2f} ms/face; load average {load:.1f} "
          f"on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
