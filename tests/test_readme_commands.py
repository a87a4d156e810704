"""Every ``facebench ...`` command README.md prints, run as printed, in order.

The commands come from README.md's fenced code blocks (not the Python ones), so a
command added there later is run too: the subcommands below check what their
comment promises, any other gets "exit status 0". They run in-process through
``facebench.cli.main(shlex.split(command))`` in one temporary working directory,
with ``HOME`` pointing at a temporary folder that holds ``data/UTKFace`` (a few
synthetic faces under UTKFace names), and a ``photo.jpg`` (one more synthetic face)
in the working directory. ``~`` is left to facebench (``expanduser`` honours HOME).

A command that reads a run directory no earlier command wrote first gets it from
the README ``run`` command that writes it, else from ``facebench run --data
~/data/DATASET --preset PRESET`` for ``runs/PRESET-DATASET``, with a warning: the
README uses a run it does not say how to make.

The presets run as they are (``standard``: 3 trials x 2 fractions, 6 CNN fits), so
this takes minutes, not seconds: each CNN fit pays graph tracing and XLA compilation
whatever the number of faces.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("tensorflow")

from facebench.cli import build_parser, main  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
README = PROJECT / "README.md"
N_FACES = 100
PRESETS = ("quick", "standard", "seed", "full")

pytestmark = [pytest.mark.slow, pytest.mark.readme]


@dataclass(frozen=True)
class Command:
    text: str  # as printed, the comment stripped
    comment: str
    line: int  # in README.md

    @property
    def words(self) -> list[str]:
        return shlex.split(self.text)

    def option(self, name: str, default=None):
        words = self.words
        return words[words.index(name) + 1] if name in words[:-1] else default


def fenced_blocks(text: str):
    """``(language, first line number, lines)`` of each fenced code block."""
    lines, block, start, lang = text.splitlines(), None, 0, ""
    for i, line in enumerate(lines, start=1):
        fence = re.match(r"\s*```(\S*)", line)
        if fence and block is None:
            block, start, lang = [], i + 1, fence.group(1)
        elif fence:
            yield lang, start, block
            block = None
        elif block is not None:
            block.append(line)


def readme_commands(text: str) -> list[Command]:
    """Every line of a non-Python fenced block that starts with ``facebench ``."""
    commands = []
    for lang, start, block in fenced_blocks(text):
        if lang in ("python", "py", "toml"):
            continue
        for offset, line in enumerate(block):
            line = line.strip()
            if line.startswith("facebench "):
                command, comment = split_comment(line)
                commands.append(Command(command, comment, start + offset))
    return commands


def split_comment(line: str) -> tuple[str, str]:
    """``(command, comment)``: a '#' outside quotes that starts a word starts the comment, as in a shell."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip(), line[i + 1:].strip()
    return line, ""


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))

#: Printed commands too slow for the test suite, and why: they are parsed, not run.
TOO_SLOW = {
    "facebench sweep --preset seed-scope --data ~/data/UTKFace":
        "17 CNN points of the seed CNN (10-30 epochs each), measured 2.2 minutes on 100 synthetic faces "
        "on 2 cores (with XLA, before oneDNN): each point pays its own graph tracing, whatever the number of faces",
}


def test_the_readme_prints_the_commands_this_file_runs():
    subcommands = {c.words[1] for c in COMMANDS}
    assert {"explore", "run", "report", "predict", "explain", "models"} <= subcommands


def test_quick_start_runs_the_demo_command_the_cli_has():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Quick start"):text.index("\n## ", text.index("## Quick start") + 1)]
    _, _, block = next(fenced_blocks(section))
    first = block[0]
    venv = re.search(r"-m venv (\S+)", first).group(1)
    demo = [part.strip() for part in first.split("&&") if re.match(r"(\S*/)?facebench\s", part.strip())]
    assert len(demo) == 1 and demo[0].startswith(f"{venv}/bin/facebench "), first  # the venv the line makes
    args = build_parser().parse_args(shlex.split(demo[0])[1:])
    assert args.command == "demo" and args.func.__name__ == "_cmd_demo"
    # "... prints the path of `facebench-demo/report.html`"
    promised = re.search(r"prints the path of\s+`([^`]+)`", section).group(1)
    assert Path(promised) == args.out / "report.html"


