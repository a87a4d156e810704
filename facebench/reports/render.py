"""The comparison report: a run directory in, one self-contained ``report.html`` out.

:func:`write_report` reads the run directory with :func:`facebench.rundir.read.read_run`,
builds the sections (``facebench.reports.sections``) in the order a reader needs them,
writes every table to ``RUN_DIR/tables/`` (CSV, JSON, Markdown) and renders
``templates/report.html`` with Jinja2, autoescape on. Figures are PNG data URIs and the
CSS is inline, so the file opens offline and makes no request.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import os
import re
import time
from pathlib import Path
from typing import Any

import jinja2

from facebench.io import atomic_write_text
from facebench.reports import plots
from facebench.reports.sections import SECTIONS
from facebench.reports.sections.age import age_section
from facebench.reports.sections.answer import answer_section
from facebench.reports.sections.audit import audit_section, audit_tables
from facebench.reports.sections.cost import cost_section
from facebench.reports.sections.data_size import data_size_section
from facebench.reports.sections.gender import gender_section
from facebench.reports.sections.doubt import labels_section, labels_tables, with_labels_entry
from facebench.reports.sections.paired import paired_section
from facebench.reports.sections.reproduce import reproduce_section
from facebench.reports.sections.seen import seen_section
from facebench.reports.sections.subgroups import subgroups_section
from facebench.reports.sections.training import training_section
from facebench.reports.sections.worst import worst_section
from facebench.reports.summary import Summary, frac, summarize
from facebench.reports.tables import Table, write_tables
from facebench.rundir import layout
from facebench.rundir.read import Run, read_run

_SYNTH_NAME = re.compile(r"n(?P<n>\d+)-seed(?P<seed>\d+)")


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The Jinja2 environment of the report templates (autoescape on, strict undefined)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context: Any) -> str:
    """Render one of the report templates (autoescape on)."""
    return environment().get_template(template).render(**context)


def timestamp() -> str:
    """Now, in the local time zone, as the pages print it."""
    return _dt.datetime.now(_dt.timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M %Z")


def dataset_name(audit: dict[str, Any], config: dict[str, Any]) -> str:
    """What to call the dataset: its folder name, or ``synthetic faces (2,000, seed 0)``."""
    data_cfg = config.get("data") if isinstance(config.get("data"), dict) else {}
    root = audit.get("root") or data_cfg.get("path")
    name = Path(str(root)).name if root else ""
    if audit.get("synthetic"):
        m = _SYNTH_NAME.fullmatch(name)
        if m:
            return f"synthetic faces ({int(m['n']):,}, seed {m['seed']})"
        used = audit.get("used")
        return f"synthetic faces ({used:,})" if isinstance(used, int) else "synthetic faces"
    return name or "unknown dataset"


def header(run: Run, S: Summary) -> dict[str, Any]:
    a = run.audit
    digest = hashlib.sha256(run.config_text.encode("utf-8")).hexdigest()[:12] if run.config_text else None
    return {
        "dataset": dataset_name(a, run.config),
        "found": a.get("found"),
        "used": a.get("used"),
        "skipped": len(a.get("skipped") or []) if a else None,
        "synthetic": bool(a.get("synthetic")),
        "preset": run.preset,
        "digest": digest,
        "trials": S.max_trials,
        "fractions": ", ".join(frac(f) for f in run.fractions),
        "main_fraction": frac(run.main_fraction),
        "models": run.models,
        "interval_note": S.interval_note,
    }


def build_context(run: Run) -> tuple[dict[str, Any], list[Table]]:
    """Everything the template needs, and every table (for ``tables/``)."""
    S = summarize(run.metrics)
    colors = plots.model_colors(run.models)
    ctx: dict[str, Any] = {
        "header": header(run, S),
        "answer": answer_section(run, S),
        "age": age_section(run, S, colors),
        "gender": gender_section(run, S, colors),
        "data_size": data_size_section(run, S, colors),
        "training": training_section(run),
        "paired": paired_section(run, S),
        "subgroups": subgroups_section(run, S),
        "cost": cost_section(run),
        "worst": worst_section(run),
        "labels": labels_section(run),
        "seen": seen_section(run),
        "audit": audit_section(run.audit),
        "reproduce": reproduce_section(run),
    }
    ctx["sections"] = [(sid, title) for sid, title in SECTIONS if sid != "seen" or ctx["seen"] is not None]
    ctx["sections"] = with_labels_entry(ctx["sections"], ctx["labels"])
    tables = [ctx["answer"]["table"]]
    tables += [ctx[key]["table"] for key in ("age", "gender", "data_size", "cost") if ctx[key].get("table") is not None]
    tables += [t["table"] for t in ctx["paired"]["tasks"]]
    tables += ctx["subgroups"]["tables"]
    if "gap" in ctx["subgroups"]:
        tables.append(ctx["subgroups"]["gap"])
    tables += labels_tables(ctx["labels"])
    tables += audit_tables(ctx["audit"])
    return ctx, tables


def write_report(run_dir: str | os.PathLike[str]) -> Path:
    """Write ``RUN_DIR/report.html`` (and ``RUN_DIR/tables/``) from the run directory alone.

    Parameters
    ----------
    run_dir : path
        A finished run directory (docs/run-directory.md); only ``run.json`` and
        ``metrics.csv`` are required, every other missing piece is said so in its section.

    Returns
    -------
    Path of the report.

    Raises
    ------
    UserError
        If ``run_dir`` is not a finished run directory of this facebench's format.
    """
    started = time.perf_counter()
    run = read_run(run_dir)
    ctx, tables = build_context(run)
    ctx["links"] = write_tables(tables, run.dir / layout.TABLES_DIR)
    ctx["generated"] = timestamp()
    from facebench import __version__

    ctx["version"] = __version__
    ctx["build_seconds"] = f"{time.perf_counter() - started:.1f}"
    out = run.dir / layout.REPORT_FILE
    atomic_write_text(out, render("report.html", **ctx))
    return out

__all__ = ["build_context", "dataset_name", "environment", "header", "render", "timestamp", "write_report"]
