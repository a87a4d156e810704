"""The data audit (shared by the report and the explore page): found, used, skipped and why.

The audit's label summary (``labels`` of ``audit.json``: age range, and counts per
gender and ethnicity code) is shown as a table with the names of the codes.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pandas as pd

from facebench.data.labels import GENDERS, RACES
from facebench.reports.tables import MISSING, Cell, Column, Table, text_cell

MAX_AUDIT_ROWS = 200
#: Rows a long list shows on the page (inside a closed <details>); every row is in tables/.
FIRST_ROWS = 20
_KNOWN = {"found", "used", "skipped", "duplicates", "not_used", "source", "root", "synthetic", "labels",
          "near_duplicates", "split", "split_from_manifest"}


def _code_name(names: dict[int, str], code: Any) -> str:
    try:
        return names[int(code)]
    except (KeyError, TypeError, ValueError):
        return "unknown" if str(code) in ("missing", "", "None", "nan") else str(code)


def labels_table(summary: Any) -> Table | None:
    """The label summary as rows ``(label, value, faces, share)``; None without one."""
    if not isinstance(summary, dict) or not summary:
        return None
    rows = []
    ages = [(k, summary.get(f"age_{k}")) for k in ("min", "median", "max")]
    if any(v is not None for _, v in ages):
        text = ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {MISSING}" for k, v in ages)
        rows.append([text_cell("age"), text_cell(text), Cell(), Cell()])
    for name, key, names in (("gender", "gender_counts", GENDERS), ("ethnicity", "race_counts", RACES)):
        counts = summary.get(key)
        if not isinstance(counts, dict) or not counts:
            continue
        total = sum(int(v) for v in counts.values()) or 1
        order = sorted(counts, key=lambda c: (not str(c).isdigit(), int(c) if str(c).isdigit() else 0, str(c)))
        for code in order:
            n = int(counts[code])
            rows.append(
                [text_cell(name), text_cell(_code_name(names, code)), Cell(value=n, text=f"{n:,}"), Cell(value=n / total, text=f"{n / total:.1%}")]
            )
    if not rows:
        return None
    cols = [Column("label", "Label"), Column("value", "Value"), Column("faces", "Faces", True), Column("share", "Share", True)]
    return Table("audit_labels", "Labels of the faces used", cols, rows, wrap=True)


#: Reasons that name another file or line, counted as one kind each.
_REASON_KINDS = ((re.compile(r"^exact duplicate of .+"), "exact duplicate of a kept file (same pixels, same labels)"),
                 (re.compile(r"^listed again: the same file as line \d+$"), "listed again in the manifest"))


def reason_kind(reason: str) -> str:
    """A skip reason without the file or line it names, so that the reasons table counts kinds."""
    for pattern, kind in _REASON_KINDS:
        if pattern.match(reason):
            return kind
    return reason


def audit_section(a: dict[str, Any]) -> dict[str, Any]:
    """The data-audit section from an audit dict (as ``audit.json``)."""
    if not a:
        return {"message": "audit.json is missing: this run directory does not say what was found and skipped."}
    skipped = list(a.get("skipped") or [])
    reasons = pd.Series([reason_kind(str(s.get("reason", ""))) for s in skipped], dtype=object).value_counts()
    out: dict[str, Any] = {
        "counts": [
            ("found", a.get("found", MISSING)),
            ("used", a.get("used", MISSING)),
            ("skipped", len(skipped)),
            ("duplicate groups", len(a.get("duplicates") or [])),
        ],
        "source": a.get("source"),
        "root": a.get("root"),
        "synthetic": bool(a.get("synthetic")),
        "labels": labels_table(a.get("labels")),
    }
    not_used = []
    for entry in a.get("not_used") or []:
        if isinstance(entry, dict):
            not_used.append([text_cell(str(entry.get("file", entry.get("path", "")))), text_cell(str(entry.get("reason", "")))])
        else:
            not_used.append([text_cell(str(entry)), text_cell("")])
    out["not_used"] = Table("audit_not_used", "Not scanned", [Column("file", "Entry"), Column("reason", "Why")], not_used, wrap=True)
    out["reasons"] = Table(
        "audit_reasons",
        "Why files were skipped",
        [Column("reason", "Reason"), Column("files", "Files", True)],
        [[text_cell(r), Cell(value=int(n), text=f"{int(n):,}")] for r, n in reasons.items()],
        wrap=True,
    )
    out["skipped"] = Table(
        "audit_skipped",
        "Skipped files",
        [Column("file", "File"), Column("reason", "Reason")],
        [[text_cell(str(s.get("file", ""))), text_cell(str(s.get("reason", "")))] for s in skipped],
    )
    out["skipped_shown"] = MAX_AUDIT_ROWS
    dups = list(a.get("duplicates") or [])
    out["duplicates"] = Table(
        "audit_duplicates",
        "Exact duplicates (same pixels under different names)",
        [Column("files", "Files"), Column("action", "Action")],
        [[text_cell(" = ".join(str(x) for x in d.get("files", []))), text_cell(str(d.get("action", "")))] for d in dups],
        wrap=True,
    )
    near = a.get("near_duplicates") if isinstance(a.get("near_duplicates"), dict) else {}
    out["near"] = near_summary(near)
    if near:
        out["counts"].append(("near-duplicate groups", near.get("groups", MISSING) if near.get("max_bits", 0) >= 0
                              else "not looked for"))
    out["near_duplicates"] = near_duplicates_table(near)
    out["near_looked"] = bool(near) and near.get("max_bits", 0) >= 0
    out["split"] = split_summary(a.get("split"))
    for key in ("skipped", "duplicates", "near_duplicates"):
        out[f"{key}_head"] = replace(out[key], rows=out[key].rows[:FIRST_ROWS])
    out["first_rows"] = FIRST_ROWS
    extra = {k: v for k, v in a.items() if k not in _KNOWN}
    if out["labels"] is None and a.get("labels"):
        extra["labels"] = a["labels"]
    out["extra"] = json.dumps(extra, indent=1, ensure_ascii=False, default=str) if extra else ""
    return out


def near_summary(near: dict) -> list[tuple[str, str]]:
    """The near-duplicate search in a few lines ``(what, value)``; empty when the audit has none."""
    if not near:
        return []
    if near.get("max_bits", 0) < 0:
        return [("near-duplicates", "not looked for (data.near_duplicate_bits = -1)")]
    same = (f"verified similarity at least {near['min_similarity']} (candidates: each face's nearest by thumbnail "
            f"and hashes at most {near.get('max_bits')} bits apart)" if "min_similarity" in near
            else f"at most {near.get('max_bits')} bits apart")
    lines = [("hash", str(near.get("hash", MISSING))), ("same photo at", same),
             ("groups", f"{near.get('groups', 0):,} ({near.get('faces', 0):,} faces)"),
             ("labels disagree", f"{near.get('labels_disagree', 0):,} group(s): age differs in "
                                 f"{near.get('age_disagree', 0):,}, gender in {near.get('gender_conflict', 0):,}"),
             ("rule", "groups whose labels disagree are left out" if near.get("labels_rule") == "keep-none"
              else "every face kept; each group on one side of every split")]
    if near.get("excluded"):
        lines.append(("left out", f"{near['excluded']:,} face(s)"))
    return lines


def near_duplicates_table(near: dict) -> Table:
    """One row per near-duplicate group: its files and their labels side by side."""
    rows = []
    for g in near.get("listed") or ():
        labels = "; ".join(f"{_age(a)} {_code_name(GENDERS, s)}" for a, s in zip(g.get("ages", []), g.get("genders", [])))
        rows.append([text_cell(" ~ ".join(str(f) for f in g.get("files", []))), text_cell(labels),
                     Cell(value=g.get("age_spread"), text=str(g.get("age_spread", MISSING))),
                     text_cell("yes" if g.get("gender_conflict") else ""),
                     Cell(value=g.get("max_bits"), text=str(g.get("max_bits", MISSING))),
                     text_cell(str(g.get("action", "")))])
    cols = [Column("files", "Files"), Column("labels", "Labels (age, gender)"), Column("age_spread", "Age spread", True),
            Column("gender_conflict", "Gender conflict"), Column("bits", "Bits apart", True), Column("action", "Action")]
    note = ""
    if near.get("groups", 0) > len(rows):
        note = f"The first {len(rows):,} of {near['groups']:,} groups (audit.json lists no more)."
    return Table("audit_near_duplicates", "Near-duplicate photos (re-encoded, resized or mirrored copies)", cols,
                 rows, note=note, wrap=True)


def split_summary(split: Any) -> list[tuple[str, str]]:
    """How the run's splits were made (audit.json's ``split``), in lines ``(what, value)``."""
    if not isinstance(split, dict):
        return []
    lines = [("split", str(split.get("description") or split.get("rule", MISSING)))]
    straddle = split.get("straddling_groups")
    if isinstance(straddle, dict) and straddle:
        total = sum(int(v) for v in straddle.values())
        if split.get("rule") == "user":
            text = ("none" if not total else
                    ", ".join(f"trial {t}: {int(v)}" for t, v in straddle.items()) + " (the split is used as given)")
            lines.append(("near-duplicate groups on both sides", text))
        else:
            lines.append(("near-duplicate groups on both sides", "none" if not total else f"{total}"))
    return lines


def _age(value: Any) -> str:
    return str(value) if value is not None else MISSING


def audit_tables(section: dict[str, Any]) -> list[Table]:
    """The exportable tables of an audit section."""
    return [section[k] for k in ("labels", "reasons", "skipped", "duplicates", "near_duplicates", "not_used")
            if section.get(k) is not None]
