"""Decode throughput: facebench.data.decode (cold, then cached) beside a plain PIL loop.

    .venv/bin/python benchmarks/bench_decode.py [--data ../shared/data/utkface-5k] [--size 64]

Prints images/second for each path on the same files in one run. The cached
figure is the time to open the memory-mapped stack and touch every byte.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facebench.data import decode, load_dataset


def pil_loop(paths, size):
    out = np.empty((len(paths), size, size), np.uint8)
    for i, p in enumerate(paths):
        with Image.open(p) as im:
            out[i] = np.asarray(im.convert("L").resize((size, size), Image.BOX))
    return out


def naive_pil_loop(paths, size):
    """The loop most notebooks write: open, resize in RGB (Pillow's default filter), then gray."""
    out = np.empty((len(paths), size, size), np.uint8)
    for i, p in enumerate(paths):
        out[i] = np.asarray(Image.open(p).resize((size, size)).convert("L"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/utkface-5k"))
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    ds = load_dataset(args.data, cache_dir=False)
    paths = list(ds.table["path"])
    n = len(paths)
    print(f"{n} images from {args.data}, {args.size}x{args.size} gray, {os.cpu_count()} cores")

    t = time.perf_counter()
    pil_loop(paths, args.size)
    pil_s = time.perf_counter() - t
    print(f"PIL loop (1 process)          {pil_s:7.2f} s  {n / pil_s:8.0f} img/s")
    t = time.perf_counter()
    naive_pil_loop(paths, args.size)
    naive_s = time.perf_counter() - t
    print(f"naive PIL loop (RGB resize)   {naive_s:7.2f} s  {n / naive_s:8.0f} img/s")

    with tempfile.TemporaryDirectory() as cache:
        t = time.perf_counter()
        decode(ds, size=args.size, cache_dir=cache)
        cold = time.perf_counter() - t
        print(f"facebench decode, cold        {cold:7.2f} s  {n / cold:8.0f} img/s  "
              f"({pil_s / cold:.1f}x the PIL loop, {naive_s / cold:.1f}x the naive one)")
        t = time.perf_counter()
        stack = decode(ds, size=args.size, cache_dir=cache)
        total = int(np.asarray(stack).sum(dtype=np.int64))  # touch every byte
        warm = time.perf_counter() - t
        print(f"facebench decode, cached      {warm:7.3f} s  {n / warm:8.0f} img/s  (checksum {total})")
        print(f"cached load, extrapolated to 23,708 images: {warm * 23708 / n:.2f} s")


if __name__ == "__main__":
    main()
