"""Reading a sweep directory (docs/sweep-directory.md) into a :class:`Sweep`, for the sweep page.

:func:`read_sweep` reads ``sweep.json``, ``sweep.toml``, ``points.csv``, ``curves.csv``,
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
from facebench.reports.tables import format_plain, is_missing

FORMAT = 1

@dataclass(frozen=True)
class Task:
    key: str  # the objective's name: "age_mae" | "gender_accuracy"
    column: str  # its points.csv column
    metric: str  # its name for format_metric
    direction: str  # "min" | "max"
    label: str


TASKS = {
    "age_mae": Task("age_mae", "val_age_mae", "mae", "min", "age MAE (years)"),
    "gender_accuracy": Task("gender_accuracy", "val_gender_accuracy", "accuracy", "max", "gender accuracy"),
}


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
    def tasks(self) -> list[Task]:
        """The tasks of the objective (both for ``both``)."""
        return list(TASKS.values()) if self.objective == "both" else [TASKS.get(self.objective, TASKS["age_mae"])]

    @property
    def measured(self) -> list[Task]:
        """Every task with a value on some point."""
        return [t for t in TASKS.values() if t.column in self.points and self.points[t.column].notna().any()]

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

    def ranked(self, task: Task) -> pd.DataFrame:
        """Complete points with a value for ``task``, best first (ties to the lower number)."""
        c = self.complete.dropna(subset=[task.column])
        key = c[task.column] if task.direction == "min" else -c[task.column]
        return c.assign(_key=key).sort_values(["_key", "number"]).drop(columns="_key")

    @property
    def best_number(self) -> int | None:
        """The point written to best.toml: ``best_point``, else the sweep's own rule.

        A single objective: its best complete point. ``both``: on the Pareto front, the
        point with the lowest MAE among those at least as accurate as the base (the whole
        front when none is, or without a complete base).
        """
        n = self.info.get("best_point")
        if isinstance(n, int) and n in set(self.points["number"]):
            return n
        if self.objective != "both":
            ranked = self.ranked(self.tasks[0])
            return int(ranked["number"].iloc[0]) if len(ranked) else None
        done = self.complete.dropna(subset=["val_age_mae", "val_gender_accuracy"])
        front = done[done["number"].isin(pareto(done))]
        base = self.point(self.base_number)
        if base is not None and base["state"] == "complete" and not is_missing(base["val_gender_accuracy"]):
            good = front[front["val_gender_accuracy"] >= base["val_gender_accuracy"]]
            front = good if len(good) else front
        front = front.sort_values(["val_age_mae", "number"])
        return int(front["number"].iloc[0]) if len(front) else None


# ---- reading -------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """A ``param.*`` cell as its value: JSON (numbers, lists, true/false) or the plain string."""
    if text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text.lower() == "true" if text.lower() in ("true", "false") else text


def value_label(v: Any) -> str:
    """How a parameter value is shown (and grouped): lists as JSON, booleans lower-case."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return format_plain(v)


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
        f"{t.column}{s}" for t in TASKS.values() for s in ("", "_low", "_high")
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
    info_path = d / "sweep.json"
    if not info_path.is_file():
        raise UserError(f"{d}: not a sweep directory (no sweep.json); `facebench sweep` writes one")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{info_path}: not valid JSON ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        got = info.get("format") if isinstance(info, dict) else None
        raise UserError(f"{info_path}: sweep format {got!r}, this facebench reads format {FORMAT}")
    sweep = Sweep(dir=d, info=info)
    toml_path = d / "sweep.toml"
    if toml_path.is_file():
        sweep.config_text = toml_path.read_text(encoding="utf-8")
        try:
            sweep.config = tomllib.loads(sweep.config_text)
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{toml_path}: not valid TOML ({exc})") from None
    sweep.points = _points(_read_csv(d / "points.csv"))
    curves = _read_csv(d / "curves.csv")
    if curves is not None and "number" in curves and "epoch" in curves and len(curves):
        sweep.curves = curves.apply(pd.to_numeric, errors="coerce").dropna(subset=["number", "epoch"])
    imp_path = d / "importances.json"
    if imp_path.is_file():
        try:
            imp = json.loads(imp_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise UserError(f"{imp_path}: not valid JSON ({exc})") from None
        if isinstance(imp, dict):
            sweep.importances = {k: {str(p): float(v) for p, v in d_.items()} for k, d_ in imp.items() if isinstance(d_, dict) and d_}
    if (d / "best.toml").is_file():
        sweep.best_toml = (d / "best.toml").read_text(encoding="utf-8")
    return sweep


def pareto(frame: pd.DataFrame) -> set[int]:
    """Numbers of the points no other point beats on both age MAE and gender accuracy."""
    f = frame.dropna(subset=["val_age_mae", "val_gender_accuracy"])
    m, a, nums = f["val_age_mae"].to_numpy(), f["val_gender_accuracy"].to_numpy(), f["number"].to_numpy()
    front = set()
    for i in range(len(f)):
        dominated = ((m <= m[i]) & (a >= a[i]) & ((m < m[i]) | (a > a[i]))).any()
        if not dominated:
            front.add(int(nums[i]))
    return front
