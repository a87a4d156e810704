"""Report tables: cells with intervals, number formatting, and CSV / JSON / Markdown export.

A :class:`Table` is the one representation of every table in the report: the HTML
template renders its formatted text, and :func:`write_tables` writes the same table to
``RUN_DIR/tables/{name}.csv``, ``.json`` and ``.md`` with the raw numbers, so that
people who need non-HTML output get exactly what the report shows.

Number formats live in :func:`format_metric`; tests format ``metrics.csv`` with the
same function and compare the text of the report's cells.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facebench.io import atomic_write_text
from facebench import vocab

COUNT_METRICS = frozenset(vocab.COUNT_METRICS)
MISSING = "—"


def is_missing(value: Any) -> bool:
    """True for None and float NaN (pandas' missing values included)."""
    if value is None:
        return True
    try:
        return bool(math.isnan(value))
    except TypeError:
        return False


def format_metric(metric: str, value: Any) -> str:
    """Format one metric value the way every report table shows it.

    >>> format_metric("mae", 7.456)
    '7.46'
    >>> format_metric("accuracy", 0.91234)
    '0.912'
    >>> format_metric("n", 120.0)
    '120'
    """
    if is_missing(value):
        return MISSING
    value = float(value)
    if metric in COUNT_METRICS:
        return f"{value:,.0f}" if value == round(value) else f"{value:,.1f}"
    return f"{value:.{vocab.METRICS[metric].decimals if metric in vocab.METRICS else 3}f}"


def format_p(p: Any) -> str:
    """A p-value as a reader wants it: three decimals, or ``< 0.001``."""
    if is_missing(p):
        return MISSING
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def format_seconds(s: Any) -> str:
    """Seconds with about three significant digits."""
    if is_missing(s):
        return MISSING
    s = float(s)
    if s >= 100:
        return f"{s:,.0f}"
    if s >= 10:
        return f"{s:.1f}"
    if s >= 0.01:
        return f"{s:.2f}"
    return f"{s:.3f}" if s > 0 else "0"


def format_bytes(n: Any) -> str:
    """A byte count in B, KB, MB or GB (powers of 1024)."""
    if is_missing(n):
        return MISSING
    n = float(n)
    for unit in ("B", "KB", "MB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.2f} GB"


def format_plain(value: Any) -> str:
    """Format a number or text that has no metric of its own."""
    if is_missing(value):
        return MISSING
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass
class Cell:
    """One table cell: a raw value (exported) and its formatted text (shown).

    ``low`` and ``high`` are an interval around ``value`` (shown in brackets,
    exported as ``{column}_low`` / ``{column}_high``). ``best`` marks the best
    value of its column; ``muted`` greys a cell out (for example a small group).
    ``style`` is a CSS declaration computed by the report itself (never from data).
    ``detail`` is a second, smaller line (for example a p-value under an effect),
    exported with its raw ``detail_value`` as ``{column}_{Column.detail_key}``.
    ``ref`` names where a number came from (``task|metric|group|model|fraction``) so that
    tests can check the cell against ``metrics.csv``; it is rendered as ``data-ref``.
    """

    value: Any = None
    text: str = MISSING
    low: Any = None
    high: Any = None
    low_text: str = ""
    high_text: str = ""
    best: bool = False
    muted: bool = False
    style: str = ""
    title: str = ""
    detail: str = ""
    detail_value: Any = None
    ref: str = ""

    @property
    def interval(self) -> str:
        if not self.low_text and not self.high_text:
            return ""
        return f"[{self.low_text}, {self.high_text}]"


def text_cell(value: Any) -> Cell:
    """A cell that only holds text (a model name, a group, a reason)."""
    return Cell(value=value, text=format_plain(value))


def metric_cell(metric: str, value: Any, low: Any = None, high: Any = None) -> Cell:
    """A metric cell formatted with :func:`format_metric`, with an optional interval."""
    cell = Cell(value=None if is_missing(value) else float(value), text=format_metric(metric, value))
    if not is_missing(low) and not is_missing(high):
        cell.low, cell.high = float(low), float(high)
        cell.low_text, cell.high_text = format_metric(metric, low), format_metric(metric, high)
    return cell


@dataclass
class Column:
    key: str
    label: str
    numeric: bool = False
    detail_key: str = "detail"
    group: str = ""  # a header spanning consecutive columns of the same group


@dataclass
class Table:
    """A report table. ``name`` is its file stem under ``tables/``."""

    name: str
    title: str
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""
    export: bool = True
    wrap: bool = False  # long text cells wrap instead of being cut with an ellipsis

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(
                    f"table {self.name!r}: a row has {len(row)} cells for {len(self.columns)} columns"
                )

    @property
    def empty(self) -> bool:
        return not self.rows

    @property
    def header_groups(self) -> list[tuple[str, int, bool, bool]]:
        """The first header row: ``(label, span, is_group, numeric)`` per header cell."""
        out: list[tuple[str, int, bool, bool]] = []
        for col in self.columns:
            if col.group and out and out[-1][2] and out[-1][0] == col.group:
                label, span, _, numeric = out[-1]
                out[-1] = (label, span + 1, True, numeric)
            elif col.group:
                out.append((col.group, 1, True, True))
            else:
                out.append((col.label, 1, False, col.numeric))
        return out

    @property
    def has_groups(self) -> bool:
        return any(c.group for c in self.columns)

    def mark_best(self, column_key: str, direction: str, rows: list[int] | None = None) -> None:
        """Mark the best cell of a column; ties on the shown text are all marked.

        ``direction`` is ``"min"`` or ``"max"``. Cells with no value or greyed out are
        ignored, and so are rows not in ``rows`` (row indices) when it is given.
        """
        if direction not in ("min", "max"):
            raise ValueError(f"direction={direction!r}; expected 'min' or 'max'")
        j = [c.key for c in self.columns].index(column_key)
        candidates = self.rows if rows is None else [self.rows[i] for i in rows]
        cells = [row[j] for row in candidates if not is_missing(row[j].value) and not row[j].muted]
        if len(cells) < 2:
            return
        pick = min if direction == "min" else max
        best = pick(cells, key=lambda c: c.value)
        for c in cells:
            if c.text == best.text:
                c.best = True

    # ---- export -----------------------------------------------------------------

    def _export_header(self) -> list[str]:
        return list(self.records_template())

    def records_template(self) -> dict[str, None]:
        """The exported column names, in order (intervals and details beside their value)."""
        header: dict[str, None] = {}
        for j, col in enumerate(self.columns):
            header[col.key] = None
            if any(row[j].interval for row in self.rows):
                header[f"{col.key}_low"] = header[f"{col.key}_high"] = None
            if any(row[j].detail for row in self.rows):
                header[f"{col.key}_{col.detail_key}"] = None
        return header

    def records(self) -> list[dict[str, Any]]:
        """Rows as dicts of raw values, intervals as ``{key}_low`` / ``{key}_high``."""
        header = self.records_template()
        out = []
        for row in self.rows:
            rec = dict(header)
            for col, cell in zip(self.columns, row):
                rec[col.key] = _jsonable(cell.value)
                if f"{col.key}_low" in rec:
                    rec[f"{col.key}_low"] = _jsonable(cell.low)
                    rec[f"{col.key}_high"] = _jsonable(cell.high)
                if f"{col.key}_{col.detail_key}" in rec:
                    rec[f"{col.key}_{col.detail_key}"] = _jsonable(cell.detail_value)
            out.append(rec)
        return out

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self._export_header(), lineterminator="\n")
        writer.writeheader()
        for rec in self.records():
            writer.writerow({k: "" if v is None else v for k, v in rec.items()})
        return buf.getvalue()

    def to_json(self) -> str:
        doc = {
            "name": self.name,
            "title": self.title,
            "note": self.note,
            "columns": [{"key": c.key, "label": f"{c.group} {c.label}".strip()} for c in self.columns],
            "rows": self.records(),
        }
        return json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n"

    def to_markdown(self) -> str:
        lines = [f"### {_md_escape(self.title)}", ""]
        if self.note:
            lines += [_md_escape(self.note), ""]
        labels = [f"{c.group} {c.label}" if c.group else c.label for c in self.columns]
        lines.append("| " + " | ".join(_md_escape(x) for x in labels) + " |")
        lines.append("|" + "|".join("---:" if c.numeric else "---" for c in self.columns) + "|")
        for row in self.rows:
            texts = []
            for cell in row:
                t = cell.text + (f" {cell.interval}" if cell.interval else "")
                t += f" ({cell.detail})" if cell.detail else ""
                t = _md_escape(t)
                texts.append(f"**{t}**" if cell.best else t)
            lines.append("| " + " | ".join(texts) + " |")
        return "\n".join(lines) + "\n"


def _jsonable(v: Any) -> Any:
    if is_missing(v):
        return None
    if hasattr(v, "item"):  # numpy scalar
        v = v.item()
    return v


def _md_escape(text: str) -> str:
    out = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    for ch in "*_`[]<>":
        out = out.replace(ch, "\\" + ch)
    return out


def write_tables(tables: list[Table], out_dir: Path) -> dict[str, dict[str, str]]:
    """Write every exportable table as CSV, JSON and Markdown under ``out_dir``.

    Returns ``{table name: {"csv": relative link, "json": ..., "md": ...}}`` with links
    relative to ``out_dir``'s parent (where the report lives). Also writes
    ``out_dir/README.md`` (one Markdown file with every table).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    links: dict[str, dict[str, str]] = {}
    names = set()
    all_md = ["# Report tables", ""]
    for table in tables:
        if not table.export:
            continue
        if table.name in names:
            raise ValueError(f"two report tables are both named {table.name!r}")
        names.add(table.name)
        atomic_write_text(out_dir / f"{table.name}.csv", table.to_csv())
        atomic_write_text(out_dir / f"{table.name}.json", table.to_json())
        md = table.to_markdown()
        atomic_write_text(out_dir / f"{table.name}.md", md)
        all_md += [md, ""]
        links[table.name] = {ext: f"{out_dir.name}/{table.name}.{ext}" for ext in ("csv", "json", "md")}
    atomic_write_text(out_dir / "README.md", "\n".join(all_md))
    return links
