"""A run directory keeps its split: when facebench would now draw a trial's split otherwise
(its near-duplicate detection found other groups, say), the run is not grown."""

import json
import shutil

import pandas as pd


def _argv(run_dir, *extra):
    from conftest import TINY_RUN_OVERRIDES

    faces = json.loads((run_dir / "audit.json").read_text())["root"]
    argv = ["run", "--data", faces, "--preset", "quick", "--out", str(run_dir), "-q", *extra]
    for item in TINY_RUN_OVERRIDES:
        argv += ["--set", item]
    return argv


def test_a_run_whose_split_would_now_be_drawn_otherwise_is_not_grown(tiny_run, tmp_path, capsys):
    from facebench.cli import main

    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    split = pd.read_csv(old / "split.csv")
    first = split.index[(split["trial"] == 0) & (split["part"] == "train")][0]
    last = split.index[(split["trial"] == 0) & (split["part"] == "test")][0]
    split.loc[[first, last], "part"] = ["test", "train"]  # one face moved each way, as another detection would
    split.to_csv(old / "split.csv", index=False)
    before = {p: p.stat().st_mtime_ns for p in old.rglob("*") if p.is_file() and p.name != "run.log"}
    assert main(_argv(old, "--set", "trials=2")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trial 0 has other faces" in err[0] and f"--out {old}-resplit" in err[0], err
    changed = [p for p, t in before.items() if p.exists() and p.stat().st_mtime_ns != t and p.name != ".lock"]
    assert not changed, changed


def test_the_same_split_is_grown(tiny_run, tmp_path):
    from facebench.cli import main

    same = tmp_path / "same"
    shutil.copytree(tiny_run, same)
    assert main(_argv(same)) == 0  # resumed: every unit reused, the split unchanged
    assert pd.read_csv(same / "split.csv").equals(pd.read_csv(tiny_run / "split.csv"))
