"""Suspected label errors: planted flips are found, test rows decide nothing, files round-trip, the report shows them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from facebench.baselines import feature_step
from facebench.compare.label_errors.detector import (
    AGE_DETECTOR,
    DETECTOR_MODEL,
    GENDER_DETECTOR,
    GENDER_THRESHOLD,
    detector_features,
    empty_issues,
    suspect_labels,
    suspect_labels_for_run,
)
from facebench.compare.label_errors.with_without import label_metrics
from facebench.compare.planning import drop_suspected
from facebench.compare.stats.metrics import age_metrics, gender_metrics
from facebench.data import decode, load_dataset, make_split, synthesize
from facebench.reports import write_report
from facebench.rundir import layout
from facebench.rundir.label_files import (
    ISSUE_COLUMNS,
    LABEL_ISSUES_FILE,
    LABEL_METRIC_COLUMNS,
    read_label_issues,
    read_label_metrics,
    write_label_issues,
    write_label_metrics,
)
from rundir_fixture import HOSTILE_FILE, build_run_dir
from test_reports import clean, parse

N_FACES = 600
N_PLANTED = 25


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """600 synthetic faces (64 px), their detector features and one split."""
    root = tmp_path_factory.mktemp("label-faces")
    synthesize(root / "faces", n=N_FACES, seed=0, size=64, n_jobs=1)
    table = load_dataset(root / "faces").table.reset_index(drop=True)
    images = np.asarray(decode(table, size=64, color="rgb", cache_dir=root / "cache", n_jobs=1))
    features = feature_step(DETECTOR_MODEL, "gender").transform(images)
    features = features[:, : features.shape[1] // 2]  # the faces, not their mirror images
    train, test = make_split(table, seed=0, test_size=0.2)
    return {"table": table, "features": features, "train": train, "test": test}


@pytest.fixture(scope="module")
def found(faces):
    """Both tasks on the faces' own labels (the synthetic generator draws ~2 % of them with the wrong gender)."""
    return suspect_labels(faces["features"], faces["table"], faces["train"], test_rows=faces["test"], seed=0)


def test_columns_and_values(found, faces):
    assert list(found.columns) == ISSUE_COLUMNS
    assert set(found["task"]) == {"gender", "age"} and set(found["part"]) == {"train", "test"}
    g = found[found["task"] == "gender"]
    assert ((g["confidence"] > 1 - GENDER_THRESHOLD) & (g["confidence"] <= 1)).all()  # P(given) below the cut
    assert (g["suggested"] == 1 - g["given"]).all() and set(g["detector"]) == {GENDER_DETECTOR}
    a = found[found["task"] == "age"]
    assert (a["confidence"] > 0).all() and set(a["detector"]) == {AGE_DETECTOR}
    assert ((a["given"] - a["suggested"]).abs() >= 5).all()  # the age_min_years floor
    ids = faces["table"]["image_id"].to_numpy()
    assert set(found.loc[found["part"] == "train", "image_id"]) <= set(ids[faces["train"]])
    assert set(found.loc[found["part"] == "test", "image_id"]) <= set(ids[faces["test"]])
    truth = faces["table"].set_index("image_id")
    assert (g["given"].to_numpy() == truth.loc[g["image_id"], "gender"].to_numpy()).all()
    assert (a["given"].to_numpy() == truth.loc[a["image_id"], "age"].to_numpy()).all()
    assert len(found) < 0.3 * N_FACES  # doubts, not a verdict on most faces


def test_planted_gender_flips_are_found(faces):
    rng = np.random.default_rng(1)
    planted = rng.choice(faces["train"], N_PLANTED, replace=False)
    noisy = faces["table"].copy()
    noisy.loc[planted, "gender"] = 1 - noisy.loc[planted, "gender"]
    issues = suspect_labels(faces["features"], noisy, faces["train"], test_rows=faces["test"], seed=0, tasks=("gender",))
    flagged = set(issues.loc[issues["part"] == "train", "image_id"])
    hits = flagged & set(faces["table"]["image_id"].to_numpy()[planted])
    recall, precision = len(hits) / N_PLANTED, len(hits) / max(len(flagged), 1)
    chance = N_PLANTED / len(faces["train"])
    # measured 0.72 and 0.23 (the flags among untouched faces are the detector's own mistakes
    # and the generator's faces drawn with the other gender's look)
    assert recall >= 0.6, (recall, precision)
    assert precision >= 3 * chance, (recall, precision)
    assert set(issues["task"]) == {"gender"}


