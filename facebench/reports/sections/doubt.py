"""Labels to doubt: the faces whose gender or age label the run's detector suspects.

Shown only when the run directory has ``label_issues.csv``
(:mod:`facebench.rundir.label_files`); the metrics with and without the suspected test faces
come from ``label_metrics.csv``, computed by the run, so the report trains nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from facebench.data.labels import AGE_BANDS, GENDERS, RACES, age_band, gender_name, race_name
from facebench.reports.summary import frac, label
from facebench.reports.tables import Cell, Column, Table, format_metric, metric_cell, text_cell
from facebench.reports.thumbnails import thumbnail_uri
from facebench.rundir.label_files import read_label_issues, read_label_metrics, read_label_paired
from facebench.rundir.read import read_split

#: Faces shown per task, most confident first.
GALLERY_K = 8
TASKS = ("gender", "age")
PARTS = {"train": "training part", "test": "test part"}
#: The section's entry in the report's table of contents, and the section it follows.
ENTRY = ("labels", "Labels to doubt")
AFTER = "worst"


def _sex(code: Any) -> str:
    return GENDERS.get(int(code), str(code))


def _groups(split: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """("all faces", mask), then by given age band, gender and ethnicity."""
    out = [("all faces", np.ones(len(split), bool))]
    bands = np.asarray(age_band(split["age"]), dtype=object)
    out += [(f"age {b}", bands == b) for b in AGE_BANDS]
    genders = gender_name(split["gender"])
    out += [(g, genders == g) for g in GENDERS.values()]
    races = race_name(split["race"])
    out += [(r, races == r) for r in [*RACES.values(), *sorted(set(races) - set(RACES.values()))]]
    return [(name, mask) for name, mask in out if mask.any()]


def _counts_table(issues: pd.DataFrame, split: pd.DataFrame | None, trial: int) -> Table:
    cols = [Column("group", "Group"), Column("faces", "Faces", True)]
    cols += [Column(f"{task}_{part}", f"{task.capitalize()} ({PARTS[part].split()[0]})", True) for task in TASKS for part in PARTS]
    rows = []
    if split is not None and len(split):
        part_of = split["part"].to_numpy()
        for name, mask in _groups(split):
            ids = split["image_id"].to_numpy()
            row = [text_cell(name), Cell(value=int(mask.sum()), text=f"{int(mask.sum()):,}")]
            for task in TASKS:
                for part in PARTS:
                    in_part = mask & (part_of == part)
                    doubted = set(issues.loc[(issues["task"] == task) & (issues["part"] == part), "image_id"])
                    n = int(np.isin(ids[in_part], list(doubted)).sum())
                    share = n / in_part.sum() if in_part.any() else np.nan
                    row.append(Cell(value=n, text=f"{n:,}", detail="" if np.isnan(share) else f"{100 * share:.1f} %",
                                    detail_value=share))
            rows.append(row)
        note = (f"Trial {trial}. Faces: the trial's faces in the group (by their given labels); each count is the "
                "number suspected, with its share of the group's faces in that part underneath.")
    else:
        row = [text_cell("all faces"), Cell(value=None, text="—")]
        for task in TASKS:
            for part in PARTS:
                n = int(((issues["task"] == task) & (issues["part"] == part)).sum())
                row.append(Cell(value=n, text=f"{n:,}"))
        rows.append(row)
        note = f"Trial {trial}. split.csv is missing, so there are no subgroups and no shares."
    for c in cols[2:]:
        c.detail_key = "share"
    return Table("label_counts", "Suspected labels per task and group", cols, rows, note=note)


def _gallery(issues: pd.DataFrame, cache: dict[str, str | None]) -> list[dict[str, Any]]:
    out = []
    for task in TASKS:
        top = issues[issues["task"] == task].sort_values("confidence", ascending=False, kind="stable").head(GALLERY_K)
        faces = []
        for r in top.to_dict("records"):
            if task == "gender":
                line1 = f"given {_sex(r['given'])}, suggested {_sex(r['suggested'])}"
                line2 = f"P({_sex(r['suggested'])}) = {float(r['confidence']):.2f}, {PARTS.get(r['part'], r['part'])}"
            else:
                line1 = f"given {int(r['given'])}, suggested {int(r['suggested'])}"
                line2 = f"robust z = {float(r['confidence']):.1f}, {PARTS.get(r['part'], r['part'])}"
            if r.get("agree"):
                line2 += f"; agreeing: {str(r['agree']).replace(';', ', ')}"
            faces.append({"thumb": thumbnail_uri(r["path"], cache), "name": r["image_id"], "line1": line1,
                          "line2": line2})
        if faces:
            out.append({"task": task, "faces": faces})
    return out


def _paired_table(before: pd.DataFrame | None, after: pd.DataFrame, trial: int, fraction: float,
                  detector_model: str | None) -> Table:
    """Each pair's effect and Holm-adjusted p-value on all test faces and on the unsuspected ones."""
    def pick(frame):
        if frame is None:
            return {}
        f = frame[(frame["trial"] == trial) & np.isclose(frame["fraction"].astype(float), fraction)]
        return {(r.task, r.model_a, r.model_b): r for r in f.itertuples()}

    a, b = pick(before), pick(after)
    cols = [Column("task", "Task"), Column("pair", "Pair"), Column("all", "All test faces", True),
            Column("clean", "Without the suspected", True), Column("verdict", "Verdict")]
    rows = []
    for key in sorted(b):
        task, ma, mb = key
        names = [f"{m} (the detector's model)" if m == detector_model else m for m in (ma, mb)]
        cells = [text_cell(task), text_cell(" vs ".join(names))]
        verdicts = []
        for r in (a.get(key), b[key]):
            if r is None:
                cells.append(Cell(value=None, text="—"))
                verdicts.append(None)
                continue
            effect = format_metric("mae" if task == "age" else "accuracy", r.effect)
            cells.append(Cell(value=float(r.effect), text=f"{effect} (p = {float(r.p_holm):.3g})",
                              detail=str(r.effect_name)))
            verdicts.append(r.better if float(r.p_holm) < 0.05 else "")
        if verdicts[0] is None:
            verdict = "—"
        elif verdicts[0] == verdicts[1]:
            verdict = "unchanged"
        else:
            verdict = f"changes: {verdicts[0] or 'no clear winner'} -> {verdicts[1] or 'no clear winner'}"
        cells.append(text_cell(verdict))
        rows.append(cells)
    return Table("label_paired", "Paired tests with and without the suspected test faces", cols, rows,
                 note=f"Trial {trial} at training fraction {frac(fraction)}. Effect: accuracy(a) - accuracy(b) or "
                      "MAE(a) - MAE(b), with its Holm-adjusted p-value; a verdict names the better model where "
                      "p < 0.05.")


