"""Every script in examples/ runs, writes its pictures, and all of them together stay fast."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# script -> the files it must write into the output folder
SCRIPTS = {
    "appendix_regression.py": ["regression.png"],
    "appendix_tree.py": ["tree.png"],
    "walkthrough.py": ["1-one-face.png", "2-what-each-method-sees.png", "3-comparison.png"],
}
BUDGET_S = 60.0
_elapsed: dict[str, float] = {}


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_example_runs(script, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), str(tmp_path)], capture_output=True,
                          text=True, env=env, timeout=BUDGET_S * 2)
    _elapsed[script] = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in SCRIPTS[script]:
        path = tmp_path / name
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert "wrote" in proc.stdout


def test_examples_fit_the_budget():
    if len(_elapsed) < len(SCRIPTS):
        pytest.skip("runs after every example (run the whole file)")
    total = sum(_elapsed.values())
    assert total < BUDGET_S, f"examples took {total:.1f} s together: {_elapsed}"


def test_readme_lists_every_example():
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for script in SCRIPTS:
        assert script in readme
    assert set(SCRIPTS) == {p.name for p in EXAMPLES.glob("*.py")}
