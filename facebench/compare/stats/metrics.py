"""Metrics, bootstrap intervals and paired tests.

Point values come from scikit-learn. The bootstrap is written by hand because
scikit-learn has none and ``scipy.stats.bootstrap`` resamples one statistic at a
time; here one matrix of resampled indices serves every metric of a unit, and
the metrics are computed vectorised over the resamples (confusion counts by
``bincount``, ROC-AUC by the rank formula), which is ~100x faster than calling
scikit-learn B times.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as skm

from facebench.data import age_band, gender_name, race_name



# --------------------------------------------------------------------------- point metrics


def age_metrics(y_true, y_pred) -> dict:
    """MAE, MSE, RMSE and R² (scikit-learn); R² is NaN for fewer than two images."""
    y_true = np.asarray(y_true, float)
    y_pred = np.asarray(y_pred, float)
    mse = skm.mean_squared_error(y_true, y_pred)
    r2 = skm.r2_score(y_true, y_pred) if len(y_true) > 1 and np.ptp(y_true) > 0 else np.nan
    return {"mae": skm.mean_absolute_error(y_true, y_pred), "mse": mse, "rmse": float(np.sqrt(mse)),
            "r2": r2, "n": len(y_true)}


def gender_metrics(y_true, y_pred, score=None) -> dict:
    """Accuracy, per-class and macro precision/recall/F1, ROC-AUC and the confusion counts.

    Female (1) is the positive class for the counts and ROC-AUC. Undefined
    ratios (no predicted female, say) are 0 as in scikit-learn with
    ``zero_division=0``; ROC-AUC is NaN when only one class is present.
    """
    y_true = np.asarray(y_true, int)
    y_pred = np.asarray(y_pred, int)
    p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=[0, 1], zero_division=0)
    tn, fp, fn, tp = skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    auc = np.nan
    if score is not None and len(np.unique(y_true)) == 2:
        auc = skm.roc_auc_score(y_true, np.asarray(score, float))
    return {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision_male": p[0], "recall_male": r[0], "f1_male": f[0],
        "precision_female": p[1], "recall_female": r[1], "f1_female": f[1],
        "precision_macro": p.mean(), "recall_macro": r.mean(), "f1_macro": f.mean(),
        "roc_auc": auc, "tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp), "n": len(y_true),
    }


# --------------------------------------------------------------------------- bootstrap


def bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n)`` resampled row indices (with replacement)."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def age_bootstrap(y_true, y_pred, idx) -> dict:
    """Bootstrap distributions of the age metrics, one value per resample."""
    t = np.asarray(y_true, float)[idx]
    e = np.asarray(y_pred, float)[idx] - t
    mse = (e**2).mean(axis=1)
    var = t.var(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(var > 0, 1 - mse / var, np.nan)
    return {"mae": np.abs(e).mean(axis=1), "mse": mse, "rmse": np.sqrt(mse), "r2": r2}


def gender_bootstrap(y_true, y_pred, score, idx) -> dict:
    """Bootstrap distributions of the gender metrics, vectorised over resamples."""
    t = np.asarray(y_true, int)[idx]
    p = np.asarray(y_pred, int)[idx]
    tp = ((t == 1) & (p == 1)).sum(1)
    tn = ((t == 0) & (p == 0)).sum(1)
    fp = ((t == 0) & (p == 1)).sum(1)
    fn = ((t == 1) & (p == 0)).sum(1)
    n = t.shape[1]

    def ratio(a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b > 0, a / np.maximum(b, 1), 0.0)

    prec_f, rec_f = ratio(tp, tp + fp), ratio(tp, tp + fn)
    prec_m, rec_m = ratio(tn, tn + fn), ratio(tn, tn + fp)
    f1_f = ratio(2 * prec_f * rec_f, prec_f + rec_f)
    f1_m = ratio(2 * prec_m * rec_m, prec_m + rec_m)
    out = {
        "accuracy": (tp + tn) / n,
        "precision_male": prec_m, "recall_male": rec_m, "f1_male": f1_m,
        "precision_female": prec_f, "recall_female": rec_f, "f1_female": f1_f,
        "precision_macro": (prec_m + prec_f) / 2, "recall_macro": (rec_m + rec_f) / 2,
        "f1_macro": (f1_m + f1_f) / 2,
    }
    out["roc_auc"] = _auc_rows(t, np.asarray(score, float)[idx]) if score is not None else np.full(len(idx), np.nan)
    return out


def _auc_rows(t: np.ndarray, s: np.ndarray) -> np.ndarray:
    """ROC-AUC of each row by the Mann-Whitney rank formula (ties get mid-ranks)."""
    ranks = stats.rankdata(s, axis=1)
    n_pos = t.sum(axis=1)
    n_neg = t.shape[1] - n_pos
    rank_sum = (ranks * t).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def percentile_interval(samples: np.ndarray, level: float = 0.95):
    samples = np.asarray(samples, float)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return np.nan, np.nan
    a = (1 - level) / 2
    return float(np.quantile(samples, a)), float(np.quantile(samples, 1 - a))


# --------------------------------------------------------------------------- a unit's metrics


def group_masks(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """``"all"``, then age band, gender and race groups, as boolean masks over test rows."""
    masks = {"all": np.ones(len(frame), bool)}
    bands = age_band(frame["age"])
    for b in pd.unique(bands):
        masks[f"age_band:{b}"] = bands == b
    genders = gender_name(frame["gender"])
    for g in ("male", "female"):
        masks[f"gender:{g}"] = genders == g
    races = race_name(frame["race"])
    for r in pd.unique(races):
        masks[f"race:{r}"] = races == r
    return {k: v for k, v in masks.items() if v.any()}


def unit_metrics(pred: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """Every metric of one unit's predictions, per task and group, with 95% intervals.

    ``pred`` has the prediction columns of the run directory (``age``, ``gender``,
    ``race``, ``age_pred``, ``p_female``, ``gender_pred``).
    """
    rows = []
    tasks = []
    if "age_pred" in pred and pred["age_pred"].notna().any():
        tasks.append("age")
    if "gender_pred" in pred and pred["gender_pred"].notna().any():
        tasks.append("gender")
    for group, mask in group_masks(pred).items():
        sub = pred[mask]
        idx = bootstrap_indices(len(sub), n_boot, seed) if n_boot else None
        for task in tasks:
            if task == "age":
                point = age_metrics(sub["age"], sub["age_pred"])
                boot = age_bootstrap(sub["age"], sub["age_pred"], idx) if idx is not None else {}
            else:
                point = gender_metrics(sub["gender"], sub["gender_pred"].astype(int), sub["p_female"])
                boot = (gender_bootstrap(sub["gender"], sub["gender_pred"].astype(int), sub["p_female"], idx)
                        if idx is not None else {})
            for metric, value in point.items():
                lo, hi = percentile_interval(boot[metric]) if metric in boot else (np.nan, np.nan)
                rows.append({"task": task, "group": group, "metric": metric, "value": float(value),
                             "ci_low": lo, "ci_high": hi})
    return rows


# --------------------------------------------------------------------------- paired tests


def mcnemar(correct_a, correct_b) -> dict:
    """McNemar's test on paired right/wrong outcomes of two classifiers.

    ``statistic`` is the uncorrected chi-square (b - c)² / (b + c); ``p_value`` is
    the exact two-sided binomial test on the b + c discordant pairs, which is
    valid for any count (the chi-square approximation needs b + c >= 25).
    """
    a = np.asarray(correct_a, bool)
    b_ = np.asarray(correct_b, bool)
    b = int((a & ~b_).sum())  # a right, b wrong
    c = int((~a & b_).sum())
    n = b + c
    stat = (b - c) ** 2 / n if n else 0.0
    p = stats.binomtest(b, n, 0.5).pvalue if n else 1.0
    return {"statistic": float(stat), "p_value": float(p), "b": b, "c": c}


def paired_age_test(err_a, err_b, n_boot: int = 1000, seed: int = 0) -> dict:
    """Wilcoxon signed-rank test on absolute errors, and a paired-bootstrap interval of MAE(a) - MAE(b)."""
    da = np.abs(np.asarray(err_a, float))
    db = np.abs(np.asarray(err_b, float))
    diff = da - db
    if np.allclose(diff, 0):
        stat, p = 0.0, 1.0
    else:
        res = stats.wilcoxon(da, db, zero_method="wilcox")
        stat, p = float(res.statistic), float(res.pvalue)
    lo = hi = np.nan
    if n_boot:
        idx = bootstrap_indices(len(diff), n_boot, seed)
        lo, hi = percentile_interval(diff[idx].mean(axis=1))
    return {"statistic": stat, "p_value": p, "effect": float(diff.mean()), "effect_ci_low": lo,
            "effect_ci_high": hi}


def paired_tests(pred: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """Every pair of models of one trial x fraction, per task, on the same test images."""
    rows = []
    for task, col in (("gender", "gender_pred"), ("age", "age_pred")):
        sub = pred[pred[col].notna()]
        models = sorted(sub["model"].unique())
        wide = {m: sub[sub["model"] == m].set_index("image_id").sort_index() for m in models}
        for i, ma in enumerate(models):
            for mb in models[i + 1 :]:
                a, b = wide[ma], wide[mb]
                common = a.index.intersection(b.index)
                a, b = a.loc[common], b.loc[common]
                if task == "gender":
                    ca = a["gender_pred"].astype(int).to_numpy() == a["gender"].to_numpy()
                    cb = b["gender_pred"].astype(int).to_numpy() == b["gender"].to_numpy()
                    res = mcnemar(ca, cb)
                    effect = float(ca.mean() - cb.mean())
                    row = {"test": "mcnemar-exact", "statistic": res["statistic"], "p_value": res["p_value"],
                           "effect": effect, "effect_name": "accuracy(a) - accuracy(b)",
                           "effect_ci_low": np.nan, "effect_ci_high": np.nan,
                           "better": ma if effect > 0 else mb if effect < 0 else ""}
                    if n_boot:
                        idx = bootstrap_indices(len(ca), n_boot, seed)
                        row["effect_ci_low"], row["effect_ci_high"] = percentile_interval(
                            (ca[idx].astype(float) - cb[idx]).mean(axis=1))
                else:
                    res = paired_age_test(a["age_pred"] - a["age"], b["age_pred"] - b["age"], n_boot, seed)
                    effect = res["effect"]
                    row = {"test": "wilcoxon", "statistic": res["statistic"], "p_value": res["p_value"],
                           "effect": effect, "effect_name": "MAE(a) - MAE(b)",
                           "effect_ci_low": res["effect_ci_low"], "effect_ci_high": res["effect_ci_high"],
                           "better": ma if effect < 0 else mb if effect > 0 else ""}
                rows.append({"task": task, "model_a": ma, "model_b": mb, "n": len(common), **row})
        family = [r for r in rows if r["task"] == task]
        for r, adjusted in zip(family, holm([r["p_value"] for r in family])):
            r["p_holm"] = adjusted
    return rows


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (controls the family-wise error rate).

    With k tests, the i-th smallest p-value is multiplied by ``k - i`` (i from 0), the
    results are made non-decreasing in that order and capped at 1; an adjusted value
    below 0.05 means the difference holds at the 5 % level after accounting for every
    pair compared. Written here because SciPy offers only false-discovery-rate
    control (``scipy.stats.false_discovery_control``) and this is five lines; NaN
    p-values (no test possible) stay NaN and do not count towards k.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    k = len(order)
    out[order] = np.minimum(1.0, np.maximum.accumulate(p[order] * (k - np.arange(k))))
    return out