def _metrics_table(metrics: pd.DataFrame, models: list[str], trial: int, fraction: float,
                   detector_model: str | None = None) -> Table:
    m = metrics[(metrics["trial"] == trial) & np.isclose(metrics["fraction"].astype(float), fraction)]
    cols = [Column("model", "Model"), Column("task", "Task"), Column("metric", "Metric"),
            Column("all", "All test faces", True), Column("unsuspected", "Without the suspected", True),
            Column("left_out", "Faces left out", True), Column("change", "Change", True)]
    rows = []
    order = {name: i for i, name in enumerate(models)}
    keys = m[["model", "task", "metric"]].drop_duplicates()
    keys = keys.assign(o=keys["model"].map(order).fillna(len(order))).sort_values(["task", "o", "metric"], kind="stable")
    for model, task, metric in keys[["model", "task", "metric"]].itertuples(index=False):
        sub = m[(m["model"] == model) & (m["task"] == task) & (m["metric"] == metric)].set_index("subset")
        if "all" not in sub.index:
            continue
        a = sub.loc["all"]
        u = sub.loc["unsuspected"] if "unsuspected" in sub.index else None
        shown = f"{model} (the detector's model)" if model == detector_model else model
        row = [text_cell(shown), text_cell(task), text_cell(label(metric)),
               metric_cell(metric, a["value"], a["ci_low"], a["ci_high"])]
        if u is None:
            row += [Cell(), Cell(value=None, text="—"), Cell()]
        else:
            change = float(u["value"]) - float(a["value"])
            row += [metric_cell(metric, u["value"], u["ci_low"], u["ci_high"]),
                    Cell(value=int(a["n"] - u["n"]), text=f"{int(a['n'] - u['n']):,}"),
                    Cell(value=change, text=("+" if change > 0 else "") + format_metric(metric, change))]
        rows.append(row)
    return Table("label_metrics", "Test metrics with and without the suspected test faces", cols, rows,
                 note=f"Trial {trial} at training fraction {frac(fraction)}; 95 % bootstrap intervals in brackets. "
                      "A face is left out only for the task its label is doubted for.")


