"""Worst errors: the largest age errors and the most confident wrong gender calls, with faces."""

from __future__ import annotations

from typing import Any

from facebench.reports.sections import predictions_at
from facebench.reports.summary import frac
from facebench.reports.thumbnails import thumbnail_uri

WORST_K = 6


def _sex(code: Any) -> str:
    return "female" if int(code) else "male"


def _face(r, cache: dict[str, str | None], line1: str, line2: str) -> dict[str, Any]:
    return {"thumb": thumbnail_uri(r["path"], cache), "name": r["image_id"], "line1": line1, "line2": line2}


def _model_entry(p, model: str, cache: dict[str, str | None]) -> dict[str, Any]:
    entry: dict[str, Any] = {"model": model, "age": [], "gender": []}
    pa = p.dropna(subset=["age_pred"])
    if len(pa):
        err = (pa["age_pred"] - pa["age"]).abs()
        for i in err.sort_values(ascending=False, kind="stable").index[:WORST_K]:
            r = pa.loc[i]
            entry["age"].append(
                _face(r, cache, f"true {int(r['age'])}, predicted {r['age_pred']:.1f}", f"off by {err[i]:.1f} years")
            )
    pg = p.dropna(subset=["p_female", "gender_pred"])
    wrong = pg[pg["gender_pred"].astype(int) != pg["gender"].astype(int)]
    if len(wrong):
        conf = (wrong["p_female"].astype(float) - 0.5).abs() + 0.5
        for i in conf.sort_values(ascending=False, kind="stable").index[:WORST_K]:
            r = wrong.loc[i]
            entry["gender"].append(
                _face(r, cache, f"true {_sex(r['gender'])}, called {_sex(r['gender_pred'])}", f"P(female) = {float(r['p_female']):.2f}")
            )
    return entry


def worst_section(run) -> dict[str, Any]:
    preds = predictions_at(run, run.main_fraction)
    if preds is None:
        return {"message": "predictions.csv.gz is missing, so there is no gallery of errors.", "models": []}
    cache: dict[str, str | None] = {}
    entries = []
    for model in run.models:
        p = preds[preds["model"] == model]
        if len(p):
            entry = _model_entry(p, model, cache)
            if entry["age"] or entry["gender"]:
                entries.append(entry)
    return {
        "models": entries,
        "note": f"Trial {int(preds['trial'].iloc[0])} at training fraction {frac(run.main_fraction)}: the {WORST_K} largest age errors "
        f"and the {WORST_K} most confident wrong gender calls per model.",
        "missing": sum(1 for v in cache.values() if v is None),
    }
