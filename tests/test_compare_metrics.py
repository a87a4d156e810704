"""Metrics against scikit-learn and hand-worked cases, bootstrap coverage, paired tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from facebench.compare.stats.metrics import (
    age_bootstrap,
    age_metrics,
    bootstrap_indices,
    gender_bootstrap,
    gender_metrics,
    holm,
    mcnemar,
    paired_age_test,
    paired_tests,
    percentile_interval,
    unit_metrics,
)

# The study's seven faces: (true age, predicted age).
STUDY_FULL = [(3, 2), (15, 14), (28, 27), (40, 42), (61, 64), (78, 78), (93, 92)]
STUDY_REDUCED = [(3, 5), (15, 13), (28, 33), (40, 42), (61, 56), (78, 73), (93, 98)]


def test_study_mse_full_data():
    t, p = zip(*STUDY_FULL)
    # 1 + 1 + 1 + 4 + 9 + 0 + 1 = 17 -> 17/7 (the study wrote 15/7, an arithmetic slip)
    assert age_metrics(t, p)["mse"] == pytest.approx(17 / 7)


def test_study_mse_reduced_data():
    t, p = zip(*STUDY_REDUCED)
    # 4 + 4 + 25 + 4 + 25 + 25 + 25 = 112 -> 16
    m = age_metrics(t, p)
    assert m["mse"] == pytest.approx(16.0)
    assert m["rmse"] == pytest.approx(4.0)
    assert m["mae"] == pytest.approx(26 / 7)


def test_study_confusion_matrix():
    # rows true male, female: [[3, 0], [1, 3]] -> 3 men right, 1 woman called a man, 3 women right
    y_true = [0, 0, 0, 1, 1, 1, 1]
    y_pred = [0, 0, 0, 0, 1, 1, 1]
    m = gender_metrics(y_true, y_pred)
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (3, 0, 1, 3)
    assert m["accuracy"] == pytest.approx(6 / 7)
    assert m["f1_male"] == pytest.approx(6 / 7)
    assert m["f1_female"] == pytest.approx(6 / 7)
    assert m["precision_male"] == pytest.approx(3 / 4) and m["recall_female"] == pytest.approx(3 / 4)


def test_gender_metrics_agree_with_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    score = np.clip(y * 0.3 + rng.random(500) * 0.7, 0, 1)
    pred = (score > 0.5).astype(int)
    m = gender_metrics(y, pred, score)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["precision_female"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall_male"] == pytest.approx(skm.recall_score(y, pred, pos_label=0))


def test_age_metrics_agree_with_sklearn():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 100, 300)
    p = t + rng.normal(0, 7, 300)
    m = age_metrics(t, p)
    assert m["r2"] == pytest.approx(skm.r2_score(t, p))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(t, p))


def test_vectorised_bootstrap_matches_pointwise():
    """Each resample's vectorised metrics equal scikit-learn on that resample."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 80)
    score = np.clip(y * 0.4 + rng.random(80) * 0.6, 0, 1)
    pred = (score > 0.5).astype(int)
    idx = bootstrap_indices(80, 5, seed=0)
    boot = gender_bootstrap(y, pred, score, idx)
    for b in range(5):
        ref = gender_metrics(y[idx[b]], pred[idx[b]], score[idx[b]])
        for key in ("accuracy", "f1_macro", "precision_male", "recall_female", "roc_auc"):
            assert boot[key][b] == pytest.approx(ref[key]), key
    ages = rng.integers(0, 90, 80)
    guess = ages + rng.normal(0, 5, 80)
    aboot = age_bootstrap(ages, guess, idx)
    for b in range(5):
        ref = age_metrics(ages[idx[b]], guess[idx[b]])
        for key in ("mae", "rmse", "r2"):
            assert aboot[key][b] == pytest.approx(ref[key])


def test_bootstrap_interval_coverage_is_near_nominal():
    """On a simulated case with a known MAE, ~95% of intervals cover it."""
    rng = np.random.default_rng(3)
    true_mae = 5.0 * np.sqrt(2 / np.pi)  # E|N(0, 5^2)|
    covered = 0
    reps = 200
    for r in range(reps):
        t = rng.integers(0, 100, 300).astype(float)
        p = t + rng.normal(0, 5.0, 300)
        lo, hi = percentile_interval(age_bootstrap(t, p, bootstrap_indices(300, 400, seed=r))["mae"])
        covered += lo <= true_mae <= hi
    assert 0.89 <= covered / reps <= 0.99


