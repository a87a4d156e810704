"""The benchmark: configuration, the runner, metrics with intervals and paired tests.

>>> from facebench.compare import load_config, run
>>> run_dir = run(load_config(preset="quick", data="faces/"))   # doctest: +SKIP
"""

from .config import PRESETS, load_config
from .aggregate import summary_table
from .plan import make_plan
from .runner import run


def demo(out, n: int = 2000, force: bool = False, quiet: bool = False, seed: int = 0):
    """Synthesise ``n`` faces (cached), run the quick preset on them, return the run directory.

    The faces are cartoons drawn by facebench; the report says so.
    """
    from pathlib import Path

    from ..console import say
    from ..data import synthesize
    from ..data.cache import default_cache_dir
    from ..data.scan import SYNTHETIC_MARKER

    faces = default_cache_dir() / "synthetic" / f"n{n}-seed{seed}"
    if not (faces / SYNTHETIC_MARKER).exists():
        if not quiet:
            say(f"drawing {n} synthetic faces into {faces} ...")
        synthesize(faces, n=n, seed=seed)
    config = load_config(preset="quick", data=faces, out=Path(out))
    run_dir = run(config, force=force, quiet=quiet, command=f"facebench demo --out {out} --n {n}")
    return Path(run_dir)


__all__ = ["PRESETS", "demo", "load_config", "make_plan", "run", "summary_table"]