def test_the_gender_rule_is_a_self_confidence_cut_and_the_count_rule_remains(faces, found):
    table, features, train, test = faces["table"], faces["features"], faces["train"], faces["test"]
    gender = found[found["task"] == "gender"]

    def flagged(issues):
        return set(zip(issues["part"], issues["image_id"]))

    stricter = suspect_labels(features, table, train, test_rows=test, seed=0, tasks=("gender",), gender_threshold=0.2)
    looser = suspect_labels(features, table, train, test_rows=test, seed=0, tasks=("gender",), gender_threshold=0.5)
    assert flagged(stricter) < flagged(gender) < flagged(looser)  # a cut: nested, and it moves
    assert (stricter["confidence"] > 0.8).all() and (looser["confidence"] >= 0.5).all()
    assert set(stricter["detector"]) == {"hog+lbp+color pca256 svc, self-confidence < 0.2"}
    counted = suspect_labels(features, table, train, test_rows=test, seed=0, tasks=("gender",),
                             gender_filter="prune_by_noise_rate")
    assert len(counted) and set(counted["detector"]) == {"hog+lbp+color pca256 svc, cleanlab prune_by_noise_rate"}
    assert GENDER_DETECTOR == "hog+lbp+color pca256 svc, self-confidence < 0.4"
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="gender_threshold"):
            suspect_labels(features, table, train, seed=0, tasks=("gender",), gender_threshold=bad)


def test_planted_gender_flips_in_real_faces_are_found(utkface):
    """100 gender labels of the 5k subset's training part flipped: the aim is 80 % found, half the added flags right."""
    from facebench.compare.planning.config import resolve

    table = load_dataset(utkface).table.reset_index(drop=True)
    # the hand-crafted detector, whose figures these are (the descriptor's: benchmarks/RESULTS.md)
    features = detector_features(table, resolve({"preset": "standard", "data": {"path": str(utkface),
                                                                                "label_detector": "hog+lbp+color"}}))
    train, _ = make_split(table, seed=0, test_size=0.2)
    planted = np.sort(np.random.default_rng(0).choice(train, size=100, replace=False))
    noisy = table.copy()
    noisy.loc[planted, "gender"] = 1 - noisy.loc[planted, "gender"]
    before = set(suspect_labels(features, table, train, seed=0, tasks=("gender",))["image_id"])
    after = set(suspect_labels(features, noisy, train, seed=0, tasks=("gender",))["image_id"])
    planted_ids = set(table["image_id"].to_numpy()[planted])
    found_ = after & planted_ids
    added = found_ | (after - planted_ids - before)
    # measured on this split: 81 of 100 found, 47.9 % of the added flags planted (83.8 % and
    # 51.6 % over 5 splits, benchmarks/RESULTS.md)
    assert len(found_) >= 78, len(found_)
    assert len(found_) / len(added) >= 0.42, (len(found_), len(added))
    assert len(after - planted_ids) < 0.12 * (len(train) - 100)  # false alarms among the untouched faces


def test_planted_age_errors_are_found(faces):
    rng = np.random.default_rng(2)
    ages = faces["table"]["age"].to_numpy()[faces["train"]]
    rows = faces["train"][(ages >= 20) & (ages <= 35)]  # young adults made 50 years older
    planted = rng.choice(rows, 10, replace=False)
    noisy = faces["table"].copy()
    noisy.loc[planted, "age"] = noisy.loc[planted, "age"] + 50
    issues = suspect_labels(faces["features"], noisy, faces["train"], seed=0, tasks=("age",))
    flagged = set(issues["image_id"])
    assert len(flagged & set(faces["table"]["image_id"].to_numpy()[planted])) >= 8
    stricter = suspect_labels(faces["features"], noisy, faces["train"], seed=0, tasks=("age",), age_k=6.0)
    assert set(stricter["image_id"]) <= flagged and len(stricter) < len(issues)


