"""Decoding: sizes, colour, the reduced-scale path, and the on-disk cache."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from PIL import Image

import facebench.data.decoding as decode_mod
from facebench.data import decode, decode_one


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(6):
        arr = cv2.GaussianBlur(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8), (9, 9), 3)
        p = tmp_path / f"{20 + i}_0_0_2017010100000000{i}.jpg"
        Image.fromarray(arr).save(p, quality=95)
        paths.append(p)
    return paths


def test_shapes_and_dtype(images, tmp_path):
    gray = decode(images, size=64, cache_dir=tmp_path / "c")
    rgb = decode(images, size=48, color="rgb", cache_dir=tmp_path / "c")
    assert gray.shape == (6, 64, 64) and gray.dtype == np.uint8
    assert rgb.shape == (6, 48, 48, 3) and rgb.dtype == np.uint8


def test_reduced_decode_matches_full_decode_closely(images):
    """The 1/2-scale JPEG path must describe the same picture as full decode + area resize."""
    fast = decode_one(images[0], 64, "gray", source_size=(200, 200))
    full = cv2.resize(cv2.imread(str(images[0]), cv2.IMREAD_GRAYSCALE), (64, 64), interpolation=cv2.INTER_AREA)
    assert np.abs(fast.astype(int) - full.astype(int)).mean() < 3.0


def test_rgb_order_is_rgb(tmp_path):
    p = tmp_path / "red.png"
    Image.new("RGB", (40, 40), (255, 0, 0)).save(p)
    out = decode_one(p, 16, "rgb")
    assert tuple(out[8, 8]) == (255, 0, 0)


def test_non_square_is_centre_cropped(tmp_path):
    arr = np.zeros((40, 120), np.uint8)
    arr[:, 40:80] = 255  # the centre square is white, the sides black
    p = tmp_path / "wide.png"
    Image.fromarray(arr).save(p)
    assert decode_one(p, 20, "gray").min() == 255


def test_bad_parameters_name_the_value(images):
    with pytest.raises(ValueError, match="color='cmyk'"):
        decode(images, color="cmyk", cache_dir=False)
    with pytest.raises(ValueError, match="size=2"):
        decode(images, size=2, cache_dir=False)


def test_second_run_decodes_nothing(images, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = np.array(decode(images, size=32, cache_dir=cache))

    def boom(*a, **k):
        raise AssertionError("decoded again despite a valid cache")

    monkeypatch.setattr(decode_mod, "_decode_all", boom)
    second = decode(images, size=32, cache_dir=cache)
    assert isinstance(second, np.memmap)
    np.testing.assert_array_equal(first, second)


def test_cache_key_changes_with_files_and_parameters(images):
    key = decode_mod.cache_key([str(p) for p in images], 32, "gray")
    assert key != decode_mod.cache_key([str(p) for p in images], 48, "gray")
    assert key != decode_mod.cache_key([str(p) for p in images], 32, "rgb")
    assert key != decode_mod.cache_key([str(p) for p in images[:-1]], 32, "gray")
    assert key != decode_mod.cache_key([str(p) for p in reversed(images)], 32, "gray")
    os.utime(images[2], ns=(10**9, 10**9))
    assert key != decode_mod.cache_key([str(p) for p in images], 32, "gray")


def test_modified_file_invalidates_cache(images, tmp_path):
    cache = tmp_path / "cache"
    before = np.array(decode(images, size=32, cache_dir=cache))
    Image.new("RGB", (200, 200), (0, 0, 0)).save(images[1])
    os.utime(images[1], ns=(5 * 10**9, 5 * 10**9))
    after = decode(images, size=32, cache_dir=cache)
    assert after[1].max() == 0 and before[1].max() > 0
    np.testing.assert_array_equal(before[0], after[0])


def test_interrupted_cache_write_leaves_no_trusted_cache(images, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    real_save = np.save

    def dying_save(fh, arr, **kw):
        fh.write(b"\x93NUMPY partial")
        raise KeyboardInterrupt  # the user pressed Ctrl-C in the middle of the write

    monkeypatch.setattr(np, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        decode(images, size=32, cache_dir=cache)
    monkeypatch.setattr(np, "save", real_save)
    assert list((cache / "decode").glob("*")) == []  # no half file, no temp file left
    calls = []
    real = decode_mod._decode_all
    monkeypatch.setattr(decode_mod, "_decode_all", lambda *a: calls.append(1) or real(*a))
    out = decode(images, size=32, cache_dir=cache)
    assert calls == [1] and out.shape == (6, 32, 32)


def test_corrupt_cache_file_is_not_trusted(images, tmp_path):
    cache = tmp_path / "cache"
    good = np.array(decode(images, size=32, cache_dir=cache))
    (f,) = (cache / "decode").glob("*.npy")
    f.write_bytes(b"garbage")
    np.testing.assert_array_equal(decode(images, size=32, cache_dir=cache), good)


def test_file_broken_after_scan_becomes_black_not_crash(images, tmp_path, caplog):
    images[3].write_bytes(b"not an image any more")
    out = decode(images, size=32, cache_dir=False)
    assert out[3].max() == 0 and out[0].max() > 0
    assert "could not decode" in caplog.text
