"""The benchmark, one package per job.

``planning`` (configuration, presets, variants, the resolved plan), ``running`` (executing a
plan locally or on Dask, the unit bodies), ``stats`` (metrics, intervals, paired tests),
``label_errors`` (labels to doubt), ``search`` (facebench sweep) and ``inference`` (saved
models: predict, explain, the stored views); :mod:`.benchmark` composes them into ``run``.
Search, label errors and inference may use running and statistics, never the reverse.

>>> from facebench.compare import load_config, run
>>> run_dir = run(load_config(preset="quick", data="faces/"))   # doctest: +SKIP
"""

from facebench.compare.benchmark import run
from facebench.compare.planning import PRESETS, load_config, make_plan
from facebench.compare.running import summary_table


def demo(out, n: int = 2000, force: bool = False, quiet: bool = False, seed: int = 0):
    """Synthesise ``n`` faces (cached), run the quick preset on them, return the run directory.

    The faces are cartoons drawn by facebench; the report says so.
    """
    from pathlib import Path

    from facebench.console import say
    from facebench.data import synthesize
    from facebench.data.cache import default_cache_dir
    from facebench.data.scan import SYNTHETIC_MARKER

    faces = default_cache_dir() / "synthetic" / f"n{n}-seed{seed}"
    if not (faces / SYNTHETIC_MARKER).exists():
        if not quiet:
            say(f"drawing {n} synthetic faces into {faces} ...")
        synthesize(faces, n=n, seed=seed)
    config = load_config(preset="quick", data=faces, out=Path(out))
    run_dir = run(config, force=force, quiet=quiet, command=f"facebench demo --out {out} --n {n}")
    return Path(run_dir)


__all__ = ["PRESETS", "demo", "load_config", "make_plan", "run", "summary_table"]