# --------------------------------------------------------------------------- the commands


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """``(home, cwd)``: HOME with data/UTKFace, a working directory with photo.jpg."""
    from facebench.data import synthesize

    root = tmp_path_factory.mktemp("readme")
    home, cwd = root / "home", root / "work"
    cwd.mkdir()
    synthesize(home / "data" / "UTKFace", n=N_FACES, seed=3)
    extra = synthesize(root / "photo", n=1, seed=99)  # a face none of the runs trained on
    shutil.copy(extra[0], cwd / "photo.jpg")
    return home, cwd


@pytest.fixture
def shell(workspace, monkeypatch, capsys):
    """``run(text) -> (exit status, stdout, stderr)`` of one command, in the workspace."""
    home, cwd = workspace
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)

    def run(text):
        words = shlex.split(text)
        assert words[0] == "facebench"
        capsys.readouterr()
        try:
            status = main(words[1:])
        except SystemExit as exc:  # argparse refusing the command line
            status = exc.code
        out, err = capsys.readouterr()
        return status, out, err

    return run


def bring_project_files(command: Command) -> None:
    """Copy the project's files a command names (``examples/...``) into the working directory.

    The README's commands run from the project folder (Quick start: "from this folder").
    """
    for word in command.words[1:]:
        path = Path(word)
        if not path.is_absolute() and not path.exists() and (PROJECT / path).is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(PROJECT / path, path)


def run_dir_of(command: Command) -> Path:
    """Where a ``facebench run`` command writes, as the CLI decides it."""
    if command.option("--out"):
        return Path(command.option("--out")).expanduser()
    config = command.option("--config")
    if config and (Path(config).parent / "run.json").is_file():
        return Path(config).parent
    data = Path(command.option("--data", "data")).expanduser()
    return Path("runs") / f"{command.option('--preset', 'standard')}-{data.stem}"


def needed_runs(command: Command) -> list[Path]:
    """The run directories ``command`` reads: ``runs/...`` arguments (not ``--out``), a config's folder."""
    words = command.words[2:]
    if "--out" in words[:-1]:
        del words[words.index("--out"):words.index("--out") + 2]
    paths = [Path(w) for w in words if re.match(r"runs/[^/]+/?$", w)]
    if command.option("--config", "").startswith("runs/"):
        paths.append(Path(command.option("--config")).parent)
    return paths


def make_run(run_dir: Path, shell) -> None:
    """Write ``run_dir`` with the README command that does, else with the obvious one."""
    printed = [c for c in COMMANDS if c.words[1] == "run" and "--config" not in c.words and run_dir_of(c) == run_dir]
    if printed:
        text = printed[0].text
    else:
        preset, _, dataset = run_dir.name.partition("-")
        assert preset in PRESETS and dataset, f"README uses {run_dir}, which no command makes"
        text = f"facebench run --data ~/data/{dataset} --preset {preset}"
        warnings.warn(f"README.md uses {run_dir} but prints no command that makes it; made with: {text}",
                      stacklevel=2)
    status, _, err = shell(text)
    assert status == 0, f"{text}: {err.strip().splitlines()[-1:]}"


def promised_paths(command: Command) -> list[Path]:
    """Files the comment promises: the paths after '->'."""
    _, arrow, after = command.comment.partition("->")
    return [Path(p) for p in after.split()] if arrow else []


