"""The explore page: what is in a dataset before anything is trained.

:func:`write_explore` takes a dataset from :func:`facebench.data.load_dataset` (its
``.table`` and ``.audit``) and writes ``explore.html`` (counts found / used / skipped
with reasons, duplicates, the age histogram, gender and race counts, a grid of sample
faces with their labels) and ``audit.json``, with the same look as the report.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facebench.data.labels import AGE_BANDS, GENDERS, RACES, age_band, race_name
from facebench.reports import plots
from facebench.io import atomic_write_text
from facebench.reports.render import dataset_name, render, timestamp
from facebench.reports.sections.audit import MAX_AUDIT_ROWS, audit_section
from facebench.reports.tables import Cell, Column, Table, text_cell
from facebench.reports.thumbnails import thumbnail_uri
from facebench.rundir import layout

N_SAMPLES = 48


def _counts_table(name: str, title: str, counts: pd.Series, total: int) -> Table:
    rows = [
        [text_cell(str(k)), Cell(value=int(v), text=f"{int(v):,}"), Cell(value=v / total, text=f"{v / total:.1%}")]
        for k, v in counts.items()
    ]
    return Table(name, title, [Column("value", title.split(" ")[0]), Column("n", "Images", True), Column("share", "Share", True)], rows, export=False)


def sample_faces(table: pd.DataFrame, n: int = N_SAMPLES, seed: int = 0) -> pd.DataFrame:
    """Up to ``n`` rows spread over age bands and genders (seeded, so the page is stable)."""
    if len(table) <= n:
        return table.sort_values("age", kind="stable")
    rng = np.random.default_rng(seed)
    band = pd.Series(pd.Categorical(age_band(table["age"]), categories=AGE_BANDS).codes, index=table.index)
    strata = list(table.groupby([band, table["gender"]], sort=True).groups.values())
    per = max(1, n // max(1, len(strata)))
    picked: list[Any] = []
    for idx in strata:
        idx = list(idx)
        picked += list(rng.choice(idx, size=min(per, len(idx)), replace=False))
    rest = table.index.difference(picked)
    if len(picked) < n and len(rest):
        picked += list(rng.choice(rest, size=min(n - len(picked), len(rest)), replace=False))
    return table.loc[picked[:n]].sort_values("age", kind="stable")


#: Groups of identical images with disagreeing labels shown as thumbnails (all are in audit.json).
MAX_CONFLICTS = 24


def conflicting_duplicates(audit: dict, limit: int = MAX_CONFLICTS) -> list[list[dict]]:
    """The groups of pixel-identical images whose labels disagree, each as face items side by side.

    Each item: ``thumb`` (data URI or None), ``name``, ``line1`` (the labels the file
    name gives). Only the first ``limit`` groups; the rest are counted on the page.
    """
    from facebench.data.labels import parse_utkface_name

    root = Path(str(audit.get("root") or ""))
    cache: dict[str, str | None] = {}
    groups = []
    for group in audit.get("duplicates") or ():
        if "disagree" not in str(group.get("action", "")):
            continue
        items = []
        for name in group.get("files") or ():
            path = root / name if audit.get("root") else Path(name)
            try:
                labels = parse_utkface_name(Path(name).name)
                race = "race unknown" if labels.race is None else RACES.get(int(labels.race), "?")
                line = f"age {labels.age}, {GENDERS.get(int(labels.gender), '?')}, {race}"
            except ValueError:
                line = ""
            items.append({"thumb": thumbnail_uri(str(path), cache), "name": str(name), "line1": line, "line2": ""})
        groups.append(items)
    return groups[:limit] if limit else groups


#: Near-duplicate groups shown as thumbnails (those whose labels disagree first; all are in audit.json).
MAX_NEAR_GROUPS = 24


def near_duplicate_faces(audit: dict, limit: int = MAX_NEAR_GROUPS) -> list[dict]:
    """The near-duplicate groups as faces side by side with their labels, disagreeing groups first.

    Each group: ``{"faces": [item, ...], "note": "2 bits apart; age spread 9 years"}``, an
    item as :func:`conflicting_duplicates` makes them.
    """
    near = audit.get("near_duplicates") or {}
    root = Path(str(audit.get("root") or ""))
    groups = sorted(near.get("listed") or (), key=lambda g: (not (g.get("age_spread") or g.get("gender_conflict")),
                                                                -(g.get("age_spread") or 0)))
    cache: dict[str, str | None] = {}
    out = []
    for g in groups[:limit] if limit else groups:
        faces = []
        for name, age, gender in zip(g.get("files", []), g.get("ages", []), g.get("genders", [])):
            path = root / name if audit.get("root") else Path(name)
            faces.append({"thumb": thumbnail_uri(str(path), cache), "name": str(name),
                          "line1": f"age {age}, {GENDERS.get(int(gender), '?')}", "line2": ""})
        parts = [f"{g.get('max_bits', '?')} bits apart"]
        if g.get("age_spread"):
            parts.append(f"ages {g['age_spread']} years apart")
        if g.get("gender_conflict"):
            parts.append("genders disagree")
        out.append({"faces": faces, "note": "; ".join(parts) + f"; {g.get('action', '')}"})
    return out


def write_explore(dataset: Any, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``out_dir/explore.html`` and ``out_dir/audit.json`` for a dataset.

    Parameters
    ----------
    dataset : Dataset
        Anything with ``.table`` (DataFrame with ``image_id, path, age, gender, race``)
        and ``.audit`` (dict, as ``audit.json``), as :func:`facebench.data.load_dataset`
        returns.
    out_dir : path
        Created when missing.

    Returns
    -------
    Path of ``explore.html``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table: pd.DataFrame = dataset.table
    audit: dict[str, Any] = dict(dataset.audit)
    atomic_write_text(out_dir / layout.AUDIT_FILE, json.dumps(audit, indent=1, ensure_ascii=False, default=str) + "\n")

    n = len(table)
    ctx: dict[str, Any] = {"n": n, "synthetic": bool(audit.get("synthetic")), "audit": audit_section(audit)}
    ctx["dataset"] = dataset_name(audit, {})
    if n:
        ages = table["age"].to_numpy(dtype=float)
        by_gender = {GENDERS[g]: table.loc[table["gender"] == g, "age"].to_numpy(dtype=float) for g in (0, 1) if (table["gender"] == g).any()}
        ctx["age_hist"] = plots.age_histogram(ages, by_gender)
        ctx["age_facts"] = [
            ("youngest", f"{ages.min():.0f}"),
            ("median", f"{np.median(ages):.0f}"),
            ("oldest", f"{ages.max():.0f}"),
        ]
        gender = table["gender"].map(GENDERS).fillna("unknown").value_counts()
        race = pd.Series(race_name(table["race"])).value_counts()
        race = race.reindex([r for r in [*RACES.values(), "unknown"] if r in race.index])
        ctx["gender_table"] = _counts_table("gender_counts", "Gender counts", gender, n)
        ctx["race_table"] = _counts_table("race_counts", "Ethnicity counts", race, n)
        ctx["race_plot"] = plots.bar_counts(race.to_dict(), "ethnicity")
        cache: dict[str, str | None] = {}
        ctx["samples"] = [
            {
                "thumb": thumbnail_uri(r.path, cache),
                "name": r.image_id,
                "line1": f"age {int(r.age)}, {GENDERS.get(int(r.gender), '?')}",
                "line2": "race unknown" if pd.isna(r.race) else RACES[int(r.race)],
            }
            for r in sample_faces(table).itertuples()
        ]
    ctx["conflicts"] = conflicting_duplicates(audit)
    ctx["conflict_total"] = sum("disagree" in str(g.get("action", "")) for g in audit.get("duplicates") or ())
    ctx["near_groups"] = near_duplicate_faces(audit)
    ctx["max_rows"] = MAX_AUDIT_ROWS
    ctx["generated"] = timestamp()
    from facebench import __version__

    ctx["version"] = __version__
    out = out_dir / "explore.html"
    atomic_write_text(out, render("explore.html", **ctx))
    return out