def test_test_rows_decide_nothing(faces, found):
    """Garbage in the test rows' features and labels changes no training verdict, nor another test row's."""
    table, features, train, test = faces["table"], faces["features"], faces["train"], faces["test"]
    rng = np.random.default_rng(3)
    garbled, kept = test[::2], test[1::2]
    bad_table = table.copy()
    bad_table.loc[garbled, "gender"] = rng.integers(0, 2, len(garbled))
    bad_table.loc[garbled, "age"] = rng.integers(0, 117, len(garbled))
    bad_features = features.copy()
    bad_features[garbled] = rng.normal(0, 1e3, bad_features[garbled].shape)
    again = suspect_labels(bad_features, bad_table, train, test_rows=test, seed=0)
    pd.testing.assert_frame_equal(again[again["part"] == "train"].reset_index(drop=True),
                                  found[found["part"] == "train"].reset_index(drop=True))
    ids = set(table["image_id"].to_numpy()[kept])
    pd.testing.assert_frame_equal(again[(again["part"] == "test") & again["image_id"].isin(ids)].reset_index(drop=True),
                                  found[(found["part"] == "test") & found["image_id"].isin(ids)].reset_index(drop=True))
    without = suspect_labels(features, table, train, seed=0)  # no test rows at all
    pd.testing.assert_frame_equal(without.reset_index(drop=True), found[found["part"] == "train"].reset_index(drop=True))


def test_every_trial_of_a_run(faces):
    table, features = faces["table"], faces["features"]
    splits = {t: make_split(table, seed=t, test_size=0.2) for t in (0, 1)}
    lines = []
    issues = suspect_labels_for_run(features, table, splits, seed=0, tasks=("gender",), n_folds=3, log=lines.append)
    assert list(issues.columns) == ISSUE_COLUMNS and set(issues["trial"]) == {0, 1}
    assert len(lines) == 2 and "trial 1" in lines[1]
    for t, (train, test) in splits.items():
        ids = table["image_id"].to_numpy()
        sub = issues[issues["trial"] == t]
        assert set(sub.loc[sub["part"] == "train", "image_id"]) <= set(ids[train])
        assert set(sub.loc[sub["part"] == "test", "image_id"]) <= set(ids[test])


def test_drop_suspected(faces, found):
    table, train = faces["table"], faces["train"]
    rows = drop_suspected(train, table, found, trial=0)
    doubted = set(found.loc[found["part"] == "train", "image_id"])
    ids = table["image_id"].to_numpy()
    assert len(rows) == len(train) - len(doubted)
    assert not doubted & set(ids[rows]) and set(ids[rows]) | doubted == set(ids[train])
    assert (np.diff(rows) > 0).all()  # order kept
    gender_only = drop_suspected(train, table, found, trial=0, tasks=("gender",))
    assert len(gender_only) == len(train) - found.query("part == 'train' and task == 'gender'")["image_id"].nunique()
    assert (drop_suspected(train, table, found, trial=1) == train).all()  # another trial's doubts
    assert (drop_suspected(train, table, None, trial=0) == train).all()
    # test faces are never dropped: a suspicion in the test part leaves a training list alone
    assert (drop_suspected(train, table, found[found["part"] == "test"], trial=0) == train).all()


