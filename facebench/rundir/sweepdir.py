"""The sweep directory (docs/sweep-directory.md): its files, its format, the best-point rule, its reader.

The names below are the only spelling of the sweep directory's files; the search writes
them (:mod:`facebench.compare.search.sweep_outputs`) and the page and the command line read them
through here. :func:`best_number` is the one rule that picks the winner written to
``best.toml`` and shown by the page. :func:`read_sweep` reads ``sweep.json``, ``sweep.toml``, ``points.csv``, ``curves.csv``,
``importances.json`` and ``best.toml`` (never ``study.db``, never any code); only
``sweep.json`` is required, and a file that cannot be read is a :class:`UserError`
naming it. :class:`Sweep` answers what the page asks of the points: the objective's
tasks, the base and best points (the sweep's own rule), the ranked complete points.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facebench.errors import UserError
from facebench.vocab import OBJECTIVES, Objective

#: Version of the sweep-directory layout written and read by this facebench.
FORMAT = 1
SWEEP_FILE, INFO_FILE, POINTS_FILE, CURVES_FILE = "sweep.toml", "sweep.json", "points.csv", "curves.csv"
IMPORTANCES_FILE, BEST_FILE, STUDY_FILE, LOG_FILE = "importances.json", "best.toml", "study.db", "sweep.log"
REPORT_FILE = "report.html"
#: Name of the winner in best.toml, beside its base.
BEST_NAME = "sweep-best"
#: The validation metrics of a point, as points.csv columns (each with ``_low`` / ``_high``).
POINT_METRICS = tuple(o.column for o in OBJECTIVES.values())
_MAE, _ACC = OBJECTIVES["age_mae"].column, OBJECTIVES["gender_accuracy"].column

@dataclass
class Sweep:
    """Everything the page reads from a sweep directory (missing files are empty)."""

    dir: Path
    info: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    config_text: str = ""
    points: pd.DataFrame = field(default_factory=pd.DataFrame)
    curves: pd.DataFrame | None = None
    importances: dict[str, dict[str, float]] = field(default_factory=dict)
    best_toml: str | None = None

    @property
    def objective(self) -> str:
        return str(self.info.get("objective") or self.config.get("objective") or "age_mae")

    @property
    def tasks(self) -> list[Objective]:
        """The tasks of the objective (both for ``both``)."""
        return list(OBJECTIVES.values()) if self.objective == "both" else [OBJECTIVES.get(self.objective, OBJECTIVES["age_mae"])]

    @property
    def measured(self) -> list[Objective]:
        """Every task with a value on some point."""
        return [t for t in OBJECTIVES.values() if t.column in self.points and self.points[t.column].notna().any()]

    @property
    def params(self) -> list[str]:
        return [c.removeprefix("param.") for c in self.points.columns if c.startswith("param.")]

    @property
    def space(self) -> dict[str, Any]:
        space = self.config.get("space")
        return space if isinstance(space, dict) else {}

    @property
    def complete(self) -> pd.DataFrame:
        return self.points[self.points["state"] == "complete"]

    @property
    def base_number(self) -> int | None:
        n = self.info.get("base_point")
        if isinstance(n, int) and n in set(self.points["number"]):
            return n
        flagged = self.points[self.points["is_base"]]
        return int(flagged["number"].iloc[0]) if len(flagged) else None

    def point(self, number: int | None) -> pd.Series | None:
        if number is None:
            return None
        rows = self.points[self.points["number"] == number]
        return rows.iloc[0] if len(rows) else None

    def ranked(self, task: Objective) -> pd.DataFrame:
        """Complete points with a value for ``task``, best first (ties to the lower number)."""
        c = self.complete.dropna(subset=[task.column])
        key = c[task.column] if task.direction == "min" else -c[task.column]
        return c.assign(_key=key).sort_values(["_key", "number"]).drop(columns="_key")

    @property
    def best_number(self) -> int | None:
        """The point written to best.toml: ``best_point`` of sweep.json, else :func:`best_number`."""
        n = self.info.get("best_point")
        if isinstance(n, int) and n in set(self.points["number"]):
            return n
        return best_number(self.points, self.objective)


# ---- reading -------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """A ``param.*`` cell as its value: JSON (numbers, lists, true/false) or the plain string."""
    if text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text.lower() == "true" if text.lower() in ("true", "false") else text


def _read_csv(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a readable CSV file ({exc})") from None


def _points(raw: pd.DataFrame | None) -> pd.DataFrame:
    numeric = ["seconds", "epochs_run", "objective"] + [
        f"{t.column}{s}" for t in OBJECTIVES.values() for s in ("", "_low", "_high")
    ]
    raw = pd.DataFrame() if raw is None else raw
    out = pd.DataFrame(index=raw.index)
    out["number"] = pd.to_numeric(raw.get("number", pd.Series(index=raw.index, dtype=str)), errors="coerce")
    out = out[out["number"].notna()].astype({"number": int})
    raw = raw.loc[out.index]
    for col in ("state", "reason"):
        out[col] = raw[col].str.strip() if col in raw else ""
    out["state"] = out["state"].str.lower()
    for col in numeric:
        out[col] = pd.to_numeric(raw[col], errors="coerce") if col in raw else np.nan
    out["is_base"] = raw["is_base"].str.strip().str.lower().isin(["true", "1"]) if "is_base" in raw else False
    for col in (c for c in raw.columns if c.startswith("param.")):
        out[col] = [parse_value(v) for v in raw[col]]
    return out.sort_values("number").reset_index(drop=True)


def read_sweep(sweep_dir: str | os.PathLike[str]) -> Sweep:
    """Read a sweep directory; only ``sweep.json`` is required.

    Raises
    ------
    UserError
        No such folder, no ``sweep.json``, a ``sweep.json`` of another format, or a file
        that cannot be read.
    """
    d = Path(sweep_dir)
    if not d.is_dir():
        raise UserError(f"{d}: no such folder")
    info_path = d / INFO_FILE
    if not info_path.is_file():
        raise UserError(f"{d}: not a sweep directory (no {INFO_FILE}); `facebench sweep` writes one")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{info_path}: not valid JSON ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        got = info.get("format") if isinstance(info, dict) else None
        raise UserError(f"{info_path}: sweep format {got!r}, this facebench reads format {FORMAT}")
    sweep = Sweep(dir=d, info=info)
    toml_path = d / SWEEP_FILE
    if toml_path.is_file():
        sweep.config_text = toml_path.read_text(encoding="utf-8")
        try:
            sweep.config = tomllib.loads(sweep.config_text)
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{toml_path}: not valid TOML ({exc})") from None
    sweep.points = _points(_read_csv(d / POINTS_FILE))
    curves = _read_csv(d / CURVES_FILE)
    if curves is not None and "number" in curves and "epoch" in curves and len(curves):
        sweep.curves = curves.apply(pd.to_numeric, errors="coerce").dropna(subset=["number", "epoch"])
    imp_path = d / IMPORTANCES_FILE
    if imp_path.is_file():
        try:
            imp = json.loads(imp_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise UserError(f"{imp_path}: not valid JSON ({exc})") from None
        if isinstance(imp, dict):
            sweep.importances = {k: {str(p): float(v) for p, v in d_.items()} for k, d_ in imp.items() if isinstance(d_, dict) and d_}
    if (d / BEST_FILE).is_file():
        sweep.best_toml = (d / BEST_FILE).read_text(encoding="utf-8")
    return sweep


def pareto(frame: pd.DataFrame) -> set[int]:
    """Numbers of the points no other point beats on both age MAE and gender accuracy."""
    m = pd.to_numeric(frame[_MAE], errors="coerce").to_numpy(dtype=float)
    a = pd.to_numeric(frame[_ACC], errors="coerce").to_numpy(dtype=float)
    nums = frame["number"].to_numpy()
    ok = ~(np.isnan(m) | np.isnan(a))
    m, a, nums = m[ok], a[ok], nums[ok]
    return {int(nums[i]) for i in range(len(nums))
            if not ((m <= m[i]) & (a >= a[i]) & ((m < m[i]) | (a > a[i]))).any()}


def best_number(points: pd.DataFrame, objective: str) -> int | None:
    """The winner of a sweep's finished points (``points.csv`` as written or as read).

    A single objective: the complete point with the best value (ties to the lower number).
    ``both``: on the Pareto front of the complete points, the one with the lowest MAE among
    those at least as accurate as the base (the whole front when none is, or with no
    complete base). None when no point is complete.
    """
    done = points[points["state"] == "complete"]
    if objective in OBJECTIVES:
        o = OBJECTIVES[objective]
        value = pd.to_numeric(done[o.column], errors="coerce")
        ranked = done.assign(_key=value if o.lower_is_better else -value).dropna(subset=["_key"])
        return int(ranked.sort_values(["_key", "number"])["number"].iloc[0]) if len(ranked) else None
    done = done.assign(_mae=pd.to_numeric(done[_MAE], errors="coerce"), _acc=pd.to_numeric(done[_ACC], errors="coerce"))
    done = done.dropna(subset=["_mae", "_acc"])
    front = done[done["number"].isin(pareto(done))]
    base = done[done["is_base"].astype(bool)]
    if len(base):
        good = front[front["_acc"] >= base["_acc"].iloc[0]]
        front = good if len(good) else front
    return int(front.sort_values(["_mae", "number"])["number"].iloc[0]) if len(front) else None