def test_mcnemar_textbook_table():
    # The classic 2x2 table (a=101, b=121, c=59, d=33): chi2 = (121-59)^2 / 180 = 21.36
    a = np.r_[np.ones(101 + 121, bool), np.zeros(59 + 33, bool)]
    b = np.r_[np.ones(101, bool), np.zeros(121, bool), np.ones(59, bool), np.zeros(33, bool)]
    res = mcnemar(a, b)
    assert (res["b"], res["c"]) == (121, 59)
    assert res["statistic"] == pytest.approx(21.356, abs=1e-3)
    assert res["p_value"] < 1e-4


def test_mcnemar_small_exact_case():
    # b=1, c=5: exact two-sided binomial p = 2 * (1 + 6) / 64 = 0.21875
    a = np.array([1, 0, 0, 0, 0, 0, 1, 1], bool)
    b = np.array([0, 1, 1, 1, 1, 1, 1, 1], bool)
    assert mcnemar(a, b)["p_value"] == pytest.approx(0.21875)


def test_paired_age_test_detects_a_better_model():
    rng = np.random.default_rng(4)
    e_good = rng.normal(0, 4, 400)
    e_bad = rng.normal(0, 8, 400)
    res = paired_age_test(e_good, e_bad, n_boot=500)
    assert res["p_value"] < 1e-6 and res["effect"] < 0
    assert res["effect_ci_low"] < res["effect"] < res["effect_ci_high"] < 0
    same = paired_age_test(e_good, e_good, n_boot=0)
    assert same["p_value"] == 1.0 and same["effect"] == 0


def _predictions(n=300, seed=0):
    rng = np.random.default_rng(seed)
    base = pd.DataFrame({"image_id": [f"i{i}" for i in range(n)], "age": rng.integers(0, 90, n),
                         "gender": rng.integers(0, 2, n), "race": pd.array(rng.integers(0, 5, n), dtype="Int64")})
    frames = []
    for model, noise, flip in (("good", 3, 0.05), ("bad", 12, 0.3)):
        f = base.copy()
        f["model"] = model
        f["age_pred"] = f["age"] + rng.normal(0, noise, n)
        wrong = rng.random(n) < flip
        f["gender_pred"] = np.where(wrong, 1 - f["gender"], f["gender"])
        f["p_female"] = np.clip(f["gender_pred"] * 0.6 + rng.random(n) * 0.4, 0, 1)
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def test_unit_metrics_groups_and_intervals():
    pred = _predictions()
    rows = pd.DataFrame(unit_metrics(pred[pred.model == "good"], n_boot=200))
    groups = set(rows["group"])
    assert {"all", "gender:male", "gender:female", "race:white", "age_band:20-29"} <= groups
    mae = rows[(rows.group == "all") & (rows.metric == "mae")].iloc[0]
    assert mae.ci_low < mae.value < mae.ci_high
    assert set(rows["task"]) == {"age", "gender"}


def test_paired_tests_name_the_better_model():
    res = pd.DataFrame(paired_tests(_predictions(), n_boot=200))
    assert set(res["task"]) == {"age", "gender"}
    assert (res["better"] == "good").all()
    assert (res["p_value"] < 0.001).all()


def test_holm_matches_the_hand_worked_step_down():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> monotone 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])  # capped at 1
    out = holm([0.01, np.nan, 0.02])  # a NaN does not count towards the family size
    assert np.isnan(out[1]) and np.allclose(out[[0, 2]], [0.02, 0.02])
    assert holm([]).shape == (0,)


def test_paired_tests_adjust_p_values_within_each_task():
    pred = _predictions()
    mid = pred[pred.model == "good"].assign(model="mid")
    mid["age_pred"] += np.random.default_rng(1).normal(0, 4, len(mid))
    res = pd.DataFrame(paired_tests(pd.concat([pred, mid], ignore_index=True), n_boot=50))
    assert len(res) == 6  # 3 pairs per task
    for _, group in res.groupby("task"):
        np.testing.assert_allclose(group["p_holm"], holm(group["p_value"]))
        assert (group["p_holm"] >= group["p_value"]).all()
