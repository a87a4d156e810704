"""Is the difference real? Paired tests of every pair of models on the same test faces.

Significance is judged on Holm-adjusted p-values (``p_holm`` of ``paired.csv``, over
every pair of one task in one trial x fraction).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facebench.reports.summary import Summary, frac
from facebench.vocab import HEADLINE
from facebench.reports.tables import MISSING, Cell, Column, Table, format_metric, format_p, is_missing, text_cell

TESTS = {
    "age": ("Wilcoxon signed-rank test on absolute errors", "Wilcoxon signed-rank test on the two models' errors for the same faces"),
    "gender": ("McNemar's exact test", "McNemar's exact test on the faces where only one of the two is right"),
}


def p_phrase(p: float, name: str = "p") -> str:
    """``p = 0.012`` or ``p < 0.001`` (``name`` replaces the ``p``)."""
    text = format_p(p)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def _pairs(run, task: str) -> tuple[dict[tuple[str, str], dict[str, Any]], bool]:
    """Each tested pair of ``task`` at the report's fraction, summarised over trials."""
    p = run.paired
    if p is None or not len(p):
        return {}, False
    p = p[(p["fraction"] == run.main_fraction) & (p["task"] == task)]
    adjusted = "p_holm" in p.columns and p["p_holm"].notna().any()
    p_sig = "p_holm" if adjusted else "p_value"
    pairs = {}
    for (a, b), g in p.groupby(["model_a", "model_b"], sort=False):
        eff = g["effect"].astype(float)
        if len(g) == 1 and {"effect_ci_low", "effect_ci_high"} <= set(g.columns):
            lo, hi = g["effect_ci_low"].iloc[0], g["effect_ci_high"].iloc[0]
        elif len(g) > 1:
            lo, hi = eff.min(), eff.max()
        else:
            lo = hi = np.nan
        pairs[(a, b)] = {
            "effect": float(eff.median()),
            "low": lo,
            "high": hi,
            "p": float(g["p_value"].median()),
            "p_adj": float(g[p_sig].median()) if adjusted else None,
            "significant": int((g[p_sig] < 0.05).sum()),
            "trials": len(g),
        }
    return pairs, adjusted


def _lookup(pairs: dict, a: str, b: str) -> tuple[int, dict[str, Any] | None]:
    """``(sign, info)`` with the effect of ``a`` minus ``b`` equal to ``sign * info["effect"]``."""
    if (a, b) in pairs:
        return 1, pairs[(a, b)]
    return -1, pairs.get((b, a))


def pair_p(run, task: str, a: str, b: str) -> tuple[float | None, bool]:
    """The p-value that judges ``a`` against ``b`` (median over trials; Holm-adjusted where recorded)."""
    pairs, adjusted = _pairs(run, task)
    _, info = _lookup(pairs, a, b)
    if info is None:
        return None, adjusted
    return (info["p_adj"] if adjusted else info["p"]), adjusted


def _note(task: str, n_pairs: int, trials: int, adjusted: bool) -> str:
    what = (
        "MAE of A minus MAE of B, in years (negative: A makes smaller errors)"
        if task == "age"
        else "accuracy of A minus accuracy of B, in percentage points (positive: A is right more often)"
    )
    p_text = f"median over {trials} trials, and the median p-value" if trials > 1 else "and its p-value"
    note = f"Each cell: {what}, {p_text} ({TESTS[task][0]})."
    if adjusted:
        note += (
            f" Under it, Holm's adjusted p-value, which accounts for all {n_pairs} pairs compared."
            " Highlighted: A is better and the adjusted p < 0.05"
        )
    else:
        note += " Highlighted: A is better and p < 0.05"
    return note + (" in most trials." if trials > 1 else ".")


def chance_caution(n_pairs: int, adjusted: bool) -> str:
    """What many comparisons mean for a reader, in words (empty under 3 pairs)."""
    if n_pairs < 3:
        return ""
    expected = n_pairs * 0.05
    if expected < 1:
        many = "fewer than one of them"
    elif round(expected) == 1:
        many = "about one of them"
    else:
        many = f"about {round(expected)} of them"
    text = (
        f"{n_pairs} pairs were tested. Even if no two models differed at all, one test in twenty would reach "
        f"p < 0.05 by luck, so {many} could look “real” by chance alone. "
    )
    if adjusted:
        return text + (
            "Holm's adjustment corrects for that, so the highlighted cells and the verdicts below use the adjusted "
            "p-values; a raw p < 0.05 that does not survive it is weak evidence."
        )
    return text + "Trust large differences that hold in every trial more than a single small p-value."


