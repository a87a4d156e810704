"""Every script in examples/ runs and writes its pictures (their run time is in benchmarks/RESULTS.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# script -> the files it must write into the output folder
SCRIPTS = {
    "appendix_regression.py": ["regression.png"],
    "appendix_tree.py": ["tree.png"],
    "walkthrough.py": ["1-one-face.png", "2-what-each-method-sees.png", "3-comparison.png"],
}
HANG_GUARD_S = 300  # a hung example fails instead of stalling CI; speed is measured, not asserted here


# The documentation lane (`-m readme`, which CI runs after the suite): the scripts run as printed
@pytest.mark.readme
@pytest.mark.parametrize("script", list(SCRIPTS))
def test_example_runs(script, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), str(tmp_path)], capture_output=True,
                          text=True, env=env, timeout=HANG_GUARD_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in SCRIPTS[script]:
        path = tmp_path / name
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert "wrote" in proc.stdout


def test_readme_lists_every_example():
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for script in SCRIPTS:
        assert script in readme
    assert set(SCRIPTS) == {p.name for p in EXAMPLES.glob("*.py")}