#: Confidence bands of a gender suspicion (the detector's probability of the other gender).
GENDER_BANDS = ((0.98, 1.01, "98 % or more"), (0.9, 0.98, "90-98 %"), (0.0, 0.9, "under 90 %"))


def _band_sentences(issues: pd.DataFrame) -> list[str]:
    """How many gender suspects there are at each confidence, per part (not only beyond the cut)."""
    gender = issues[issues["task"] == "gender"]
    if not len(gender):
        return []
    out = []
    for part in PARTS:
        conf = gender.loc[gender["part"] == part, "confidence"].to_numpy(dtype=float)
        if len(conf):
            counts = ", ".join(f"{int(((conf >= lo) & (conf < hi)).sum()):,} at {name}" for lo, hi, name in GENDER_BANDS)
            out.append(f"Gender suspects in the {PARTS[part]} by the detector's probability of the other gender: "
                       f"{counts}.")
    return out


def labels_section(run) -> dict[str, Any] | None:
    """The section's content, or None when the run directory has no ``label_issues.csv``."""
    issues = read_label_issues(run.dir)
    if issues is None:
        return None
    trial = int(issues["trial"].min()) if len(issues) else (run.trials[0] if run.trials else 0)
    shown = issues[issues["trial"] == trial]
    split = read_split(run.dir)
    if split is not None:
        split = split[split["trial"] == trial].reset_index(drop=True)
    detectors = {task: sorted(set(issues.loc[issues["task"] == task, "detector"])) for task in TASKS}
    parts = {(task, part): int(((shown["task"] == task) & (shown["part"] == part)).sum()) for task in TASKS for part in PARTS}
    cache: dict[str, str | None] = {}
    out: dict[str, Any] = {
        "detectors": [f"{task}: {', '.join(names)}" for task, names in detectors.items() if names],
        "summary": [f"{task.capitalize()}: {parts[(task, 'train')]:,} suspected in the training part, "
                    f"{parts[(task, 'test')]:,} in the test part." for task in TASKS] + _band_sentences(shown),
        "counts": _counts_table(shown, split, trial),
        "gallery": _gallery(shown, cache),
        "trial": trial,
    }
    out["missing"] = sum(1 for v in cache.values() if v is None)
    detector_model = (run.environment.get("label_errors") or {}).get("model")
    metrics = read_label_metrics(run.dir)
    if metrics is not None and len(metrics):
        out["metrics"] = _metrics_table(metrics, run.models, trial, run.main_fraction, detector_model)
        paired = read_label_paired(run.dir)
        if paired is not None and len(paired):
            out["paired"] = _paired_table(run.paired, paired, trial, run.main_fraction, detector_model)
    else:
        out["metrics_message"] = "label_metrics.csv is missing, so there are no metrics without the suspected faces."
    return out


def with_labels_entry(sections: list[tuple[str, str]], section: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The report's ``(id, title)`` list with this section after ``worst`` when the run has it.

    It is not in :data:`facebench.reports.sections.SECTIONS`, whose sections every run
    shows (but ``seen``), because only runs that looked for label errors have it.
    """
    if section is None:
        return list(sections)
    ids = [sid for sid, _ in sections]
    at = ids.index(AFTER) + 1 if AFTER in ids else len(sections)
    return [*sections[:at], ENTRY, *sections[at:]]


def labels_tables(section: dict[str, Any] | None) -> list[Table]:
    """The section's tables, for ``tables/``."""
    if section is None:
        return []
    return [section["counts"]] + [section[k] for k in ("metrics", "paired") if k in section]


__all__ = ["ENTRY", "labels_section", "labels_tables", "with_labels_entry"]
