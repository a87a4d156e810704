"""The report, read from what the real runner wrote: a run with classical models and a one-epoch CNN.

Also: the run-directory document against the real files, the report's own commands run
as printed, the report without TensorFlow, and the import rules.
"""

from __future__ import annotations

import html as html_lib
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from facebench.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def real_run(tiny_run, tmp_path):
    """A copy of the session's real run, moved elsewhere as a shared run directory would be."""
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    return copy


def _text(html: str) -> str:
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", html))


def test_the_report_shows_the_machine_and_every_section(real_run):
    from facebench.rundir.read import read_run

    run = read_run(real_run)
    html = (real_run / "report.html").read_text(encoding="utf-8")
    text = _text(html)
    assert "Not recorded" not in text
    assert run.environment["machine"]["cpu"] in text
    for heading in ("What each method sees", "Reproduce"):
        assert heading in text
    assert set(run.models_table["family"]) == {"trivial", "hand-crafted", "learned"}


def _config_keys() -> set[str]:
    from facebench.cnn import default_params
    from facebench.compare.planning.config import DEFAULTS

    keys = set()
    for key, value in DEFAULTS.items():
        if isinstance(value, dict) and value and key != "cnn":
            keys |= {f"{key}.{sub}" for sub in value}
        else:
            keys.add(key)
    for name in ("default", "seed"):
        keys |= {f"cnn.{name}.{p}" for p in default_params(name)}
    return keys


def test_every_hint_in_the_report_names_a_real_config_key(real_run):
    text = _text((real_run / "report.html").read_text(encoding="utf-8"))
    named = set(re.findall(r"--set\s+'?([A-Za-z_][\w.]*)=", text))
    named |= set(re.findall(r"config key '([\w.]+)'", text))
    assert named, "the report gives no hint at all"
    assert named <= _config_keys(), named - _config_keys()


def test_the_reports_commands_work_as_printed(real_run, tiny_run, capsys):
    html = (real_run / "report.html").read_text(encoding="utf-8")
    blocks = [html_lib.unescape(b) for b in re.findall(r"<pre>(.*?)</pre>", html, flags=re.S)]
    commands = [line.strip() for b in blocks for line in b.splitlines()
                if line.strip().startswith(("facebench run --config", "facebench report"))]
    assert any(c.startswith("facebench run --config") for c in commands), commands
    # the report names the folder it was written in; run on the copy, where the run now lies (a run's
    # own config.toml repeats it there), so the session's shared run is never rewritten meanwhile
    assert all(str(tiny_run) in c for c in commands), commands
    shared = (tiny_run / "report.html").stat().st_mtime_ns
    for command in commands:
        argv = shlex.split(command.replace(str(tiny_run), str(real_run)))
        assert main(argv[1:]) == 0, command
    assert (tiny_run / "report.html").stat().st_mtime_ns == shared  # the shared run untouched
    assert (real_run / "report.html").stat().st_mtime_ns > shared  # the copy's report written anew


def test_the_report_builds_where_tensorflow_cannot_be_imported(real_run, tmp_path):
    """``facebench report`` draws the stored views (the CNN's Grad-CAM included) with no model code loaded."""
    copy = real_run
    (copy / "report.html").unlink()
    script = ("import sys\nsys.modules['tensorflow'] = None\nsys.modules['keras'] = None\n"
              "from facebench.cli import main\ncode = main(['report', sys.argv[1]])\n"
              "print(sorted(m for m in sys.modules if m.split('.')[1:2] in (['baselines'], ['cnn'], ['compare'])))\n"
              "raise SystemExit(code)\n")
    done = subprocess.run([sys.executable, "-c", script, str(copy)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"  # neither the models' code nor TensorFlow
    text = _text((copy / "report.html").read_text(encoding="utf-8"))
    assert "What each method sees" in text and "Grad-CAM" in text


def _documented():
    doc = (ROOT / "docs" / "run-directory.md").read_text(encoding="utf-8")
    block = doc.split("```", 2)[1]
    names = {line.split()[0].rstrip("/") for line in block.strip().splitlines() if line.strip()}
    columns = {}
    for section in re.split(r"^## ", doc, flags=re.M)[1:]:
        title = section.splitlines()[0].strip()
        m = re.search(r"^Columns `([^`]+)`", section, flags=re.M)
        if m and "{" not in title:
            columns[title] = [c.strip() for c in m.group(1).split(",")]
    return names, columns


LABEL_FILES = {"label_issues.csv", "label_metrics.csv", "label_paired.csv"}


def test_the_document_lists_exactly_what_a_run_writes(real_run):
    import tomllib

    names, columns = _documented()
    assert LABEL_FILES <= names
    written = {p.name for p in real_run.iterdir()} - {".lock", ".lock.holder"}
    mode = tomllib.loads((real_run / "config.toml").read_text(encoding="utf-8"))["data"]["label_errors"]
    # The label files are written unless the run turned label errors off (as the quick preset does).
    assert written == (names - LABEL_FILES if mode == "off" else names), mode
    assert set(columns) >= {"predictions.csv.gz", "metrics.csv", "paired.csv", "timings.csv", "split.csv",
                            "models.csv"}
    for file, cols in columns.items():
        if file in written:
            assert list(pd.read_csv(real_run / file, nrows=0).columns) == cols, file
    doc = (ROOT / "docs" / "run-directory.md").read_text(encoding="utf-8")
    unit_rows = doc.split("## units/{unit}/")[1].split("##")[0]
    documented = set(re.findall(r"^\| ([\w., ]+) \|", unit_rows, flags=re.M))
    documented = {name.strip() for row in documented for name in row.split(",")}
    for unit in (real_run / "units").iterdir():
        assert {f.name for f in unit.iterdir()} <= documented, unit.name


def test_the_import_rules_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("lint-imports is not installed (pip install -e '.[test]')")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]


def test_the_document_names_the_label_files_columns():
    from facebench.rundir.label_files import ISSUE_COLUMNS, LABEL_METRIC_COLUMNS

    doc = (ROOT / "docs" / "run-directory.md").read_text(encoding="utf-8")
    section = re.sub(r"\s+", " ", doc.split("## label_issues.csv")[1].split("\n## ")[0])
    section = re.sub(r' \("[^)]*\)', "", section)  # drop the value lists, e.g. ("train" | "test")
    assert ", ".join(ISSUE_COLUMNS) in section
    assert ", ".join(LABEL_METRIC_COLUMNS) in section
