"""The table a run (or a sweep) draws its splits from: the dataset without what data.exclude
lists, cut to a stratified data.max_images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from facebench.console import say
from facebench.data import find_near_duplicates, load_dataset, subsample
from facebench.errors import UserError


def prepare_table(config: dict, quiet: bool = True, audit_path: Path | None = None):
    """``(dataset, table)``: the images a run (or a sweep) of ``config`` draws its splits from.

    The dataset as scanned and audited, without the files ``data.exclude`` lists, cut to a
    stratified ``data.max_images``. A run and a sweep of the same data keys see the same table.
    """
    dataset = find_near_duplicates(load_dataset(config["data"]["path"]), max_bits=config["data"]["near_duplicate_bits"],
                                   labels=config["data"]["near_duplicate_labels"],
                                   min_similarity=config["data"]["near_duplicate_similarity"])
    where = f" (reasons in {audit_path})" if audit_path is not None else ""
    _say(quiet, f"{dataset.audit['used']} faces used, {len(dataset.audit['skipped'])} skipped{where}")
    table = _exclude(dataset, config["data"]["exclude"], quiet)
    return dataset, _limit(table, config["data"]["max_images"], config["seed"])


def _exclude(dataset, path: str, quiet: bool) -> pd.DataFrame:
    """The dataset's table without the files a reviewed list names (``data.exclude``).

    The list is any CSV with an ``image_id`` column (a run's ``label_issues.csv``, edited
    or not) or a ``path`` column; each file left out is added to the audit's skipped list.
    """
    table = dataset.table
    if not path:
        return table
    try:
        listed = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise UserError(f"data.exclude {path}: no such file") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"data.exclude {path}: not a readable CSV ({type(exc).__name__})") from None
    if "image_id" in listed:
        drop = table["image_id"].isin(set(listed["image_id"]))
    elif "path" in listed:
        wanted = {str(Path(p).resolve()) for p in listed["path"] if p}
        drop = table["path"].map(lambda p: str(Path(p).resolve()) in wanted)
    else:
        raise UserError(f"data.exclude {path}: expected an image_id (or path) column; "
                        f"found {', '.join(listed.columns) or 'none'}")
    dataset.audit.setdefault("skipped", []).extend(
        {"file": f, "reason": f"listed in {Path(path).name} (data.exclude)"} for f in table.loc[drop, "image_id"])
    dataset.audit["used"] = int((~drop).sum())
    _say(quiet, f"{int(drop.sum())} face(s) left out as listed in {path}")
    return table[~drop.to_numpy()].reset_index(drop=True)


def _limit(table: pd.DataFrame, max_images: int, seed: int) -> pd.DataFrame:
    """A stratified subset of ``max_images`` images (all when 0 or more than there are)."""
    if not max_images or max_images >= len(table):
        return table
    keep = subsample(table, np.arange(len(table)), max_images / len(table), seed=seed)
    return table.iloc[keep].reset_index(drop=True)


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        say(message)


__all__ = ["prepare_table"]
