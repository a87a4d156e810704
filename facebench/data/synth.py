"""Synthetic cartoon faces under UTKFace names: the embedded default dataset.

**These are synthetic cartoons drawn with OpenCV, not faces.** They exist so that
``facebench demo`` and the tests exercise every real code path (file names,
decoding, features, models, reports) without downloading anything. Results on
them say nothing about how any model performs on real faces.

Each image is drawn from its labels (age, gender, race) plus random nuisances:

age
    Head and feature proportions follow a growth factor that saturates near 17
    years: children have a round head, a short lower face, eyes set low and
    large, a small nose and mouth, and rosy cheeks. From the late twenties an
    ageing factor adds wrinkle lines (forehead, crow's feet, nasolabial folds,
    under-eye bags, later marionette lines), coarser skin texture and age spots,
    thinner lips, greying hair and brows, and a receding hairline (mostly on
    male-looking faces, up to baldness). Babies have thin, sparse hair.
    Every face is drawn at an *apparent* age, the true age times a log-normal
    factor (some people look older or younger than they are).
gender
    A "masculinity" score (the gender's mean, weak in young children, plus a
    shared random part) drives hair length, jaw shape (square superellipse vs
    pointed chin), brow thickness, height and arch, lip fullness, eye size and
    shoulder width, each with its own noise, so no single cue decides. Adult
    male-looking faces may get stubble, a moustache or a beard; adult
    female-looking faces may get make-up (lipstick, eyeliner, blush).
race
    Only the skin tone (mildly, with overlapping spread) and the range of hair
    and eye colours; no facial feature depends on race.
nuisances
    Yaw (features shift sideways), roll, scale and translation jitter,
    background colour gradients and clutter, clothing colour, glasses,
    directional and global lighting, colour cast, reduced resolution, Gaussian
    blur and sensor noise, and JPEG compression when written.
label noise
    About 4 % of the images are drawn with the wrong appearance but keep their
    true label: 2 % at an age drawn uniformly from 1-90, 2 % with the other
    gender's appearance (see :data:`_LABEL_NOISE`).

Labels follow the shape of UTKFace's distribution (an infant peak at 1-4 years,
most images between 20 and 35, a long tail up to 116, genders near balanced with
more women in their twenties and more men past fifty). The numbers are an
approximation written for this module, not UTKFace's counts.

Same ``(n, seed, size)`` gives byte-identical files, whatever ``n_jobs``: every
image draws from its own child of ``np.random.SeedSequence(seed)``.
"""

from __future__ import annotations

import datetime
import math
import pathlib
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from ..machine import resolve_n_jobs, usable_cores
from .cache import atomic_write_bytes

# Relative UTKFace-like frequency at these ages (linear in between).
_AGE_KNOTS = (1, 2, 3, 4, 5, 8, 12, 15, 18, 20, 23, 26, 30, 35, 40, 45, 50, 55, 60,
              65, 70, 75, 80, 85, 90, 100, 116)
_AGE_WEIGHTS = (1100, 480, 290, 270, 190, 140, 100, 140, 260, 420, 900, 1500, 900,
                650, 480, 360, 340, 300, 270, 200, 140, 120, 100, 60, 30, 8, 2)
# P(female) by age (linear in between).
_FEMALE_KNOTS = (1, 15, 20, 25, 35, 45, 60, 80, 116)
_FEMALE_SHARE = (0.48, 0.50, 0.58, 0.60, 0.50, 0.42, 0.35, 0.42, 0.50)
# UTKFace race codes 0 white, 1 black, 2 asian, 3 indian, 4 others.
_RACE_SHARE = (0.42, 0.19, 0.145, 0.17, 0.075)
# Mean skin tone per race code, BGR; every face adds its own spread.
_SKIN_BGR = ((150, 178, 222), (78, 104, 146), (138, 176, 216), (100, 136, 184),
             (120, 158, 204))
_DARK_HAIR = ((20, 22, 28), (28, 34, 48), (35, 45, 70))
_LIGHT_HAIR = ((40, 60, 95), (60, 95, 140), (90, 150, 200), (40, 70, 150))
_EYE_DARK = ((25, 40, 60), (20, 30, 45))
_EYE_LIGHT = ((150, 110, 60), (90, 120, 70), (60, 90, 110))
# (probability of a wrong-age appearance, probability of the other gender's).
_LABEL_NOISE = (0.02, 0.02)
_SHIFT = 4  # sub-pixel bits for the OpenCV drawing calls
_JPEG_QUALITY = 90
_NAME_SUFFIX = ".jpg.chip.jpg"


