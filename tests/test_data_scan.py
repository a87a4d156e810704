"""Scanning, labels and the audit: every kind of bad and odd file ends where it belongs."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from facebench.data import LabelError, load_dataset, parse_utkface_name, validate_labels
from facebench.errors import UserError

STAMP = "20170116174525125"


def _face(seed: int, size=(48, 48), mode="RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(arr).convert(mode)


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize(
    "name, expected",
    [
        (f"25_1_2_{STAMP}.jpg.chip.jpg", (25, 1, 2)),
        (f"0_0_0_{STAMP}.jpg", (0, 0, 0)),
        (f"116_0_4_{STAMP}.png", (116, 0, 4)),
        (f"1_1_3_{STAMP}.JPG", (1, 1, 3)),
    ],
)
def test_parse_valid_names(name, expected):
    labels = parse_utkface_name(name)
    assert (labels.age, labels.gender, labels.race) == expected


@pytest.mark.parametrize(
    "name, reason",
    [
        ("39_1_20170116174525125.jpg.chip.jpg", "3 underscore-separated field"),  # the real malformed files
        (f"117_0_0_{STAMP}.jpg", "age 117 is outside 0-116"),
        (f"30_2_0_{STAMP}.jpg", "gender 2 is not 0"),
        (f"30_0_5_{STAMP}.jpg", "race 5 is outside 0-4"),
        (f"x_0_0_{STAMP}.jpg", "age 'x' is not a whole number"),
        (f"-3_0_0_{STAMP}.jpg", "age '-3' is not a whole number"),
        ("30_0_0_2017x.jpg", "datetime field"),
        ("face.jpg", "1 underscore-separated field"),
    ],
)
def test_parse_rejects_with_reason(name, reason):
    with pytest.raises(LabelError, match=reason):
        parse_utkface_name(name)


def test_validate_labels_allows_missing_race():
    assert validate_labels("7", "1", None).race is None


# --------------------------------------------------------------------------- the zoo folder


@pytest.fixture
def zoo(tmp_path):
    """A folder with one file of every kind the scan must handle."""
    root = tmp_path / "faces"
    root.mkdir()
    ok = {}

    def save(name, img, **kw):
        img.save(root / name, **kw)
        return name

    ok["good"] = save(f"30_0_0_{STAMP}.jpg.chip.jpg", _face(1), format="JPEG")
    ok["upper"] = save(f"31_1_1_{STAMP}.JPG", _face(2), format="JPEG")
    ok["jpeg"] = save(f"32_0_2_{STAMP}.jpeg", _face(3), format="JPEG")
    ok["gray"] = save(f"33_1_3_{STAMP}.jpg", _face(4, mode="L"), format="JPEG")
    ok["cmyk"] = save(f"34_0_4_{STAMP}.jpg", _face(5, mode="CMYK"), format="JPEG")
    ok["rgba"] = save(f"35_1_0_{STAMP}.png", _face(6, mode="RGBA"), format="PNG")
    ok["palette"] = save(f"36_0_1_{STAMP}.png", _face(7, mode="P"), format="PNG")
    ok["png_as_jpg"] = save(f"37_1_2_{STAMP}.jpg", _face(8), format="PNG")
    ok["tiny"] = save(f"38_0_3_{STAMP}.jpg", _face(9, size=(4, 4)), format="JPEG")
    ok["huge"] = save(f"39_1_4_{STAMP}.jpg", _face(10, size=(2400, 1800)), format="JPEG", quality=30)
    ok["wide"] = save(f"40_0_0_{STAMP}.png", _face(11, size=(90, 40)), format="PNG")
    sub = root / "part2"
    sub.mkdir()
    _face(12).save(sub / f"41_1_1_{STAMP}.jpg", format="JPEG")
    ok["sub"] = f"part2/41_1_1_{STAMP}.jpg"

    bad = {}
    bad["39_1_20170116174525125.jpg.chip.jpg"] = "bad label: name has 3"
    _face(20).save(root / "39_1_20170116174525125.jpg.chip.jpg", format="JPEG")
    bad[f"150_0_0_{STAMP}.jpg"] = "age 150 is outside"
    _face(21).save(root / f"150_0_0_{STAMP}.jpg", format="JPEG")
    bad["notes.txt"] = "not an image file (extension .txt)"
    (root / "notes.txt").write_text("hello")
    bad[f"50_0_0_{STAMP}.jpg"] = "not a decodable image"
    (root / f"50_0_0_{STAMP}.jpg").write_text("this is text, not a JPEG")
    bad[f"51_0_0_{STAMP}.jpg"] = "empty file"
    (root / f"51_0_0_{STAMP}.jpg").write_bytes(b"")
    full = root / "full.tmp"
    _face(22, size=(120, 120)).save(full, format="JPEG")
    (root / f"52_0_0_{STAMP}.jpg").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    full.unlink()
    bad[f"52_0_0_{STAMP}.jpg"] = "truncated image"
    Image.new("1", (8000, 8000)).save(root / f"53_0_0_{STAMP}.png")  # 64 MP in a few KB
    bad[f"53_0_0_{STAMP}.png"] = "decompression bomb"
    outside = tmp_path / f"54_0_0_{STAMP}.jpg"
    _face(23).save(outside, format="JPEG")
    os.symlink(outside, root / f"54_0_0_{STAMP}.jpg")
    bad[f"54_0_0_{STAMP}.jpg"] = "symlink points outside"
    os.symlink(root / f"55_0_0_{STAMP}.jpg", root / f"55_0_0_{STAMP}.jpg")
    bad[f"55_0_0_{STAMP}.jpg"] = "symlink loop"
    os.symlink(root / "missing.jpg", root / f"56_0_0_{STAMP}.jpg")
    bad[f"56_0_0_{STAMP}.jpg"] = "broken symlink"
    os.mkfifo(root / f"57_0_0_{STAMP}.jpg")
    bad[f"57_0_0_{STAMP}.jpg"] = "not a regular file"
    # exact duplicates: same labels -> keep first; different labels -> exclude both
    shutil.copy(root / ok["good"], root / f"30_0_0_{STAMP}9.jpg.chip.jpg")
    bad[f"30_0_0_{STAMP}9.jpg.chip.jpg"] = f"exact duplicate of {ok['good']}"
    _face(30).save(root / f"60_0_0_{STAMP}.png", format="PNG")
    shutil.copy(root / f"60_0_0_{STAMP}.png", root / f"61_1_0_{STAMP}.png")
    bad[f"60_0_0_{STAMP}.png"] = "disagreeing labels"
    bad[f"61_1_0_{STAMP}.png"] = "disagreeing labels"
    # an inside symlink to a good file is followed (and is then a same-label duplicate)
    os.symlink(root / ok["jpeg"], root / f"32_0_2_{STAMP}1.jpeg")
    bad[f"32_0_2_{STAMP}1.jpeg"] = f"exact duplicate of {ok['jpeg']}"
    (root / ".hidden").mkdir()
    _face(31).save(root / ".hidden" / f"62_0_0_{STAMP}.jpg", format="JPEG")
    return root, ok, bad


def test_zoo_every_file_lands_where_it_belongs(zoo, tmp_path):
    root, ok, bad = zoo
    ds = load_dataset(root, cache_dir=tmp_path / "cache")
    used = set(ds.table["image_id"])
    assert used == set(ok.values())
    reasons = {s["file"]: s["reason"] for s in ds.audit["skipped"]}
    assert set(reasons) == set(bad)
    for name, expected in bad.items():
        assert expected in reasons[name], (name, reasons[name])
    assert ds.audit["used"] == len(ok)
    assert ds.audit["found"] == len(ok) + len(bad)
    assert [n["file"] for n in ds.audit["not_used"]] == [".hidden"]
    actions = sorted(d["action"].split(":")[0] for d in ds.audit["duplicates"])
    assert actions == ["same pixels, labels disagree", "same pixels, same labels", "same pixels, same labels"]


def test_zoo_table_contract(zoo, tmp_path):
    root, ok, _ = zoo
    ds = load_dataset(root, cache_dir=False)
    t = ds.table
    assert list(t.columns[:5]) == ["image_id", "path", "age", "gender", "race"]
    assert t["age"].between(0, 116).all() and set(t["gender"]) <= {0, 1}
    assert str(t["race"].dtype) == "Int64"
    huge = t.set_index("image_id").loc[ok["huge"]]
    assert (huge.width, huge.height) == (2400, 1800)
    assert all(os.path.isabs(p) for p in t["path"])


def test_zoo_odd_images_decode(zoo):
    from facebench.data import decode

    root, ok, _ = zoo
    ds = load_dataset(root, cache_dir=False)
    gray = decode(ds, size=32, cache_dir=False)
    rgb = decode(ds, size=32, color="rgb", cache_dir=False)
    assert gray.shape == (len(ok), 32, 32) and rgb.shape == (len(ok), 32, 32, 3)
    assert gray.dtype == np.uint8
    assert (gray.reshape(len(ok), -1).std(axis=1) > 0).all()  # every odd image gave real pixels


def test_unreadable_file_is_skipped(tmp_path, monkeypatch):
    root = tmp_path / "f"
    root.mkdir()
    _face(1).save(root / f"30_0_0_{STAMP}.jpg", format="JPEG")
    _face(2).save(root / f"31_0_0_{STAMP}.jpg", format="JPEG")
    import builtins

    real_open = builtins.open

    def guarded(file, *a, **kw):  # root can read anything, so simulate a permission error
        if str(file).endswith(f"31_0_0_{STAMP}.jpg"):
            raise PermissionError(13, "Permission denied")
        return real_open(file, *a, **kw)

    monkeypatch.setattr(builtins, "open", guarded)
    ds = load_dataset(root, cache_dir=False)
    assert len(ds.table) == 1
    assert ds.audit["skipped"] == [{"file": f"31_0_0_{STAMP}.jpg", "reason": "cannot read: Permission denied"}]


def test_folder_without_usable_images_is_a_user_error(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    (tmp_path / f"200_0_0_{STAMP}.jpg").write_bytes(b"")
    with pytest.raises(UserError, match="no usable image"):
        load_dataset(tmp_path, cache_dir=False)


def test_missing_path_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_dataset(tmp_path / "nope")


def test_scan_cache_is_reused_and_invalidated(tmp_path, monkeypatch):
    root = tmp_path / "f"
    root.mkdir()
    for i in range(3):
        _face(i).save(root / f"3{i}_0_0_{STAMP}.jpg", format="JPEG")
    cache = tmp_path / "cache"
    load_dataset(root, cache_dir=cache)
    import facebench.data.scan as scan

    calls = []
    real = scan.check_image
    monkeypatch.setattr(scan, "check_image", lambda p: calls.append(p) or real(p))
    load_dataset(root, cache_dir=cache)
    assert calls == []
    changed = root / f"31_0_0_{STAMP}.jpg"
    _face(99).save(changed, format="JPEG")
    os.utime(changed, ns=(1, 1))
    load_dataset(root, cache_dir=cache)
    assert calls == [str(changed.absolute())]


# --------------------------------------------------------------------------- manifest


def test_manifest(tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(3):
        _face(i).save(imgs / f"a{i}.jpg", format="JPEG")
    (tmp_path / "list.csv").write_text(
        "path,age,gender,race\n"
        "imgs/a0.jpg,20,0,1\n"
        "imgs/a1.jpg,21,1,\n"
        "imgs/a2.jpg,300,1,0\n"
        "imgs/missing.jpg,22,0,0\n"
    )
    ds = load_dataset(tmp_path / "list.csv", cache_dir=False)
    assert list(ds.table["image_id"]) == ["imgs/a0.jpg", "imgs/a1.jpg"]
    assert ds.table["race"].isna().tolist() == [False, True]
    reasons = {s["file"]: s["reason"] for s in ds.audit["skipped"]}
    assert "age 300 is outside" in reasons["imgs/a2.jpg (line 4)"]
    assert reasons["imgs/missing.jpg (line 5)"] == "file not found"
    assert ds.audit["source"] == "manifest"


def test_a_row_listed_twice_is_not_a_duplicate_of_itself(tmp_path):
    _face(0).save(tmp_path / "a.png", format="PNG")
    (tmp_path / "m.csv").write_text("path,age,gender\na.png,40,1\na.png,40,1\n./a.png,41,1\n")
    ds = load_dataset(tmp_path / "m.csv", cache_dir=False)
    assert ds.table["image_id"].tolist() == ["a.png"] and ds.audit["duplicates"] == []
    reasons = {s["file"]: s["reason"] for s in ds.audit["skipped"]}
    assert reasons == {"a.png (line 3)": "listed again: the same file as line 2",
                       "./a.png (line 4)": "listed again: the same file as line 2"}


def test_manifest_without_race_column(tmp_path):
    _face(0).save(tmp_path / "a.png", format="PNG")
    (tmp_path / "m.csv").write_text("path,age,gender\na.png,40,1\n")
    ds = load_dataset(tmp_path / "m.csv", cache_dir=False)
    assert ds.table["race"].isna().all() and ds.table["age"].tolist() == [40]


def test_manifest_missing_columns_is_a_user_error(tmp_path):
    (tmp_path / "m.csv").write_text("file,age\na.png,40\n")
    with pytest.raises(UserError, match="lacks column"):
        load_dataset(tmp_path / "m.csv", cache_dir=False)


# --------------------------------------------------------------------------- real faces


def test_real_utkface_subset(utkface, tmp_path):
    ds = load_dataset(utkface, cache_dir=tmp_path)
    skipped = {s["file"]: s["reason"] for s in ds.audit["skipped"]}
    malformed = {
        "39_1_20170116174525125.jpg.chip.jpg",
        "61_1_20170109142408075.jpg.chip.jpg",
        "61_1_20170109150557335.jpg.chip.jpg",
    }
    assert malformed <= set(skipped)
    for name in malformed:
        assert skipped[name].startswith("bad label: name has 3 underscore-separated field(s)")
    label_ok = ds.audit["found"] - len(malformed)
    assert ds.audit["found"] == 5000 and label_ok == 4997
    # UTKFace holds exact pixel duplicates; each skipped file beyond the three
    # malformed names must be one of them, and everything else is used.
    dup_files = {f for d in ds.audit["duplicates"] for f in d["files"]}
    assert set(skipped) - malformed <= dup_files
    assert ds.audit["used"] == label_ok - (len(skipped) - len(malformed))
    assert len(ds.table) == ds.audit["used"]
