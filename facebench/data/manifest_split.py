"""A split a user brings: a manifest's ``part`` column (train / test) and optional ``trial``.

A published protocol or a subject-disjoint split made elsewhere is run as is: with a
``part`` column the manifest fixes which faces train and which test. Without ``trial``
the one split serves every trial of the run (the trials then differ only in their
seeds); with it, each line says its trial, the trials are numbered 0, 1, 2, ... without
gaps, and a face may be listed once per trial.

Everything is checked on the manifest itself, before a run writes anything: an unknown
part, a trial that is not a whole number or leaves a gap, and a trial whose test part
lacks a gender each stop with one line naming the line and the value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError
from .labels import GENDERS, LabelError, validate_labels

PARTS = ("train", "test")


def has_user_split(frame: pd.DataFrame) -> bool:
    """Whether a manifest (columns lower-cased) brings its own split."""
    return "part" in frame.columns


def check_user_split(frame: pd.DataFrame, path) -> pd.DataFrame | None:
    """The manifest's split as ``(line, path, trial, part)`` rows, checked; None without a ``part`` column.

    ``trial`` is -1 on every row when the manifest has no ``trial`` column (one split
    for every trial of the run). Lines whose labels do not parse are left to the scan,
    which skips them with their reason.

    Raises
    ------
    UserError
        One line naming the manifest line and the value: a part other than train or
        test; a trial that is empty, not a whole number, or leaves a gap; a trial whose
        test part has no face of one gender or whose training part is empty.
    """
    if not has_user_split(frame):
        return None
    has_trial = "trial" in frame.columns
    rows = []
    for line, row in enumerate(frame.itertuples(index=False), start=2):
        part = str(row.part).strip().lower()
        if part not in PARTS:
            raise UserError(f"--data {path}: line {line}: part = {str(row.part)!r} is invalid: expected train or test")
        trial = -1
        if has_trial:
            raw = str(row.trial).strip()
            if not raw:
                raise UserError(f"--data {path}: line {line}: trial is empty: every line needs its trial "
                                "(0, 1, 2, ...) when the manifest has a trial column")
            if not (raw.isascii() and raw.isdigit()):
                raise UserError(f"--data {path}: line {line}: trial = {raw!r} is invalid: expected a whole number "
                                "0, 1, 2, ...")
            trial = int(raw)
        try:
            gender = validate_labels(row.age, row.gender, None).gender
        except LabelError:
            continue  # the scan skips the line with its reason
        rows.append({"line": line, "path": str(row.path).strip(), "trial": trial, "part": part, "gender": gender})
    split = pd.DataFrame(rows, columns=["line", "path", "trial", "part", "gender"])
    if has_trial and len(split):
        trials = sorted(set(split["trial"]))
        missing = sorted(set(range(trials[-1] + 1)) - set(trials))
        if missing:
            after = split[split["trial"] > missing[0]].iloc[0]
            raise UserError(f"--data {path}: line {after['line']}: trial = {after['trial']} leaves a gap: no line "
                            f"has trial {missing[0]} (trials are numbered 0, 1, 2, ... without gaps)")
    for trial, rows_t in split.groupby("trial"):
        name = "the split" if trial < 0 else f"trial {trial}"
        test = rows_t[rows_t["part"] == "test"]
        for code, gender in GENDERS.items():
            if not (test["gender"] == code).any():
                raise UserError(f"--data {path}: {name} has no {gender} face with part = test (line "
                                f"{rows_t['line'].iloc[0]} onwards); a test part needs faces of both genders")
        if not (rows_t["part"] == "train").any():
            raise UserError(f"--data {path}: {name} has no line with part = train; a split needs training faces")
    return split.drop(columns="gender")


def check_manifest_split(path) -> None:
    """Check a manifest's split columns without scanning its images (nothing is written).

    For a path that is not a ``.csv`` file, or a manifest without a ``part`` column,
    this does nothing; :func:`facebench.data.load_dataset` reports other problems.
    """
    path = Path(path).expanduser()
    if not path.is_file() or path.suffix.lower() != ".csv":
        return
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except Exception:  # noqa: BLE001 - load_dataset reports an unreadable manifest
        return
    frame.columns = [c.strip().lower() for c in frame.columns]
    if {"path", "age", "gender"} <= set(frame.columns):
        check_user_split(frame, path)


def user_splits(table: pd.DataFrame, user_split: pd.DataFrame, trials: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The run's splits from a manifest's split: ``{trial: (train_rows, test_rows)}`` into ``table``.

    ``user_split`` holds ``image_id``, ``trial`` (-1: every trial) and ``part``; faces of
    the split that are not in ``table`` (skipped by the scan, or left out) are left out.

    Raises
    ------
    UserError
        When the run asks for more trials than the manifest numbers.
    """
    position = pd.Series(np.arange(len(table)), index=table["image_id"].astype(str).to_numpy())
    numbered = sorted(t for t in set(user_split["trial"]) if t >= 0)
    if numbered and trials > len(numbered):
        raise UserError(f"trials = {trials}, but the manifest's trial column numbers {len(numbered)} trial(s); "
                        f"use --set trials={len(numbered)} or fewer")
    splits = {}
    for trial in range(trials):
        rows = user_split[user_split["trial"] == (trial if numbered else -1)]
        rows = rows[rows["image_id"].isin(position.index)]
        pos = position.loc[rows["image_id"]].to_numpy()
        part = rows["part"].to_numpy()
        splits[trial] = (np.sort(pos[part == "train"]), np.sort(pos[part == "test"]))
    return splits


__all__ = ["PARTS", "check_manifest_split", "check_user_split", "has_user_split", "user_splits"]
