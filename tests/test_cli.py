"""The command line: help everywhere, synth and explore, and one-line user errors (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from facebench.cli import build_parser, main

COMMANDS = ["demo", "run", "sweep", "report", "explore", "predict", "synth", "explain", "models"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_on_every_subcommand(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert f"usage: facebench {command}" in capsys.readouterr().out


def test_parser_knows_the_design_commands():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "facebench.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("facebench ")


def test_synth_then_explore(tmp_path, capsys):
    faces = tmp_path / "faces"
    assert main(["synth", "--out", str(faces), "--n", "30", "--seed", "2", "--size", "64"]) == 0
    assert "30 synthetic faces" in capsys.readouterr().out
    assert len(list(faces.glob("*.jpg"))) == 30
    report = tmp_path / "explore"
    assert main(["explore", "--data", str(faces), "--out", str(report)]) == 0
    out = capsys.readouterr().out
    assert "found 30, used 30, skipped 0" in out
    audit = json.loads((report / "audit.json").read_text())
    assert audit["used"] == 30 and audit["synthetic"] is True
    html = (report / "explore.html").read_text()
    assert "synthetic" in html.lower() and "<html" in html.lower()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["synth", "--out", "{tmp}/f", "--n", "0"], "--n 0: expected a positive number"),
        (["explore", "--data", "{tmp}/nowhere"], "no such file or folder"),
        (["explore", "--data", "{tmp}/empty"], "no usable image"),
        (["report", "{tmp}"], "not a run directory"),
        (["explore", "--data", "{tmp}/empty", "--out", "{tmp}/afile"], "exists and is not a folder"),
    ],
)
def test_user_errors_are_one_line_exit_2(argv, message, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("x")
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.strip().count("\n") == 0 and "Traceback" not in err


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--preset"])  # a flag without its value
    assert exc.value.code == 2
    assert main(["run", "--preset", "quick"]) == 2  # no --data and no config that names one
    assert "no dataset: give --data" in capsys.readouterr().err


def test_models_lists_every_registered_model(capsys):
    from facebench.baselines import MODEL_TASKS
    from facebench.cnn import MODEL_NAMES

    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = {line.split()[0] for line in lines[1:] if line and not line.startswith(("CNNs", "fit / predict (5k)"))}
    assert names == set(MODEL_TASKS) | {f"cnn:{n}" for n in MODEL_NAMES}


def test_descriptions_in_help(capsys):
    for command in ("report", "explain", "models"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert len(out.split("\n\n")[1].strip()) > 20, command  # a description under the usage line


def test_report_puts_several_runs_side_by_side(tmp_path, capsys):
    from rundir_fixture import build_run_dir

    a = build_run_dir(tmp_path / "a", n_test=40, n_train=80)
    b = build_run_dir(tmp_path / "b", n_test=40, n_train=80)
    assert main(["report", str(a), str(b)]) == 2
    assert "need --out" in capsys.readouterr().err
    assert main(["report", str(a), str(b), "--out", str(tmp_path / "cmp.html")]) == 0
    assert "comparison:" in capsys.readouterr().out
    html = (tmp_path / "cmp.html").read_text(encoding="utf-8")
    assert str(a.name) in html and str(b.name) in html
