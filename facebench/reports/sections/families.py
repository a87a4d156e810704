"""The three families of features in one verdict per task: hand-crafted, learned here, learned elsewhere.

When a run holds models on a pretrained network's features (family "learned elsewhere")
beside hand-crafted ones or a CNN learned here, the answer says, per task, the best
model of each family, which family wins and by how much over the next family's best,
with the paired test of those two models on the same test faces.
"""

from __future__ import annotations

from facebench.reports.sections.paired import p_phrase, pair_p
from facebench.reports.summary import best_of, phrase

__all__ = ["FAMILY_NAMES", "families_verdict"]

#: The models table's family -> how the answer names it.
FAMILY_NAMES = {"hand-crafted": "hand-crafted", "learned": "learned here (CNN)",
                "learned elsewhere": "learned elsewhere (pretrained)"}

#: The same families as the subject of "... win".
WINNERS = {"hand-crafted": "hand-crafted features", "learned": "features learned here (the CNN)",
           "learned elsewhere": "features learned elsewhere (pretrained)"}


def families_verdict(run, task: str, score: dict, metric: str) -> dict | None:
    """``{"text", "caveats"}`` naming each family's best and the winner's margin; None without a pretrained model."""
    best = {}
    for family in FAMILY_NAMES:
        members = {m: v for m, v in score.items() if run.family(m) == family}
        if members:
            best[family] = best_of(members, metric)
    if "learned elsewhere" not in best or len(best) < 2:
        return None
    ranked = sorted(best, key=lambda fam: score[best[fam]], reverse=metric != "mae")
    first, second = ranked[0], ranked[1]
    a, b = best[first], best[second]
    diff = abs(score[a] - score[b])
    how = f"{diff:.2f} years lower MAE" if task == "age" else f"{diff * 100:.1f} percentage points higher accuracy"
    parts = ", ".join(f"{FAMILY_NAMES[fam]} {best[fam]} ({phrase(metric, score[best[fam]])})" for fam in ranked)
    text = (f"{task.capitalize()}, by family: {parts}. The {WINNERS[first]} win, "
            f"{how} than the best {FAMILY_NAMES[second]} model")
    p, adjusted = pair_p(run, task, a, b)
    caveats = []
    if p is not None:
        which = "Holm-adjusted p" if adjusted else "p"
        text += f" (paired test of {a} against {b} on the same test faces: {p_phrase(p, which)})"
        if p >= 0.05:
            caveats.append({"text": f"The margin of {a} over {b} is not statistically supported "
                                    f"({p_phrase(p, which)}, not below 0.05).", "command": ""})
    return {"text": text + ".", "caveats": caveats}