def _verdict(task: str, info: dict[str, Any]) -> str:
    trials, sig = info["trials"], info["significant"]
    test = TESTS[task][1]
    adjusted = info.get("p_adj") is not None
    p_text = p_phrase(info["p"])
    if adjusted:
        p_text += f" ({p_phrase(info['p_adj'])} after Holm's correction for all the pairs compared)"
    if trials > 1:
        level = "an adjusted p < 0.05" if adjusted else "p < 0.05"
        outcome = (
            "the difference is real, not luck of the test set."
            if sig == trials
            else "the evidence is mixed."
            if sig
            else "the test set cannot tell them apart."
        )
        return f"The {test} gives {level} in {sig} of {trials} trials (median {p_text}): {outcome}"
    if sig:
        return f"The {test} gives {p_text}: a difference this large would seldom appear by chance if the two models were equally good, so it is probably real."
    if adjusted and info["p"] < 0.05:
        return f"The {test} gives {p_text}: small on its own but not once every comparison is counted, so this is weak evidence of a difference."
    return f"The {test} gives {p_text}: a difference like this could easily be chance, so these test faces cannot tell the two apart."


def _sentence(task: str, a: str, b: str, effect: float, info: dict[str, Any], va: float, vb: float) -> str:
    if task == "age":
        head = (
            f"{a} misses the true age by {abs(effect):.2f} years less than {b} on average (MAE {format_metric('mae', va)} against {format_metric('mae', vb)})."
            if effect < 0
            else f"{a} and {b} have about the same age error (difference {effect:+.2f} years)."
        )
    else:
        head = (
            f"{a} gets the gender right {abs(effect) * 100:.1f} percentage points more often than {b} (accuracy {format_metric('accuracy', va)} against {format_metric('accuracy', vb)})."
            if effect > 0
            else f"{a} and {b} are about equally accurate (difference {effect * 100:+.1f} percentage points)."
        )
    return f"{head} {_verdict(task, info)}"


def _matrix(task: str, models: list[str], pairs: dict, adjusted: bool) -> Table:
    def fmt_effect(e: float) -> str:
        return MISSING if is_missing(e) else (f"{e:+.2f}" if task == "age" else f"{e * 100:+.1f} pt")

    cols = [Column("model", "Model A \u2193 vs B \u2192")] + [Column(m, m, True, detail_key="p_value") for m in models]
    rows = []
    for a in models:
        row = [text_cell(a)]
        for b in models:
            if a == b:
                row.append(Cell(muted=True))
                continue
            sign, info = _lookup(pairs, a, b)
            if info is None:
                row.append(Cell())
                continue
            e = sign * info["effect"] + 0.0
            e = 0.0 if abs(e) < 1e-12 else e
            better = (e < 0) if task == "age" else (e > 0)
            detail = p_phrase(info["p"]) + (f"; Holm {format_p(info['p_adj'])}" if info["p_adj"] is not None else "")
            cell = Cell(value=e, text=fmt_effect(e), detail=detail, detail_value=info["p"])
            cell.best = better and info["significant"] * 2 > info["trials"]
            cell.muted = info["significant"] * 2 <= info["trials"]
            row.append(cell)
        rows.append(row)
    trials = max(i["trials"] for i in pairs.values())
    return Table(
        f"paired_{task}",
        f"{task.capitalize()}: paired tests, every pair of models on the same test faces",
        cols,
        rows,
        note=_note(task, len(pairs), trials, adjusted),
    )


def paired_section(run, S: Summary) -> dict[str, Any]:
    """A matrix of paired tests per task and, in words, the best model against each other one."""
    out: dict[str, Any] = {"tasks": []}
    if run.paired is None or not len(run.paired):
        out["message"] = "paired.csv is missing or empty: this run has no paired tests."
        return out
    f = run.main_fraction
    for task in ("age", "gender"):
        pairs, adjusted = _pairs(run, task)
        if not pairs:
            continue
        tested = {m for pair in pairs for m in pair}
        models = [m for m in run.models_for(task) if m in tested]
        metric = HEADLINE[task]
        score = {m: S.value(f, m, task, "all", metric) for m in models}
        score = {m: v for m, v in score.items() if not is_missing(v)}
        sentences = []
        if score:
            best = (min if task == "age" else max)(score, key=score.get)
            for other in models:
                sign, info = _lookup(pairs, best, other)
                if other == best or info is None:
                    continue
                sentences.append(_sentence(task, best, other, sign * info["effect"], info, score[best], S.value(f, other, task, "all", metric)))
        out["tasks"].append(
            {
                "task": task,
                "table": _matrix(task, models, pairs, adjusted),
                "sentences": sentences,
                "caution": chance_caution(len(pairs), adjusted),
            }
        )
    if not out["tasks"]:
        out["message"] = f"paired.csv has no tests at training fraction {frac(f)}."
    return out
