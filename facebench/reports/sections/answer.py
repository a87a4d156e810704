"""The answer: every model side by side, and the verdicts with what could overturn them.

Next to each learned-vs-hand-crafted verdict the section says, when it applies, that
the paired test does not support the difference (Holm-adjusted p not below 0.05),
that a CNN stopped while its validation loss was still falling or was cut short
before its epoch budget (and the command that settles it), and, for a run of the
``quick`` preset, that the run is a smoke test whose verdicts are not the answer.
"""

from __future__ import annotations

import shlex
from typing import Any

from facebench.reports.sections.families import families_verdict
from facebench.reports.sections.paired import p_phrase, pair_p
from facebench.reports.sections.training import cnn_config_name, training_states
from facebench.reports.summary import Summary, best_of, frac, label, phrase
from facebench.vocab import HEADLINE, direction
from facebench.reports.tables import Cell, Column, Table, is_missing, text_cell

ANSWER_COLUMNS = [("age", "mae"), ("age", "rmse"), ("age", "r2"), ("gender", "accuracy"), ("gender", "f1_macro"), ("gender", "roc_auc")]
#: The preset a smoke-test run is made with, and the one that answers the question.
SMOKE_PRESET = "quick"
ANSWER_PRESET = "standard"
MIN_EPOCHS_HINT = 30


def answer_table(run, S: Summary, name: str = "answer") -> Table:
    """Every model at the report's fraction, the headline metrics of both tasks, best marked."""
    f = run.main_fraction
    cols = [Column("model", "Model")]
    for task, metric in ANSWER_COLUMNS:
        cols.append(Column(f"{task}_{metric}", label(metric), numeric=True, group=task.capitalize()))
    done = {task: set(run.models_for(task)) for task in ("age", "gender")}
    rows = []
    for model in run.models:
        row = [text_cell(model)]
        for task, metric in ANSWER_COLUMNS:
            row.append(S.cell(f, model, task, "all", metric) if model in done[task] else Cell())
        rows.append(row)
    table = Table(
        name,
        f"Every model side by side (training fraction {frac(f)}; ★ best in its column)",
        cols,
        rows,
        note=S.interval_note,
    )
    for task, metric in ANSWER_COLUMNS:
        table.mark_best(f"{task}_{metric}", direction(metric))
    return table


def data_arg(run) -> str:
    """``--data PATH`` for a command line: the run's data path, or a placeholder."""
    path = (run.config.get("data") or {}).get("path") or run.audit.get("root")
    return f"--data {shlex.quote(str(path))}" if path else "--data PATH"


def _training_caveat(run, model: str, states) -> dict[str, str] | None:
    unfinished = [s for s in states if s.unfinished]
    if not unfinished:
        return None
    s = unfinished[0]
    trials = "" if len(states) == 1 else f" in {len(unfinished)} of {len(states)} trials"
    if s.still_falling:
        what = (
            f"{model} stopped while its validation loss was still falling "
            f"(lowest at its last epoch, {s.epochs_run} of {s.epochs_run}){trials}"
        )
    else:
        what = f"{model} ran {s.epochs_run} of its {s.budget} epochs: its training was cut short{trials}"
    epochs = max(MIN_EPOCHS_HINT, 2 * max(s.epochs_run, s.budget or 0))
    command = (
        f"facebench run {data_arg(run)} --preset {ANSWER_PRESET} "
        f"--set cnn.{cnn_config_name(run, model)}.epochs={epochs}"
    )
    return {
        "text": f"{what}, so it may not have learned all it can and this verdict may change. To settle it, run:",
        "command": command,
    }


def _significance_caveat(run, task: str, a: str, b: str) -> dict[str, str] | None:
    p, adjusted = pair_p(run, task, a, b)
    if p is None or p < 0.05:
        return None
    which = "Holm-adjusted p" if adjusted else "p"
    return {
        "text": f"The difference is not statistically supported: the paired test of {a} against {b} on the same "
        f"test faces gives {p_phrase(p, which)}, not below 0.05.",
        "command": "",
    }


def smoke_test_line(run) -> dict[str, str] | None:
    """The warning for a run of the quick preset (None for any other run)."""
    if run.preset != SMOKE_PRESET:
        return None
    return {
        "text": f"This run used the {SMOKE_PRESET} preset: a smoke test that checks the software end to end on few "
        "models, one trial and a short CNN training; its verdicts are not the answer. For the answer, run:",
        "command": f"facebench run {data_arg(run)} --preset {ANSWER_PRESET}",
    }


def answer_section(run, S: Summary) -> dict[str, Any]:
    """The table of every model, and a verdict per task with its caveats."""
    f = run.main_fraction
    states = training_states(run)
    verdicts = []
    for task in ("age", "gender"):
        metric = HEADLINE[task]
        score = {m: S.value(f, m, task, "all", metric) for m in run.models_for(task)}
        score = {m: v for m, v in score.items() if not is_missing(v)}
        if not score:
            continue
        best = best_of(score, metric)
        text = f"Best for {task}: {best}, {phrase(metric, score[best])}"
        trivial = [m for m in score if run.family(m) == "trivial"]
        if trivial and best not in trivial:
            text += f" (the trivial baseline {trivial[0]}: {phrase(metric, score[trivial[0]])})"
        verdicts.append({"text": text + ".", "caveats": []})
        three = families_verdict(run, task, score, metric)
        if three:
            verdicts.append(three)
        learned = {m: v for m, v in score.items() if run.family(m) == "learned"}
        hand = {m: v for m, v in score.items() if run.family(m) == "hand-crafted"}
        if not (learned and hand):
            continue
        c, h = best_of(learned, metric), best_of(hand, metric)
        diff = learned[c] - hand[h]
        if task == "age":
            how, wins = f"{abs(diff):.2f} years {'lower' if diff < 0 else 'higher'} MAE", diff < 0
        else:
            how, wins = f"{abs(diff) * 100:.1f} percentage points {'higher' if diff > 0 else 'lower'} accuracy", diff > 0
        caveats = [
            _significance_caveat(run, task, c, h),
            _training_caveat(run, c, states.get(c, [])),
        ]
        verdicts.append(
            {
                "text": f"{task.capitalize()}: the learned features ({c}) {'beat' if wins else 'do not beat'} "
                f"the best hand-crafted ones ({h}): {how}.",
                "caveats": [x for x in caveats if x],
            }
        )
    return {"table": answer_table(run, S), "verdict": verdicts, "smoke": smoke_test_line(run)}