def sample_labels(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Draw ``n`` (age, gender, race) labels with the shape of UTKFace's.

    Parameters
    ----------
    n : int
        Number of labels, ``n >= 0``.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    pandas.DataFrame
        Columns ``age`` (int 1-116), ``gender`` (0 male, 1 female) and ``race``
        (0-4, UTKFace codes), one row per image.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    ages = np.arange(1, 117)
    weights = np.interp(ages, _AGE_KNOTS, _AGE_WEIGHTS)
    age = rng.choice(ages, size=n, p=weights / weights.sum())
    p_female = np.interp(age, _FEMALE_KNOTS, _FEMALE_SHARE)
    gender = (rng.random(n) < p_female).astype(np.int64)
    race = rng.choice(len(_RACE_SHARE), size=n, p=_RACE_SHARE)
    return pd.DataFrame({"age": age.astype(np.int64), "gender": gender,
                         "race": race.astype(np.int64)})


@dataclass(frozen=True)
class _Face:
    """Everything that fixes one face's appearance, in units of the image side."""

    cx: float
    cy: float
    a: float  # head half-width
    b_top: float  # centre to crown
    b_bot: float  # centre to chin
    jaw_n: float  # superellipse exponent of the lower face (2 round, 3 square)
    yaw: float
    eye_y: float
    eye_dx: float
    eye_w: float
    eye_h: float
    brow_gap: float
    brow_arch: float
    brow_thick: float
    nose_y: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lip_h: float
    smile: float
    hair_len: float  # 0 cropped .. 1 long past the shoulders
    hair_volume: float
    hair_density: float  # 1 full, lower for babies
    hairline: float  # recession 0 (none) .. 1 (bald crown)
    fringe: float
    wrinkle: float  # 0 smooth .. 1 deeply lined
    child: float  # 1 baby .. 0 adult
    masc: float
    skin: tuple
    hair: tuple
    iris: tuple
    clothes: tuple
    facial_hair: str  # "", "stubble", "moustache", "beard"
    makeup: bool
    glasses: bool


def _lerp(lo, hi, t):
    return lo + (hi - lo) * t


def _apparent(age, gender, rng):
    """Apparent age and gender sign (+1 male-looking), with the label noise."""
    u = rng.random()
    sign = 1.0 if gender == 0 else -1.0
    if u < _LABEL_NOISE[0]:
        return float(rng.uniform(1, 90)), sign
    if u < sum(_LABEL_NOISE):
        sign = -sign
    return float(np.clip(age * math.exp(rng.normal(0, 0.13)), 0.5, 110)), sign


def _hair_colour(race, grey, rng):
    palette = _LIGHT_HAIR if race == 0 and rng.random() < 0.45 else _DARK_HAIR
    base = np.array(palette[rng.integers(len(palette))], float) + rng.normal(0, 6, 3)
    white = rng.uniform(165, 225)
    return tuple(np.clip(_lerp(base, np.full(3, white), grey), 0, 255))


def _skin_colour(race, rng):
    tone = np.array(_SKIN_BGR[race], float) * rng.normal(1.0, 0.07)
    return tuple(np.clip(tone + rng.normal(0, 5, 3), 30, 250))


def _head_geometry(grow, old, trait, rng):
    """Head, eye, nose and mouth placement: growth sets the child proportions."""
    a = 0.265 * rng.normal(1, 0.035) * (1 + 0.03 * trait()) + 0.02 * (1 - grow)
    b_bot = a * _lerp(0.95, 1.38, grow) * rng.normal(1, 0.04) * (1 + 0.04 * old)
    cy = 0.47 - 0.05 * (b_bot - 0.3)
    eye_y = cy + a * _lerp(0.16, -0.02, grow) + rng.normal(0, 0.006)
    eye_w = a * _lerp(0.28, 0.2, grow) * rng.normal(1, 0.06) * (1 - 0.04 * trait())
    nose_y = eye_y + b_bot * _lerp(0.36, 0.5, grow) * rng.normal(1, 0.05)
    return dict(
        cx=0.5, cy=cy, a=a, b_top=a * rng.normal(1.22, 0.04), b_bot=b_bot,
        jaw_n=float(np.clip(_lerp(2.1, 2.15 + 0.45 * trait(), grow) + 0.4 * old, 1.6, 3.4)),
        yaw=float(rng.uniform(-0.6, 0.6)),
        eye_y=eye_y, eye_dx=a * rng.normal(0.43, 0.02), eye_w=eye_w,
        eye_h=eye_w * _lerp(0.62, 0.45, grow) * (1 - 0.25 * old) * rng.normal(1, 0.08),
        nose_y=nose_y, nose_w=a * _lerp(0.15, 0.2, grow) * (1 + 0.15 * old),
        mouth_y=nose_y + (cy + b_bot - nose_y) * rng.normal(0.38, 0.03),
        mouth_w=a * _lerp(0.24, 0.36, grow) * rng.normal(1, 0.06),
        lip_h=a * _lerp(0.075, 0.065, grow) * (1 - 0.45 * old) * (1 - 0.12 * trait()),
        smile=float(rng.normal(0.15, 0.3)),
    )


def _brow_shape(a, grow, brow):
    """Brows: masculine ones sit lower, flatter and thicker."""
    return dict(
        brow_gap=a * _lerp(0.26, 0.24 - 0.05 * brow, grow),
        brow_arch=a * max(_lerp(0.04, 0.05 - 0.03 * brow, grow), 0.0),
        brow_thick=max(_lerp(0.006, 0.013 + 0.005 * brow, grow), 0.004),
    )


def _hair_traits(app, old, masc, trait, race, rng):
    """Length (gender), recession and greying (age), sparse baby hair."""
    grey = float(np.clip(1 / (1 + math.exp(-((app - 52) / 7 + rng.normal(0, 0.8)))), 0, 1))
    length = 1 / (1 + math.exp(2.4 * trait(0.6) + 0.3)) * min(max(app / 7.0, 0.15), 1.0)
    recede = old * (1.25 if masc > 0 else 0.3) + rng.normal(0, 0.15)
    return dict(
        hair_len=float(length), hair_volume=float(rng.uniform(0.0, 0.08)),
        hair_density=float(min(0.3 + app / 3.0, 1.0)), hairline=float(np.clip(recede, 0, 1)),
        fringe=float(rng.uniform(0, 0.35) if rng.random() < 0.3 else 0.0),
        hair=_hair_colour(race, grey, rng),
    )


def _extras(app, masc, old, race, rng):
    """Facial hair, make-up, glasses, eye and clothing colour."""
    adult = app >= 17
    facial = ""
    if adult and masc > 0.3 and rng.random() < 0.45:
        facial = ("stubble", "moustache", "beard")[rng.integers(3)]
    iris = _EYE_LIGHT if race == 0 and rng.random() < 0.35 else _EYE_DARK
    return dict(
        facial_hair=facial, makeup=bool(adult and masc < -0.3 and rng.random() < 0.5),
        glasses=bool(app >= 6 and rng.random() < 0.05 + 0.2 * old),
        iris=iris[rng.integers(len(iris))], clothes=tuple(rng.uniform(20, 230, 3)),
        skin=_skin_colour(race, rng),
    )


def _sample_face(age, gender, race, rng):
    """Draw the appearance parameters of one face."""
    app, sign = _apparent(age, gender, rng)
    grow = min(app / 17.0, 1.0) ** 0.8
    old = float(np.clip((app - 28.0) / 50.0 + rng.normal(0, 0.06), 0, 1))
    strength = _lerp(0.25, 1.0, min(max(app - 2.0, 0.0) / 14.0, 1.0))
    masc = sign * strength + rng.normal(0, 0.65)

    def trait(scale=0.55):
        """One gender-linked trait: the shared masculinity plus its own noise."""
        return masc + rng.normal(0, scale)

    geometry = _head_geometry(grow, old, trait, rng)
    return _Face(
        **geometry, **_brow_shape(geometry["a"], grow, trait()),
        **_hair_traits(app, old, masc, trait, race, rng), **_extras(app, masc, old, race, rng),
        wrinkle=float(np.clip(old ** 1.1 * rng.normal(1, 0.2), 0, 1)), child=1.0 - grow,
        masc=float(masc),
    )


# --- drawing primitives -------------------------------------------------------


def _fix(v, size):
    return int(round(v * size * (1 << _SHIFT)))


def _pts(xy, size):
    return (np.asarray(xy) * size * (1 << _SHIFT)).round().astype(np.int32)


def _px(t, size):
    """Line thickness in whole pixels for a thickness ``t`` in image units."""
    return max(1, int(round(t * size)))


def _ellipse(img, c, axes, color, size, thickness=-1, angle=0.0, arc=(0, 360)):
    cv2.ellipse(img, (_fix(c[0], size), _fix(c[1], size)),
                (max(_fix(axes[0], size), 1), max(_fix(axes[1], size), 1)),
                angle, arc[0], arc[1], color, thickness, cv2.LINE_AA, _SHIFT)


def _poly(img, xy, color, size, thickness=-1, closed=False):
    pts = [_pts(xy, size)]
    if thickness < 0:
        cv2.fillPoly(img, pts, color, cv2.LINE_AA, _SHIFT)
    else:
        cv2.polylines(img, pts, closed, color, thickness, cv2.LINE_AA, _SHIFT)


def _masked_update(img, mask, alpha, update):
    """Replace ``img`` in place by ``update(region, weight)`` where ``mask`` (uint8) is set."""
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0 or h == 0:
        return
    roi = img[y:y + h, x:x + w].astype(np.float32)
    weight = mask[y:y + h, x:x + w, None].astype(np.float32) * (alpha / 255.0)
    img[y:y + h, x:x + w] = np.clip(update(roi, weight) + 0.5, 0, 255).astype(np.uint8)


def _blend(img, mask, color, alpha=1.0):
    """Paint ``color`` over ``img`` in place where ``mask`` (uint8) is set."""
    color = np.asarray(color, np.float32)
    _masked_update(img, mask, alpha, lambda roi, weight: roi + (color - roi) * weight)


def _shade(img, mask, factor, alpha=1.0):
    """Multiply ``img`` by ``factor`` in place where ``mask`` is set."""
    factor = np.asarray(factor, np.float32)
    _masked_update(img, mask, alpha, lambda roi, weight: roi * (1.0 - weight * (1.0 - factor)))


def _scaled(color, factor):
    return tuple(float(min(c * f, 255.0)) for c, f in zip(color, np.broadcast_to(factor, 3)))


# --- face parts ---------------------------------------------------------------


def _head_outline(f, n_points=64):
    """Closed head contour: elliptic cranium, superellipse lower face."""
    t = np.linspace(0, 2 * np.pi, n_points, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    lower = s > 0
    e = np.where(lower, 2.0 / f.jaw_n, 1.0)
    x = f.a * np.sign(c) * np.abs(c) ** e
    y = np.where(lower, f.b_bot, f.b_top) * np.sign(s) * np.abs(s) ** e
    return np.column_stack([f.cx + x, f.cy + y])


def _gradient(size, theta):
    """float32 (size, size) ramp from -1 to 1 (about) along direction ``theta``."""
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    return np.float32(np.cos(theta)) * ramp[None, :] + np.float32(np.sin(theta)) * ramp[:, None]


def _draw_background(img, rng, size):
    c0, c1 = rng.uniform(30, 235, 3).astype(np.float32), rng.uniform(30, 235, 3)
    t = _gradient(size, rng.uniform(0, 2 * np.pi))[..., None] * 0.5 + 0.5
    img[:] = np.clip(c0 + (c1 - c0).astype(np.float32) * t, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(0, 4)):
        colour = tuple(rng.uniform(20, 235, 3))
        c, axes = rng.uniform(0, 1, 2), rng.uniform(0.05, 0.3, 2)
        _ellipse(img, c, axes, colour, size, angle=float(rng.uniform(0, 180)))


def _draw_body(img, f, size):
    neck_w = f.a * (0.52 + 0.05 * f.masc)
    neck_top = f.cy + f.b_bot * 0.5
    _poly(img, [(f.cx - neck_w, neck_top), (f.cx + neck_w, neck_top),
                (f.cx + neck_w * 1.1, 1.05), (f.cx - neck_w * 1.1, 1.05)],
          _scaled(f.skin, 0.82), size)
    shoulder = (0.42 + 0.04 * f.masc) * (1 - 0.3 * f.child)
    _ellipse(img, (f.cx, f.cy + f.b_bot + 0.3), (shoulder, 0.2), f.clothes, size)


def _draw_back_hair(img, f, size):
    if f.hair_len < 0.2 or f.hair_density < 0.6:
        return
    w = f.a * (1.18 + 0.25 * f.hair_len + f.hair_volume)
    top = f.b_top * 1.1 + f.hair_volume * 0.5
    end = f.cy + f.b_bot * (0.2 + 2.2 * f.hair_len)
    t = np.linspace(np.pi, 2 * np.pi, 24)
    crown = np.column_stack([f.cx + w * np.cos(t), f.cy + top * np.sin(t)])
    tips = np.column_stack([f.cx + w * np.cos(t[::-1]) * 0.95, end + 0.03 * np.sin(t[::-1])])
    _poly(img, np.vstack([crown, tips]), _scaled(f.hair, 0.85), size)


def _draw_ears(img, f, size):
    for side in (-1, 1):
        width = f.a * 0.13 * (1 + 0.6 * side * f.yaw)
        c = (f.cx + side * f.a * 0.97, f.eye_y + (f.nose_y - f.eye_y) * 0.45)
        _ellipse(img, c, (width, f.b_bot * 0.22), _scaled(f.skin, 0.92), size)


def _draw_head(img, f, size):
    _poly(img, _head_outline(f), f.skin, size)


def _hairline(f, x):
    """Height of the hairline above the head centre at horizontal offsets ``x``."""
    u = np.abs(x - f.cx) / f.a
    mid = f.cy - f.b_top * (0.5 + 0.62 * f.hairline - f.fringe)
    side = f.cy - f.b_top * (0.08 + 0.3 * f.hairline ** 2)
    temples = 0.35 * f.b_top * f.hairline * np.exp(-((u - 0.6) / 0.22) ** 2)
    return mid + (side - mid) * u ** 2.5 - temples


def _draw_hair_cap(img, f, size):
    vol = np.zeros(img.shape[:2], np.uint8)
    _ellipse(vol, (f.cx, f.cy - 0.06 * f.b_top),
             (f.a * (1.06 + f.hair_volume), f.b_top * 1.05 + 0.5 * f.hair_volume), 255, size)
    x = np.linspace(f.cx - 1.4 * f.a, f.cx + 1.4 * f.a, 40)
    below = np.zeros_like(vol)
    face_part = np.column_stack([x, _hairline(f, x)])
    _poly(below, np.vstack([face_part, [(x[-1], 1.2), (x[0], 1.2)]]), 255, size)
    _blend(img, cv2.subtract(vol, below), f.hair, f.hair_density)


def _draw_eyes(img, f, size, rng):
    white = (223, 226, 228)
    gaze = rng.normal(0, 0.25, 2)
    lid = _px(0.008 + (0.006 if f.makeup else 0.0), size)
    for side in (-1, 1):
        c = (f.cx + side * f.eye_dx + f.yaw * f.a * 0.22, f.eye_y)
        w = f.eye_w * (1 + 0.25 * side * f.yaw)
        _ellipse(img, c, (w, f.eye_h), white, size)
        iris = (c[0] + gaze[0] * w * 0.4, c[1] + gaze[1] * f.eye_h * 0.2)
        _ellipse(img, iris, (f.eye_h * 0.9, f.eye_h * 0.9), f.iris, size)
        _ellipse(img, iris, (f.eye_h * 0.4, f.eye_h * 0.4), (10, 10, 10), size)
        _ellipse(img, c, (w, f.eye_h), (25, 25, 30), size, lid, arc=(180, 360))
        _ellipse(img, c, (w, f.eye_h), _scaled(f.skin, 0.6), size, 1, arc=(20, 160))


def _draw_brows(img, f, size):
    colour = _scaled(f.hair, 0.8) if f.hair_density > 0.6 else _scaled(f.skin, 0.7)
    for side in (-1, 1):
        c = f.cx + side * f.eye_dx + f.yaw * f.a * 0.2
        half = f.eye_w * (1.2 + 0.25 * side * f.yaw)
        x = np.linspace(-1, 1, 9)
        y = f.eye_y - f.brow_gap - f.brow_arch * (1 - (x + 0.25 * side) ** 2)
        _poly(img, np.column_stack([c + half * x, y]), colour, size, _px(f.brow_thick, size))


def _draw_nose(img, f, size):
    tip = f.cx + f.yaw * f.a * 0.35
    dark = _scaled(f.skin, 0.62)
    _poly(img, [(f.cx + f.yaw * f.a * 0.15 - 0.25 * f.nose_w, f.eye_y + f.eye_h),
                (tip - 0.45 * f.nose_w, f.nose_y - 0.3 * f.nose_w)], _scaled(f.skin, 0.85),
          size, 1)
    for side in (-1, 1):
        _ellipse(img, (tip + side * f.nose_w * 0.45, f.nose_y), (f.nose_w * 0.22, f.nose_w * 0.12),
                 dark, size)
    _ellipse(img, (tip, f.nose_y - 0.1 * f.nose_w), (f.nose_w * 0.8, f.nose_w * 0.4), dark, size,
             1, arc=(20, 160))


def _draw_mouth(img, f, size):
    c = (f.cx + f.yaw * f.a * 0.2, f.mouth_y)
    lips = (60, 50, 170) if f.makeup else _scaled(f.skin, (0.72, 0.68, 0.95))
    _ellipse(img, c, (f.mouth_w * 0.95, f.lip_h), lips, size, arc=(180, 360))
    _ellipse(img, c, (f.mouth_w * 0.85, f.lip_h * 1.25), lips, size, arc=(0, 180))
    x = np.linspace(-1, 1, 11)
    y = c[1] - f.smile * f.lip_h * (x ** 2 - 0.3)
    _poly(img, np.column_stack([c[0] + f.mouth_w * x, y]), _scaled(f.skin, 0.4), size, 1)


def _wrinkle_mask(f, size, rng):
    """Lines that deepen with age: forehead, crow's feet, folds, bags."""
    mask = np.zeros((size, size), np.uint8)
    w = f.wrinkle
    if w <= 0.02:
        return mask
    top = _hairline(f, np.array([f.cx]))[0]
    brow = f.eye_y - f.brow_gap - f.brow_arch
    for k in range(int(1 + 5 * w)):
        y = brow - (k + 1) * (brow - top) / (int(1 + 5 * w) + 1)
        x = np.linspace(-0.5, 0.5, 7) * f.a * rng.uniform(0.8, 1.2)
        _poly(mask, np.column_stack([f.cx + x, y + 0.01 * x ** 2 / f.a]), 255, size, 1)
    for side in (-1, 1):
        corner = f.cx + side * (f.eye_dx + f.eye_w * 1.1)
        for k in range(int(1 + 3 * w)):
            ang = (k - 1) * 0.35
            end = (corner + side * 0.04 * math.cos(ang), f.eye_y + 0.04 * math.sin(ang))
            _poly(mask, [(corner, f.eye_y), end], 255, size, 1)
        wing = (f.cx + side * f.nose_w * 1.2, f.nose_y - f.nose_w * 0.3)
        _poly(mask, [wing, (wing[0] + side * 0.015, f.nose_y + 0.02),
                     (f.cx + side * f.mouth_w * 1.2, f.mouth_y + 0.02)], 255, size, 1)
        _ellipse(mask, (f.cx + side * f.eye_dx, f.eye_y + f.eye_h), (f.eye_w * 0.8, f.eye_h),
                 255, size, 1, arc=(20, 160))
        if w > 0.5:
            corner = (f.cx + side * f.mouth_w, f.mouth_y)
            _poly(mask, [corner, (corner[0] + side * 0.01, corner[1] + 0.06)], 255, size, 1)
    return mask


def _draw_skin_texture(img, f, size, rng):
    mask = np.zeros((size, size), np.uint8)
    _poly(mask, _head_outline(f), 255, size)
    amp = 3 + 12 * f.wrinkle
    blotch = cv2.resize(rng.normal(0, amp, (6, 6)).astype(np.float32), (size, size),
                        interpolation=cv2.INTER_CUBIC)
    grain = rng.standard_normal((size, size), dtype=np.float32) * (1 + 6 * f.wrinkle)
    m = mask.astype(np.float32) * np.float32(1 / 255)
    out = img.astype(np.float32) + (m * (blotch + grain))[..., None]
    img[:] = np.clip(out, 0, 255).astype(np.uint8)
    spots = np.zeros_like(mask)
    for _ in range(rng.poisson(6 * max(f.wrinkle - 0.4, 0))):
        c = (f.cx + rng.uniform(-0.7, 0.7) * f.a, f.cy + rng.uniform(-0.9, 0.6) * f.b_top)
        r = rng.uniform(0.005, 0.012)
        _ellipse(spots, c, (r, r), 255, size)
    _shade(img, spots, (0.75, 0.8, 0.88))


def _draw_cheeks(img, f, size):
    strength = 0.35 * f.child + (0.2 if f.makeup else 0.0)
    if strength < 0.05:
        return
    mask = np.zeros(img.shape[:2], np.uint8)
    for side in (-1, 1):
        c = (f.cx + side * f.a * 0.55, f.nose_y)
        _ellipse(mask, c, (f.a * 0.2, f.a * 0.15), 255, size)
    mask = cv2.GaussianBlur(mask, (0, 0), max(size / 64, 1.0))
    _blend(img, mask, (90, 90, 220), strength)


def _draw_facial_hair(img, f, size, rng):
    if not f.facial_hair:
        return
    mask = np.zeros(img.shape[:2], np.uint8)
    outline = _head_outline(f)
    if f.facial_hair in ("stubble", "beard"):
        low = outline[outline[:, 1] > f.nose_y + 0.2 * (f.mouth_y - f.nose_y)]
        _poly(mask, low, 255, size)  # the lower contour, closed by a chord
    _ellipse(mask, (f.cx, (f.nose_y + f.mouth_y) / 2 + 0.005),
             (f.mouth_w * 1.05, (f.mouth_y - f.nose_y) * 0.45), 255, size)
    _ellipse(mask, (f.cx, f.mouth_y), (f.mouth_w * 0.8, f.lip_h * 1.1), 0, size)
    if f.facial_hair == "stubble":
        speckle = (rng.random(mask.shape) < 0.6).astype(np.uint8)
        _shade(img, mask * speckle, 0.72, 0.8)
    else:
        _blend(img, mask, f.hair, 0.9)


def _draw_glasses(img, f, size):
    if not f.glasses:
        return
    frame = (30, 30, 30)
    r = f.eye_w * 1.45
    for side in (-1, 1):
        c = (f.cx + side * f.eye_dx + f.yaw * f.a * 0.22, f.eye_y)
        _ellipse(img, c, (r, r * 0.75), frame, size, _px(0.01, size))
    left = f.cx - f.eye_dx + f.yaw * f.a * 0.22 + r
    _poly(img, [(left, f.eye_y), (left + 2 * (f.eye_dx - r), f.eye_y)], frame, size,
          _px(0.01, size))


def _compose(f, rng, size):
    img = np.zeros((size, size, 3), np.uint8)
    _draw_background(img, rng, size)
    _draw_back_hair(img, f, size)
    _draw_body(img, f, size)
    _draw_ears(img, f, size)
    _draw_head(img, f, size)
    _draw_skin_texture(img, f, size, rng)
    _draw_cheeks(img, f, size)
    _shade(img, _wrinkle_mask(f, size, rng), 0.55, 0.35 + 0.55 * f.wrinkle)
    _draw_facial_hair(img, f, size, rng)
    _draw_hair_cap(img, f, size)
    _draw_eyes(img, f, size, rng)
    _draw_brows(img, f, size)
    _draw_nose(img, f, size)
    _draw_mouth(img, f, size)
    _draw_glasses(img, f, size)
    return img


# --- nuisances ----------------------------------------------------------------


def _warp(img, rng):
    """Roll, scale and translation jitter."""
    size = img.shape[0]
    angle = float(np.clip(rng.normal(0, 6), -15, 15))
    scale = float(rng.uniform(0.9, 1.12))
    m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    m[:, 2] += rng.normal(0, 0.03 * size, 2)
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


def _light(img, rng):
    """Directional lighting, global gain and a colour cast."""
    field = _gradient(img.shape[0], rng.uniform(0, 2 * np.pi))
    gain = rng.uniform(0.75, 1.15) * (1 + rng.uniform(0, 0.3) * field)
    cast = rng.normal(1, 0.04, 3).astype(np.float32)
    return img.astype(np.float32) * gain[..., None] * cast


def _degrade(img, rng):
    """Low resolution, blur and sensor noise; returns uint8."""
    size = img.shape[0]
    if rng.random() < 0.2:
        small = max(int(size / rng.uniform(1.5, 3)), 8)
        img = cv2.resize(cv2.resize(img, (small, small), interpolation=cv2.INTER_AREA),
                         (size, size), interpolation=cv2.INTER_LINEAR)
    sigma = rng.uniform(0, 1.1) * size / 128
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = img + rng.standard_normal(img.shape, dtype=np.float32) * rng.uniform(1, 7)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def draw_face(age: int, gender: int, race: int, rng: np.random.Generator,
              size: int = 128) -> np.ndarray:
    """Draw one synthetic cartoon face whose looks depend on its labels.

    Parameters
    ----------
    age : int
        Age in years, 0-116.
    gender : int
        0 male, 1 female (UTKFace codes).
    race : int
        0 white, 1 black, 2 asian, 3 indian, 4 others (UTKFace codes); changes
        only skin tone and the hair and eye colour palette.
    rng : numpy.random.Generator
        Source of all randomness; the same generator state gives the same image.
    size : int, default 128
        Side of the square image in pixels, at least 32.

    Returns
    -------
    ndarray of shape (size, size, 3), dtype uint8
        The image in OpenCV's BGR channel order.

    Notes
    -----
    About 4 % of calls draw the face at a random age (2 %) or with the other
    gender's appearance (2 %): the label noise described in the module
    docstring. The caller keeps the true labels.
    """
    if not 0 <= age <= 116:
        raise ValueError(f"age must be in 0-116, got {age}")
    if gender not in (0, 1):
        raise ValueError(f"gender must be 0 (male) or 1 (female), got {gender}")
    if not 0 <= race < len(_RACE_SHARE):
        raise ValueError(f"race must be in 0-4, got {race}")
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    face = _sample_face(int(age), int(gender), int(race), rng)
    img = _compose(face, rng, size)
    return _degrade(_light(_warp(img, rng), rng), rng)


# --- writing ------------------------------------------------------------------


def _timestamps(seed: int, n: int) -> list[str]:
    """Deterministic, strictly increasing 17-digit ``YYYYMMDDHHMMSSfff`` stamps."""
    offset = int(np.random.SeedSequence(seed).generate_state(1)[0])
    start = datetime.datetime(2016, 1, 1) + datetime.timedelta(seconds=offset % (730 * 86400))
    stamps = []
    for i in range(n):
        t = start + datetime.timedelta(seconds=i, milliseconds=(i * 7919 + offset) % 1000)
        stamps.append(t.strftime("%Y%m%d%H%M%S") + f"{t.microsecond // 1000:03d}")
    return stamps


def _write_jpeg(path: pathlib.Path, img: np.ndarray) -> None:
    """Encode and write ``img`` via a temporary name, so no half-written file appears."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise OSError(f"could not encode {path.name} as JPEG")
    atomic_write_bytes(path, buf.tobytes())


def _write_chunk(rows, out_dir: pathlib.Path, size: int) -> list[pathlib.Path]:
    paths = []
    for age, gender, race, stamp, seq in rows:
        img = draw_face(age, gender, race, np.random.default_rng(seq), size)
        path = out_dir / f"{age}_{gender}_{race}_{stamp}{_NAME_SUFFIX}"
        _write_jpeg(path, img)
        paths.append(path)
    return paths


def _resolve_jobs(n: int, n_jobs: int | None) -> int:
    if n_jobs is None:
        return 1 if n < 1000 else min(usable_cores(), 8)
    return resolve_n_jobs(n_jobs) if n_jobs else 1


def write_synthetic(out_dir, n: int = 2000, seed: int = 0, size: int = 128,
                    n_jobs: int | None = None) -> list[pathlib.Path]:
    """Write ``n`` synthetic cartoon faces as UTKFace-named JPEG chips.

    Files are named ``{age}_{gender}_{race}_{YYYYMMDDHHMMSSfff}.jpg.chip.jpg``;
    the 17-digit stamp is derived from ``seed`` and the image index and is unique
    within one call. Each file is written under a temporary name and renamed.

    Parameters
    ----------
    out_dir : str or path-like
        Folder to write into; created if missing. Files of the same name are
        replaced, other files are left alone.
    n : int, default 2000
        Number of images.
    seed : int, default 0
        Non-negative seed. Same ``(n, seed, size)`` gives byte-identical files.
    size : int, default 128
        Side of the square images in pixels.
    n_jobs : int or None, default None
        Worker processes (joblib). ``None``: one for ``n < 1000``, else one per
        CPU (at most 8); negative counts back from the CPU count as in joblib.
        The files do not depend on it.

    Returns
    -------
    list of pathlib.Path
        The written files, in index order.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    label_seq, image_seq = np.random.SeedSequence(seed).spawn(2)
    labels = sample_labels(n, np.random.default_rng(label_seq))
    rows = list(zip(labels["age"].tolist(), labels["gender"].tolist(),
                    labels["race"].tolist(), _timestamps(seed, n), image_seq.spawn(n)))
    jobs = _resolve_jobs(n, n_jobs)
    if jobs == 1 or n < 2:
        return _write_chunk(rows, out, size)
    step = math.ceil(n / (4 * jobs))
    chunks = [rows[i:i + step] for i in range(0, n, step)]
    done = Parallel(n_jobs=jobs)(delayed(_write_chunk)(c, out, size) for c in chunks)
    return [p for chunk in done for p in chunk]