def test_issue_and_metric_files_round_trip(tmp_path, found):
    odd = found.head(3).copy()
    odd["image_id"] = ["NA.jpg", "Zoë_名字.jpg", 'a,"b".jpg']
    frame = pd.concat([found, odd], ignore_index=True)
    assert read_label_issues(tmp_path) is None and read_label_metrics(tmp_path) is None
    write_label_issues(tmp_path, frame)
    back = read_label_issues(tmp_path)
    pd.testing.assert_frame_equal(back, frame[ISSUE_COLUMNS].reset_index(drop=True), check_dtype=False)
    assert back["given"].dtype == np.int64 and back["image_id"].iloc[-3] == "NA.jpg"
    assert [p.name for p in tmp_path.iterdir()] == [LABEL_ISSUES_FILE]  # no temporary file left
    write_label_issues(tmp_path, empty_issues())
    assert list(read_label_issues(tmp_path).columns) == ISSUE_COLUMNS and not len(read_label_issues(tmp_path))
    metrics = pd.DataFrame([{"trial": 0, "fraction": 1.0, "model": "null", "task": "age", "subset": "all",
                             "metric": "mae", "value": 7.5, "ci_low": 7.0, "ci_high": 8.0, "n": 100}])
    write_label_metrics(tmp_path, metrics)
    pd.testing.assert_frame_equal(read_label_metrics(tmp_path), metrics)
    with pytest.raises(ValueError, match="lacks the columns"):
        write_label_issues(tmp_path, found.drop(columns="confidence"))


def _issues_for(run_dir) -> pd.DataFrame:
    """A few suspicions on the faces of a fixture run directory (a hostile name among them)."""
    split = pd.read_csv(run_dir / layout.SPLIT_FILE, dtype={"image_id": str, "path": str}, keep_default_na=False)
    split = split[split["trial"] == 0]
    rows = []
    for part in ("train", "test"):
        sub = split[split["part"] == part]
        picks = pd.concat([sub[sub["image_id"] == HOSTILE_FILE], sub.head(6)]).drop_duplicates("image_id").head(6)
        for i, r in enumerate(picks.to_dict("records")):
            rows.append({"trial": 0, "part": part, "image_id": r["image_id"], "path": r["path"], "task": "gender",
                         "given": int(r["gender"]), "suggested": 1 - int(r["gender"]), "confidence": 0.9 - 0.05 * i,
                         "detector": GENDER_DETECTOR})
            if i < 3:
                rows.append({"trial": 0, "part": part, "image_id": r["image_id"], "path": r["path"], "task": "age",
                             "given": int(r["age"]), "suggested": int(r["age"]) + 30, "confidence": 5.0 - i,
                             "detector": AGE_DETECTOR})
    return pd.DataFrame(rows).assign(agree="")[ISSUE_COLUMNS]


def test_label_metrics_leave_out_the_suspected_test_faces(tmp_path):
    run_dir = build_run_dir(tmp_path / "run", n_trials=1, fractions=(1.0,), n_test=40, n_train=80)
    issues = _issues_for(run_dir)
    preds = pd.read_csv(run_dir / layout.PREDICTIONS_FILE, dtype={"image_id": str, "path": str}, keep_default_na=False,
                        na_values={"age_pred": [""], "p_female": [""], "gender_pred": [""]})
    metrics = label_metrics(preds, issues, n_boot=50, seed=0)
    assert list(metrics.columns) == LABEL_METRIC_COLUMNS
    doubted = set(issues.loc[(issues["part"] == "test") & (issues["task"] == "gender"), "image_id"])
    p = preds[(preds["model"] == "hog+svm") & preds["gender_pred"].notna()]
    kept = p[~p["image_id"].isin(doubted)]
    row = metrics.query("model == 'hog+svm' and metric == 'accuracy' and subset == 'unsuspected'").iloc[0]
    assert row["n"] == len(kept) == len(p) - len(doubted)
    assert row["value"] == pytest.approx(gender_metrics(kept["gender"], kept["gender_pred"].astype(int))["accuracy"])
    assert row["ci_low"] <= row["value"] <= row["ci_high"]
    doubted_age = set(issues.loc[(issues["part"] == "test") & (issues["task"] == "age"), "image_id"])
    a = preds[(preds["model"] == "hog+ridge") & preds["age_pred"].notna()]
    a = a[~a["image_id"].isin(doubted_age)]
    mae = metrics.query("model == 'hog+ridge' and metric == 'mae' and subset == 'unsuspected'")["value"].iloc[0]
    assert mae == pytest.approx(age_metrics(a["age"], a["age_pred"])["mae"])


