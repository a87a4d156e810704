"""The fast near-duplicate search against the exhaustive one it replaced: it keeps every planted twin and every
verified pair, with BLAS and OpenCV held to the detection's two threads."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from facebench.data import decode, load_dataset, synthesize
from facebench.data.neardup import DEFAULT_SIMILARITY, neighbour_pairs, pair_similarity, two_threads, verify_pairs
from facebench.data.neardup_search import (ALIGN_SHIFTS, ALIGN_ZOOMS, align_versions, area_matrix, candidates,
                                           exhaustive_pairs, nearest_faces, search_halves, version_of)
from planted import plant


def _faces_with_twins(src_dir, dest, kinds=("crop", "mirror"), every=4):
    """Every ``every``-th face of ``src_dir`` gets a twin of each kind; returns the 64-px faces and the twins
    as (source row, twin row)."""
    shutil.copytree(src_dir, dest)
    names = sorted(p.name for p in dest.glob("*.jpg"))
    made = {}
    for k, name in enumerate(names[::every]):
        for kind in kinds:
            twin = f"{name.split('_')[0]}_{name.split('_')[1]}_{name.split('_')[2]}_2999{k:08d}{kinds.index(kind)}.jpg.chip.jpg"
            plant(dest / name, dest / twin, kind)
            made[twin] = name
    table = load_dataset(dest, cache_dir=False).table.reset_index(drop=True)
    row = {n: r for r, n in enumerate(table["image_id"])}
    twins = [(min(row[s], row[t]), max(row[s], row[t])) for t, s in made.items()]
    return np.asarray(decode(table, size=64, color="gray", cache_dir=False)), twins


def _pairs(frame: pd.DataFrame) -> set:
    return set(zip(frame["i"].tolist(), frame["j"].tolist()))


def test_area_matrix_is_opencv_inter_area_at_whole_pixels():
    import cv2

    rng = np.random.default_rng(0)
    face = rng.integers(0, 256, (64, 64)).astype(np.uint8)
    m = area_matrix(48, 0.0, side=64)
    ours = m @ face.astype(np.float32) @ m.T
    ref = cv2.resize(np.ascontiguousarray(face[8:56, 8:56]), (8, 8), interpolation=cv2.INTER_AREA)
    assert np.abs(ours - ref).max() <= 0.51  # OpenCV rounds to uint8
    shifted = area_matrix(48, 2.0, side=64)
    assert np.allclose(shifted[:, 2:], m[:, :-2]) and np.allclose(m.sum(axis=1), 1)


def test_the_mirror_costs_nothing_the_halves_give_the_better_orientation():
    from facebench.data.neardup_search import SEARCH_CENTRE, _thumbs

    rng = np.random.default_rng(1)
    faces = rng.integers(0, 256, (40, 32, 32)).astype(np.uint8)
    sym, anti = search_halves(faces)
    m = area_matrix(SEARCH_CENTRE)
    t, flipped = _thumbs(faces, m, m), _thumbs(faces[:, :, ::-1], m, m)
    assert np.allclose(sym @ sym.T + np.abs(anti @ anti.T), np.maximum(t @ t.T, t @ flipped.T), atol=1e-5)


def test_versions_are_the_zoomed_shifted_and_mirrored_thumbnails():
    rng = np.random.default_rng(2)
    faces = rng.integers(0, 256, (5, 32, 32)).astype(np.uint8)
    raw = align_versions(faces)
    assert raw.shape == (5, len(ALIGN_ZOOMS) * len(ALIGN_SHIFTS) ** 2 * 2, 64)
    for v in (0, 13, raw.shape[1] // 2, raw.shape[1] - 1):
        zoom, dy, dx, mirrored = version_of(v)
        rows, cols = area_matrix(48 * zoom, dy, 32), area_matrix(48 * zoom, dx, 32)
        x = faces[:, :, ::-1] if mirrored else faces
        assert np.allclose(raw[:, v], (rows @ x.astype(np.float32) @ cols.T).reshape(5, -1), atol=1e-3)


def test_nearest_faces_are_the_exact_nearest_on_a_small_set():
    rng = np.random.default_rng(3)
    faces = rng.integers(0, 256, (600, 32, 32)).astype(np.uint8)
    sym, anti = search_halves(faces)
    sim = sym @ sym.T + np.abs(anti @ anti.T)
    np.fill_diagonal(sim, -np.inf)
    near = nearest_faces(faces, tile=64)  # 24 a face
    assert (near >= 0).all(axis=1).mean() > 0.9  # a row keeps fewer when its best faces are not in the sample
    for row, found in enumerate(near):
        kept = found[found >= 0]
        assert len(kept) >= 1
        best = np.sort(sim[row])[::-1][:len(kept)]
        assert np.allclose(np.sort(sim[row, kept])[::-1], best, atol=1e-5), row


def test_the_fast_search_keeps_the_planted_twins_of_synthetic_faces(tmp_path):
    folder = tmp_path / "synthetic"
    synthesize(folder, n=120, seed=5, size=128)
    faces, twins = _faces_with_twins(folder, tmp_path / "faces")
    with two_threads():
        old = _pairs(exhaustive_pairs(faces)) & set(twins)
        new = _pairs(neighbour_pairs(faces))
    assert old and old <= new, sorted(old - new)


def test_verification_in_two_threads_is_the_same_as_in_one(tmp_path):
    folder = tmp_path / "synthetic"
    synthesize(folder, n=60, seed=6, size=96)
    faces = np.asarray(decode(load_dataset(folder, cache_dir=False).table, size=64, color="gray", cache_dir=False))
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, 60, 200), rng.integers(0, 60, 200)
    flags = rng.random(200) < 0.5
    one = pair_similarity(faces, faces, i, j, flags)
    with two_threads():
        two = verify_pairs(faces, i, j, flags, workers=2)
    np.testing.assert_array_equal(one, two)


def test_candidates_are_pairs_once_each_above_the_floor():
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (50, 32, 32)).astype(np.uint8)
    faces = np.concatenate([base, base[:10, :, ::-1]])  # ten mirrored copies
    found = candidates(faces, k=4)
    assert (found["i"] < found["j"]).all() and not found.duplicated(["i", "j"]).any()
    assert {(r, 50 + r) for r in range(10)} <= _pairs(found)
    assert found.set_index(["i", "j"]).loc[[(r, 50 + r) for r in range(10)], "mirrored"].all()


@pytest.mark.slow
def test_the_fast_search_keeps_every_twin_and_verified_pair_of_real_faces(utkface, tmp_path):
    names = sorted(p.name for p in utkface.glob("*.jpg"))[::12][:400]  # 400 real faces, spread over the ages
    src = tmp_path / "src"
    src.mkdir()
    for name in names:
        shutil.copy(utkface / name, src / name)
    faces, twins = _faces_with_twins(src, tmp_path / "faces", kinds=("crop", "mirror", "resize", "light"), every=8)
    with two_threads():
        old = exhaustive_pairs(faces)
        new = neighbour_pairs(faces)
        old_sim = verify_pairs(faces, old["i"], old["j"], old["mirrored"].to_numpy())
    found_old = _pairs(old) & set(twins)
    assert found_old and found_old <= _pairs(new), sorted(found_old - _pairs(new))  # the planted twins
    verified = _pairs(old[old_sim >= DEFAULT_SIMILARITY])
    assert verified and verified <= _pairs(new), sorted(verified - _pairs(new))  # every pair the floor could drop


def test_refined_scores_are_the_best_of_the_27_thumbnails_around_the_version():
    from facebench.data.neardup_search import REFINE_SHIFT, REFINE_ZOOM, _unit, align_query, refined_scores

    rng = np.random.default_rng(8)
    faces = rng.integers(0, 256, (30, 32, 32)).astype(np.uint8)
    i, j = rng.integers(0, 30, 12), rng.integers(0, 30, 12)
    version = rng.integers(0, len(ALIGN_ZOOMS) * len(ALIGN_SHIFTS) ** 2 * 2, 12)
    got = refined_scores(faces, i, j, version)
    query = align_query(faces)
    for k in range(12):
        zoom, dy, dx, mirrored = version_of(version[k])
        x = faces[i[k], :, ::-1] if mirrored else faces[i[k]]
        best = -1.0
        for a in (-1, 0, 1):
            centre = 48 * zoom * (1 + REFINE_ZOOM * a)
            for b in (-1, 0, 1):
                for c in (-1, 0, 1):
                    rows = area_matrix(centre, dy + REFINE_SHIFT * b, 32)
                    # a mirrored version shifts the mirrored face
                    cols = area_matrix(centre, dx + REFINE_SHIFT * c, 32)
                    thumb = _unit((rows @ x.astype(np.float32) @ cols.T)[None])[0]
                    best = max(best, float(thumb @ query[j[k]]))
        assert abs(got[k] - best) < 1e-3, k


def test_the_detection_holds_blas_and_opencv_to_one_thread_each_and_restores_them(monkeypatch):
    import cv2
    from threadpoolctl import threadpool_info

    from facebench.data import neardup

    seen = {}

    def spy(faces, **kwargs):
        seen["blas"] = {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}
        seen["opencv"] = cv2.getNumThreads()
        seen["workers"] = kwargs.get("workers")
        return pd.DataFrame({"i": [0], "j": [1], "mirrored": [False], "score": [1.0]})

    monkeypatch.setattr(neardup, "neighbour_pairs", spy)
    before = cv2.getNumThreads()
    faces = np.random.default_rng(9).integers(0, 256, (4, 64, 64)).astype(np.uint8)
    hashes = np.zeros((4, 2), dtype=np.uint64)
    pairs = neardup.detect_pairs(hashes, faces, 2)
    assert seen == {"blas": {1}, "opencv": 1, "workers": 2}
    assert cv2.getNumThreads() == before and len(pairs) >= 1
