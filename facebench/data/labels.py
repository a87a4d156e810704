"""UTKFace labels: parsing file names, validating values, age bands.

UTKFace names its crops ``age_gender_race_datetime.jpg`` (``.jpg.chip.jpg`` for
the aligned chips): age an integer 0-116, gender 0 (male) or 1 (female), race
0 white, 1 black, 2 asian, 3 indian, 4 others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..vocab import AGE_BAND_EDGES, AGE_BANDS, AGE_MAX, age_band  # noqa: F401  (the age range and bands, re-exported)

GENDERS = {0: "male", 1: "female"}
RACES = {0: "white", 1: "black", 2: "asian", 3: "indian", 4: "other"}


class LabelError(ValueError):
    """A label that does not parse or is out of range; the message is the audit reason."""


@dataclass(frozen=True)
class Labels:
    age: int
    gender: int
    race: int | None


def _parse_int(text: str, field: str) -> int:
    text = str(text).strip()
    if not text.isdigit():
        raise LabelError(f"{field} {text!r} is not a whole number")
    return int(text)


def validate_labels(age, gender, race=None) -> Labels:
    """Check label values; raise :class:`LabelError` naming the bad value.

    ``race`` may be ``None`` (a manifest without a race column).
    """
    age = _parse_int(age, "age")
    if not 0 <= age <= AGE_MAX:
        raise LabelError(f"age {age} is outside 0-{AGE_MAX}")
    gender = _parse_int(gender, "gender")
    if gender not in GENDERS:
        raise LabelError(f"gender {gender} is not 0 (male) or 1 (female)")
    if race is not None:
        race = _parse_int(race, "race")
        if race not in RACES:
            raise LabelError(f"race {race} is outside 0-4")
    return Labels(age, gender, race)


def parse_utkface_name(name: str) -> Labels:
    """Parse ``age_gender_race_datetime.jpg[.chip.jpg]`` into :class:`Labels`.

    Raises
    ------
    LabelError
        With a one-line reason, e.g. for the three real UTKFace files whose
        name lacks a field (``39_1_20170116174525125.jpg.chip.jpg``).

    Examples
    --------
    >>> parse_utkface_name("25_1_2_20170116174525125.jpg.chip.jpg")
    Labels(age=25, gender=1, race=2)
    """
    stem = name.split(".", 1)[0]
    fields = stem.split("_")
    if len(fields) != 4:
        raise LabelError(
            f"name has {len(fields)} underscore-separated field(s), "
            "expected 4: age_gender_race_datetime"
        )
    age, gender, race, stamp = fields
    labels = validate_labels(age, gender, race)
    if not stamp.isdigit():
        raise LabelError(f"datetime field {stamp!r} is not digits")
    return labels


def gender_name(genders) -> np.ndarray:
    return pd.Series(genders).map(GENDERS).fillna("unknown").to_numpy(dtype=object)


def race_name(races) -> np.ndarray:
    return pd.Series(races, dtype="Int64").map(RACES).fillna("unknown").to_numpy(dtype=object)