@pytest.mark.parametrize("command", COMMANDS, ids=[f"L{c.line}:{c.text}" for c in COMMANDS])
def test_readme_command(command, shell):
    if command.text in TOO_SLOW:
        build_parser().parse_args(command.words[1:])  # still a command line the CLI takes
        pytest.skip(f"not run, too slow: {TOO_SLOW[command.text]}")
    bring_project_files(command)
    for run_dir in needed_runs(command):  # relative to the working directory, where shell runs
        if not (run_dir / "run.json").is_file():
            make_run(run_dir, shell)
    sub = command.words[1]
    before = _state_before(command)
    status, out, err = shell(command.text)
    assert status == 0, f"exit status {status}: {err.strip().splitlines()[-3:]}"
    for path in promised_paths(command):
        assert path.is_file(), f"{command.comment!r}: {path} was not written"
    check = CHECKS.get(sub)
    if check is not None:
        check(command, out, before)


# --------------------------------------------------------------------------- what each promises


def _state_before(command: Command) -> dict:
    sub = command.words[1]
    if sub == "run" and command.option("--config"):
        run_dir = run_dir_of(command)
        return {"predictions": pd.read_csv(run_dir / "predictions.csv.gz")}
    if sub == "report" and len(command.words) == 3:
        report = Path(command.words[2]) / "report.html"
        return {"mtime": report.stat().st_mtime_ns if report.exists() else None}
    return {}


def _check_explore(command, out, before):
    folder = Path(command.option("--out", "facebench-explore"))
    assert (folder / "explore.html").is_file()
    audit = json.loads((folder / "audit.json").read_text())
    assert audit["used"] == N_FACES and audit["skipped"] == []


def _check_run(command, out, before):
    run_dir = run_dir_of(command)
    report = Path(re.search(r"^report: (.+)$", out, re.M).group(1))
    assert report == run_dir / "report.html" and report.is_file()
    if "predictions" in before:  # "repeat (or resume) that run exactly": every unit reused, same predictions
        pd.testing.assert_frame_equal(pd.read_csv(run_dir / "predictions.csv.gz"), before["predictions"])


def _check_report(command, out, before):
    runs = [w for w in command.words[2:] if not w.startswith("--") and w != command.option("--out")]
    if command.option("--out"):
        page = Path(command.option("--out"))
        assert page.is_file() and f"comparison: {page}" in out
        html = page.read_text(encoding="utf-8")
        assert all(Path(r).name in html for r in runs)
    else:
        report = Path(runs[0]) / "report.html"
        assert report.is_file() and f"report: {report}" in out
        assert before["mtime"] is None or report.stat().st_mtime_ns > before["mtime"]  # rebuilt


def _check_predict(command, out, before):
    images = [w for w in command.words[2:] if not w.startswith("--") and w != command.option("--run")]
    lines = out.splitlines()
    assert len(lines) == len(images), out  # one JSON line per face: each synthetic chip is one face
    for line, image in zip(lines, images):
        face = json.loads(line)
        assert face["file"] == image and face["models"]
        assert not face.get("training_face", False)
        assert any("age" in m for m in face["models"].values())
        assert any("p_female" in m for m in face["models"].values())


def _check_explain(command, out, before):
    written = Path(re.search(r"^wrote (.+)$", out, re.M).group(1))
    assert written.is_file() and written.stat().st_size > 0


def _check_models(command, out, before):
    from facebench.baselines import list_models
    from facebench.cnn import MODEL_NAMES

    names = {line.split()[0] for line in out.splitlines() if line.strip()}
    expected = set(list_models("gender")) | set(list_models("age")) | {f"cnn:{n}" for n in MODEL_NAMES}
    assert expected <= names, sorted(expected - names)


def _check_sweep(command, out, before):
    report = Path(re.search(r"^report: (.+)$", out, re.M).group(1))
    assert report.is_file()
    confirm = re.search(r"^confirm on the test part: (facebench run --config (.+))$", out, re.M)
    assert confirm and Path(confirm.group(2)).is_file(), out  # "which the sweep writes and prints"


CHECKS = {"explore": _check_explore, "run": _check_run, "report": _check_report, "predict": _check_predict,
          "explain": _check_explain, "models": _check_models, "sweep": _check_sweep}