def test_report_section(tmp_path):
    run_dir = build_run_dir(tmp_path / "run", n_trials=1, fractions=(1.0,), n_test=40, n_train=80)
    page = write_report(run_dir).read_text(encoding="utf-8")
    assert 'id="labels"' not in page and "#labels" not in page  # no label_issues.csv: no section

    issues = _issues_for(run_dir)
    write_label_issues(run_dir, issues)
    page = write_report(run_dir).read_text(encoding="utf-8")
    dom = parse(page)
    section = dom.find("section", id="labels")
    assert section is not None and "#labels" in page
    text = clean(section.text())
    assert "Labels to doubt" in text and "sensitivity analysis" in text and "Suspected is not proven" in text
    assert GENDER_DETECTOR in text and AGE_DETECTOR in text and "out of sample" in text
    assert "label_metrics.csv is missing" in text
    assert "given female, suggested male" in text or "given male, suggested female" in text
    assert "<img src=x" not in page  # the hostile file name is escaped
    ids = [s.attrs["id"] for s in dom.find_all("section")]
    assert ids.index("labels") == ids.index("worst") + 1
    assert (run_dir / "tables" / "label_counts.csv").exists()
    counts = pd.read_csv(run_dir / "tables" / "label_counts.csv")
    first = counts.iloc[0]
    assert first["group"] == "all faces" and first["gender_train"] == 6 and first["age_test"] == 3

    preds = pd.read_csv(run_dir / layout.PREDICTIONS_FILE, dtype={"image_id": str, "path": str}, keep_default_na=False,
                        na_values={"age_pred": [""], "p_female": [""], "gender_pred": [""]})
    write_label_metrics(run_dir, label_metrics(preds, issues, n_boot=50, seed=0))
    page = write_report(run_dir).read_text(encoding="utf-8")
    text = clean(parse(page).find("section", id="labels").text())
    assert "Without the suspected" in text and "hog+svm" in text and "label_metrics.csv is missing" not in text
    table = pd.read_csv(run_dir / "tables" / "label_metrics.csv")
    assert (table.loc[table["task"] == "gender", "left_out"] == 6).all()


def test_paired_tests_are_repeated_without_the_suspected_test_faces(tmp_path):
    from facebench.compare.label_errors.with_without import cleaned_paired_tests, with_agreement
    from facebench.compare.stats.metrics import paired_tests

    run_dir = build_run_dir(tmp_path / "run", n_trials=1, fractions=(1.0,), n_test=40, n_train=80)
    issues = _issues_for(run_dir)
    pred = pd.read_csv(run_dir / layout.PREDICTIONS_FILE, dtype={"image_id": str, "path": str},
                       keep_default_na=False, na_values={"age_pred": [""], "p_female": [""], "gender_pred": [""]})
    cleaned = cleaned_paired_tests(pred, issues, n_boot=0)
    doubted = set(issues[(issues.part == "test") & (issues.task == "gender")].image_id)
    kept = pred[~pred.image_id.isin(doubted) & pred.gender_pred.notna()]
    expected = [r for r in paired_tests(kept, n_boot=0) if r["task"] == "gender"]
    got = cleaned[cleaned.task == "gender"].reset_index(drop=True)
    assert len(got) == len(expected) > 0
    assert got.n.tolist() == [r["n"] for r in expected]
    assert got.p_value.tolist() == pytest.approx([r["p_value"] for r in expected])
    agreed = with_agreement(issues, pred)
    test_gender = agreed[(agreed.part == "test") & (agreed.task == "gender")]
    for r in test_gender.itertuples():
        face = pred[(pred.image_id == r.image_id) & pred.gender_pred.notna()]
        sided = sorted(face[face.gender_pred.astype(float) == r.suggested].model)
        assert r.agree == ";".join(sided)
    assert (agreed[agreed.part == "train"].agree == "").all()
