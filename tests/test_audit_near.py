"""The audit lists near-duplicate groups (audit.json, explore.html, the report) and keeps long lists short."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from facebench.data import synthesize
from facebench.reports.sections.audit import FIRST_ROWS
from planted import plant, relabel


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    folder = tmp_path_factory.mktemp("twins")
    synthesize(folder, n=60, seed=6, size=128)
    names = sorted(p.name for p in folder.glob("*.jpg"))
    for k, name in enumerate(names[:10]):
        age = int(name.split("_")[0])
        plant(folder / name, folder / relabel(name, age + 7 if k % 2 else age, k), "jpeg")
    return folder


def test_explore_lists_near_duplicate_groups_with_labels_and_thumbnails(twins, tmp_path, capsys):
    from facebench.cli import main

    assert main(["explore", "--data", str(twins), "--out", str(tmp_path)]) == 0
    assert "near-duplicate groups" in capsys.readouterr().out
    near = json.loads((tmp_path / "audit.json").read_text())["near_duplicates"]
    assert near["groups"] >= 9 and near["age_disagree"] >= 4 and near["gender_conflict"] == 0
    first = near["listed"][0]
    assert len(first["files"]) == len(first["ages"]) == len(first["genders"]) == 2
    html = (tmp_path / "explore.html").read_text(encoding="utf-8")
    section = html[html.index('<section id="near">'):]
    section = section[:section.index("</section>")]
    assert section.count('class="faces conflict"') == near["groups"]
    assert section.count("data:image/") >= 2 * near["groups"]
    assert "ages 7 years apart" in section  # the groups whose labels disagree come first, with their spread


def _big_audit(n_dup=375, n_near=120):
    dups = [{"files": [f"a{i}.jpg", f"b{i}.jpg"], "action": "same pixels, same labels: kept a"} for i in range(n_dup)]
    listed = [{"files": [f"c{i}.jpg", f"d{i}.jpg"], "ages": [20, 20 + i % 5], "genders": [0, 0], "races": [1, 1],
               "age_spread": i % 5, "gender_conflict": False, "max_bits": 2, "action": "kept together"}
              for i in range(n_near)]
    return {"found": 1000, "used": 900, "skipped": [{"file": f"s{i}.jpg", "reason": "bad label: x"} for i in range(250)],
            "duplicates": dups, "near_duplicates": {"groups": n_near, "faces": 2 * n_near, "max_bits": 2,
                                                    "hash": "h", "labels_disagree": 96, "age_disagree": 96,
                                                    "gender_conflict": 0, "listed": listed},
            "split": {"rule": "user", "description": "the manifest's part column, as given",
                      "straddling_groups": {"0": 3}}}


def test_long_lists_show_counts_and_first_rows_and_export_every_row(tmp_path):
    from facebench.reports import write_report
    from rundir_fixture import build_run_dir

    run_dir = build_run_dir(tmp_path / "run", fractions=(1.0,), n_test=40, n_train=80, n_trials=1, images=False)
    (run_dir / "audit.json").write_text(json.dumps(_big_audit()))
    html = write_report(run_dir).read_text(encoding="utf-8")
    audit_html = html[html.index('<section id="audit">'):]
    audit_html = audit_html[:audit_html.index("</section>")]
    assert audit_html.count("<details") == 3
    assert "375 groups; the first 20 here, every one in" in audit_html
    assert "250 files; the first 20 here" in audit_html
    assert audit_html.count("<tr>") < 3 * (FIRST_ROWS + 1) + 30  # not 745 rows
    assert "trial 0: 3 (the split is used as given)" in audit_html
    assert "96 group(s): age differs in 96, gender in 0" in audit_html
    for name, rows in (("audit_duplicates", 375), ("audit_near_duplicates", 120), ("audit_skipped", 250)):
        assert f"tables/{name}.csv" in audit_html
        assert len(pd.read_csv(run_dir / "tables" / f"{name}.csv")) == rows
