"""The report's sections one by one: what they say, and that every hint names a real config key.

Run directories come from ``rundir_fixture.build_run_dir`` (format 2); the page is parsed
with the small DOM of ``test_reports``.
"""

from __future__ import annotations

import html as html_lib
import re
import subprocess
import sys

import pandas as pd
import pytest

from facebench.compare.planning import DEFAULTS
from facebench.errors import UserError
from facebench.reports import read_run, write_comparison, write_report
from facebench.reports.sections.paired import chance_caution
from facebench.rundir import layout
from rundir_fixture import ENVIRONMENT, EPOCHS, build_run_dir
from test_reports import clean, parse

#: Every key of the configuration (``cnn.<name>.<param>`` is checked by pattern).
def _flat_keys(node: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in node.items():
        keys.add(prefix + key)
        if isinstance(value, dict):
            keys |= _flat_keys(value, f"{prefix}{key}.")
    return keys


#: Every key a run config may set (the validator's own defaults), dotted.
CONFIG_KEYS = _flat_keys(DEFAULTS)
CNN_KEY = re.compile(r"cnn\.[A-Za-z0-9_-]+\.[a-z_]+")
SMALL = {"n_test": 40, "n_train": 80, "n_trials": 1}


def _report(run_dir) -> tuple[str, dict[str, str]]:
    text = write_report(run_dir).read_text(encoding="utf-8")
    dom = parse(text)
    return text, {s.attrs["id"]: clean(s.text()) for s in dom.find_all("section")}


def hinted_keys(page: str) -> list[str]:
    """Every ``--set KEY=`` and ``config key KEY`` the page prints."""
    text = html_lib.unescape(re.sub(r"<[^>]+>", " ", page))
    keys = re.findall(r"--set\s+'?([A-Za-z0-9_.<>-]+)=", text)
    keys += [k.rstrip(".") for k in re.findall(r"config key ([A-Za-z0-9_.<>-]+)", text)]
    return keys


def assert_real_keys(keys: list[str]) -> None:
    assert keys, "the page prints no hint"
    for key in keys:
        assert key in CONFIG_KEYS or CNN_KEY.fullmatch(key), f"the report names {key!r}, which is no config key"


@pytest.fixture(scope="module")
def still_falling(tmp_path_factory):
    run_dir = build_run_dir(tmp_path_factory.mktemp("falling") / "run", cnn_history="still_falling", fractions=(1.0,), **SMALL)
    page, sections = _report(run_dir)
    return {"dir": run_dir, "html": page, "sections": sections}


@pytest.fixture(scope="module")
def converged(tmp_path_factory):
    run_dir = build_run_dir(tmp_path_factory.mktemp("converged") / "run", cnn_history="converged", **SMALL)
    page, sections = _report(run_dir)
    return {"dir": run_dir, "html": page, "sections": sections}


# ---- reproduce ----------------------------------------------------------------------


def test_machine_line_reads_run_json(converged):
    text = converged["sections"]["reproduce"]
    m = ENVIRONMENT["machine"]
    assert f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {m['memory_gb']} GB memory" in text
    assert f"Python {ENVIRONMENT['python']} on {ENVIRONMENT['platform']}" in text
    assert "Not recorded" not in text and "not recorded" not in text
    assert f"numpy{ENVIRONMENT['versions']['numpy']}" in text.replace(" ", "")


def test_reproduce_prints_the_commands_that_work(converged):
    text = converged["sections"]["reproduce"]
    run_dir = converged["dir"]
    assert f"facebench run --config {run_dir / 'config.toml'}" in text
    assert f"facebench report {run_dir}" in text
    assert "facebench run --data" in text  # the command that made the run, from run.json


# ---- hints --------------------------------------------------------------------------


def test_every_hint_names_a_real_config_key(still_falling, tmp_path):
    assert_real_keys(hinted_keys(still_falling["html"]))
    quick = build_run_dir(tmp_path / "quick", preset="quick", fractions=(1.0,), cnn_history="cut_short", **SMALL)
    page = write_report(quick).read_text(encoding="utf-8")
    keys = hinted_keys(page)
    assert "fractions" in keys and "cnn.default.epochs" in keys
    assert_real_keys(keys)


def test_hint_parser_catches_a_wrong_key():
    keys = hinted_keys("<p>set <code>--set run.fractions=[1]</code></p>")
    assert keys == ["run.fractions"]
    with pytest.raises(AssertionError, match="no config key"):
        assert_real_keys(keys)


def test_data_size_hint_says_how_to_set_fractions(still_falling):
    text = still_falling["sections"]["data-size"]
    assert "set the config key fractions (for example --set 'fractions=[0.25, 0.5, 1.0]')" in text
    assert "run.fractions" not in still_falling["html"]


# ---- honest verdicts ----------------------------------------------------------------


def test_under_trained_cnn_is_said_next_to_the_verdict(still_falling):
    answer = still_falling["sections"]["answer"]
    assert "cnn-default stopped while its validation loss was still falling" in answer
    assert f"lowest at its last epoch, {EPOCHS} of {EPOCHS}" in answer
    assert "--preset standard --set cnn.default.epochs=30" in answer
    assert "still falling when training stopped" in still_falling["sections"]["training"]


def test_no_training_warning_when_the_cnn_converged(converged):
    assert "still falling" not in converged["html"] and "cut short" not in converged["html"]
    assert "learned features (cnn-default)" in converged["sections"]["answer"]


def test_cut_short_training_is_said(tmp_path):
    run_dir = build_run_dir(tmp_path / "run", cnn_history="cut_short", fractions=(1.0,), **SMALL)
    answer = _report(run_dir)[1]["answer"]
    assert f"cnn-default ran 5 of its {EPOCHS} epochs: its training was cut short" in answer
    assert "--set cnn.default.epochs=30" in answer


def test_quick_preset_is_called_a_smoke_test(tmp_path, converged):
    run_dir = build_run_dir(tmp_path / "run", preset="quick", fractions=(1.0,), **SMALL)
    answer = _report(run_dir)[1]["answer"]
    assert "quick preset: a smoke test" in answer and "its verdicts are not the answer" in answer
    assert "--preset standard" in answer
    assert "smoke test" not in converged["sections"]["answer"]


def _with_headline_p(run_dir, p_holm: float) -> str:
    paired = pd.read_csv(run_dir / "paired.csv")
    pair = (paired["task"] == "gender") & paired["model_a"].isin(["cnn-default", "hog+svm"]) & paired["model_b"].isin(["cnn-default", "hog+svm"])
    assert pair.any()
    paired.loc[pair, "p_holm"] = p_holm
    paired.to_csv(run_dir / "paired.csv", index=False)
    return _report(run_dir)[1]["answer"]


def test_headline_says_when_the_difference_is_not_supported(tmp_path):
    run_dir = build_run_dir(tmp_path / "run", models=("dummy", "hog+svm", "cnn-default"), fractions=(1.0,), **SMALL)
    answer = _with_headline_p(run_dir, 0.31)
    assert "Gender: the learned features (cnn-default)" in answer
    assert "not statistically supported" in answer and "Holm-adjusted p = 0.310" in answer
    assert "not statistically supported" not in _with_headline_p(run_dir, 0.004)


def test_model_family_comes_from_the_models_table(tmp_path):
    run_dir = build_run_dir(tmp_path / "run", models=("dummy", "hog+svm", "lbp+svm"), fractions=(1.0,), **SMALL)
    table = pd.read_csv(run_dir / "models.csv", dtype=str, keep_default_na=False)
    table.loc[table["name"] == "lbp+svm", "family"] = "learned"
    table.to_csv(run_dir / "models.csv", index=False)
    run = read_run(run_dir)
    assert run.family("lbp+svm") == "learned" and run.family("dummy") == "trivial" and run.kind("hog+svm") == "classical"
    answer = _report(run_dir)[1]["answer"]
    assert "learned features (lbp+svm)" in answer and "hand-crafted ones (hog+svm)" in answer


# ---- wording ------------------------------------------------------------------------


def test_paired_notes_read_as_sentences(converged):
    text = converged["sections"]["paired"]
    assert ".;" not in text and "absolute errors). Under it, Holm's adjusted p-value" in text
    assert not re.search(r"about 0\.\d+ of them", text)


@pytest.mark.parametrize("n_pairs, expected", [(3, "fewer than one of them"), (10, "fewer than one of them"), (20, "about one of them"), (60, "about 3 of them")])
def test_chance_caution_counts_for_humans(n_pairs, expected):
    assert expected in chance_caution(n_pairs, adjusted=True)


def test_label_summary_is_a_readable_table(converged):
    audit = converged["sections"]["audit"]
    assert "Labels of the faces used" in audit
    assert "gender male" in audit and "gender female" in audit and "ethnicity white" in audit
    assert "gender_counts" not in audit and "race_counts" not in audit


def test_synthetic_demo_dataset_is_named_for_humans(tmp_path):
    run_dir = build_run_dir(tmp_path / "run", root_name="n2000-seed0", fractions=(1.0,), models=("dummy", "hog+svm"), **SMALL)
    page, sections = _report(run_dir)
    assert "synthetic faces (2,000, seed 0)" in sections["answer"]
    assert "n2000-seed0</b>" not in page


# ---- reading ------------------------------------------------------------------------


def test_read_run_keeps_text_and_maps_histories(tmp_path):
    run_dir = build_run_dir(tmp_path / "run", fractions=(0.5, 1.0), n_trials=2, n_test=30, n_train=60)
    preds = pd.read_csv(run_dir / "predictions.csv.gz", dtype=str, keep_default_na=False)
    shown = preds.index[(preds["trial"] == "0") & (preds["fraction"] == "1.0")]
    preds.loc[shown[:5], "image_id"] = "NA.jpg"
    preds.loc[shown[5:10], "image_id"] = "null"
    preds.to_csv(run_dir / "predictions.csv.gz", index=False)
    run = read_run(run_dir)
    assert {"NA.jpg", "null"} <= set(run.predictions["image_id"])
    assert set(run.predictions["trial"]) == {0} and set(run.predictions["fraction"]) == {1.0}
    assert set(run.histories) == {(t, f, "cnn-default") for t in (0, 1) for f in (0.5, 1.0)}
    assert run.environment["machine"]["cores"] == ENVIRONMENT["machine"]["cores"]
    assert run.model_info("cnn-default")["params"]["epochs"] == EPOCHS
    assert run.views is None


def test_read_run_refuses_what_is_not_a_finished_run(tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        read_run(tmp_path / "nope")
    run_dir = build_run_dir(tmp_path / "run", models=("dummy",), fractions=(1.0,), **SMALL)
    (run_dir / layout.METRICS_FILE).write_text("trial,fraction,model\n", encoding="utf-8")
    with pytest.raises(UserError, match="lacks the columns"):
        read_run(run_dir)


def test_reports_import_no_model_code():
    code = (
        "import sys, facebench.reports, facebench.reports.render; "
        "bad = [m for m in sys.modules if m.startswith(('facebench.compare', 'facebench.baselines', 'facebench.cnn', 'tensorflow', 'keras'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# ---- several runs -------------------------------------------------------------------


def test_comparison_pairs_runs_on_the_same_faces_only(tmp_path):
    a = build_run_dir(tmp_path / "a", models=("dummy", "hog+svm", "hog+ridge"), fractions=(1.0,), seed=5, **SMALL)
    b = build_run_dir(tmp_path / "b", models=("dummy", "hog+svm", "hog+ridge"), fractions=(1.0,), seed=5, **SMALL)
    c = build_run_dir(tmp_path / "c", models=("dummy", "hog+svm"), fractions=(1.0,), seed=9, **SMALL)
    preds = pd.read_csv(b / "predictions.csv.gz", dtype={"image_id": str})
    sel = preds["model"] == "hog+ridge"
    preds.loc[sel, "age_pred"] = preds.loc[sel, "age_pred"] + 3.0  # run B errs 3 years more where it was above
    preds.to_csv(b / "predictions.csv.gz", index=False)
    page = write_comparison([a, b, c], tmp_path / "cmp.html").read_text(encoding="utf-8")
    dom = parse(page)
    sections = {s.attrs["id"]: clean(s.text()) for s in dom.find_all("section")}
    assert list(sections) == ["run-0", "run-1", "run-2", "pairs"]
    pairs = sections["pairs"]
    assert "run B against run A" in pairs and "hog+ridge" in pairs
    assert pairs.count("Different test faces: not comparable pair by pair.") == 2
    assert "http://" not in page and "https://" not in page
    with pytest.raises(UserError, match="at least two"):
        write_comparison([a], tmp_path / "one.html")


def test_skip_reasons_are_counted_by_kind_not_by_file():
    from facebench.reports.sections.audit import audit_section

    skipped = [{"file": f"b{i}.jpg", "reason": f"exact duplicate of a{i}.jpg"} for i in range(5)]
    skipped += [{"file": "m.csv line 3", "reason": "listed again: the same file as line 2"},
                {"file": "e.jpg", "reason": "empty file (0 bytes)"}]
    rows = audit_section({"found": 12, "used": 5, "skipped": skipped})["reasons"].to_csv().splitlines()[1:]
    assert rows == ['"exact duplicate of a kept file (same pixels, same labels)",5',
                    "listed again in the manifest,1", "empty file (0 bytes),1"]
