"""dlib's face recognition network read from its model file and run by TensorFlow: the same
descriptors as dlib's own runner, and a reader that refuses any other file."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dlib", reason="the pretrained extra is not installed")
pytest.importorskip("face_recognition_models", reason="the pretrained extra is not installed")

from facebench.pretrained import model_files  # noqa: E402
from facebench.pretrained.descriptor import embed_batch, embed_batch_dlib  # noqa: E402
from facebench.pretrained.embeddings import EmbeddingCache  # noqa: E402
from facebench.pretrained.resnet import EXPECTED, FILTERS, ModelFileError, descriptors, read_network  # noqa: E402

#: dlib's descriptors and the port's differ by float32 rounding (5e-7 measured on real faces);
#: two faces of one person are ~0.4 apart, of two people ~0.8
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def network():
    return read_network(model_files()["descriptor"])


def test_the_file_holds_the_documented_network(network):
    np.testing.assert_allclose(network.mean, [122.782, 117.001, 104.298], atol=1e-3)
    assert [layer[0] for layer in network.layers] == EXPECTED
    convs = [layer for layer in network.layers if layer[0] == "con"]
    assert [c[1].shape[3] for c in convs] == FILTERS
    assert convs[0][1].shape == (7, 7, 3, 32) and (convs[0][3], convs[0][4]) == (2, 0)
    for before, after in zip(convs, convs[1:]):  # each convolution takes the previous one's filters
        assert after[1].shape[2] == before[1].shape[3]
    assert network.layers[-1][1].shape == (256, 128)
    assert all(np.isfinite(layer[1]).all() for layer in network.layers if layer[0] in ("con", "affine", "fc"))


def _parity(images):
    ours, dlibs = embed_batch(images), embed_batch_dlib(images)
    assert ours.shape == dlibs.shape == (len(images), 128) and ours.dtype == np.float32
    assert float(np.abs(ours - dlibs).max()) < TOLERANCE
    assert float(np.abs(dlibs).max()) > 0.1  # real descriptors, not zeros


def test_same_descriptors_as_dlib_on_synthetic_faces():
    from facebench.data.synth import draw_face

    rng = np.random.default_rng(4)
    _parity(np.stack([draw_face(18 + 5 * i, i % 2, i % 5, rng, size=160) for i in range(6)]))


@pytest.mark.slow
def test_same_descriptors_as_dlib_on_real_faces(utkface):
    from facebench.data import decode, load_dataset
    from facebench.pretrained import INPUT_SIZE

    table = load_dataset(utkface).table.iloc[::300][:16]
    _parity(np.asarray(decode(table, size=INPUT_SIZE, color="rgb", cache_dir=False)))


def test_batches_do_not_change_a_descriptor(network):
    chips = np.random.default_rng(0).integers(0, 256, (7, 150, 150, 3), dtype=np.uint8)
    path = model_files()["descriptor"]
    whole = descriptors(chips, path, batch_size=7)
    np.testing.assert_allclose(descriptors(chips, path, batch_size=2), whole, atol=1e-6)
    with pytest.raises(ValueError, match="150, 150, 3"):
        descriptors(chips[:, :100], path)


def test_the_reader_refuses_other_files(tmp_path):
    data = model_files()["descriptor"].read_bytes()
    cases = {
        "cut.dat": data[: len(data) // 2],  # cut short: layers missing
        "text.dat": b"not a model at all" * 100,
        "short.dat": data[: data.index(b"con_4") + 40],  # ends inside a tensor
    }
    # the first convolution with 16 filters instead of 32
    at = data.index(b"con_4") + 5
    at = at + 2 + 3 + 6 + 4736 * 4  # tensor version, its dimensions, its floats
    assert data[at:at + 2] == b"\x01\x20"
    cases["filters.dat"] = data[:at] + b"\x01\x10" + data[at + 2:]
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ModelFileError):
            read_network(path)


def test_cached_descriptors_of_each_runner_and_kernels_are_kept_apart(tmp_path):
    from facebench.pretrained.resnet import kernels

    folder = EmbeddingCache(tmp_path).folder
    assert folder.name.endswith(f"-fixed-tf-{kernels()}") and folder.parent == tmp_path / "embeddings"
    names = {EmbeddingCache(tmp_path, kernels=k, batch_size=b).folder.name for k in ("onednn", "eigen") for b in (1, 32)}
    assert len(names) == 4 and not any(name.endswith("-fixed") for name in names)  # dlib's runner: "-fixed"


def test_chunks_are_filed_under_the_kernels_that_computed_them(tmp_path, monkeypatch):
    """A worker whose TensorFlow runs other kernels than this process: its descriptors go to their own folder."""
    import facebench.pretrained.embeddings as embeddings
    from facebench.pretrained import DlibDescriptor

    here = embeddings.resnet.kernels()
    other = "eigen" if here == "onednn" else "onednn"
    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(embeddings, "_embed_chunk", lambda images, box, batch: (np.ones((len(images), 128), np.float32), other))
    faces = np.zeros((3, 64, 64, 3), np.uint8) + np.arange(3, dtype=np.uint8)[:, None, None, None]
    DlibDescriptor().transform(faces)
    assert EmbeddingCache(tmp_path, kernels=other).lookup(embeddings.image_keys(faces))[1].all()
    assert not EmbeddingCache(tmp_path, kernels=here).folder.exists()



def test_faces_are_embedded_here_unless_a_cluster_or_workers_are_asked_for():
    import joblib

    from facebench.pretrained import DlibDescriptor

    assert DlibDescriptor()._n_jobs() == 1
    with joblib.parallel_config(n_jobs=2):  # a run's local workers: TensorFlow spreads the network here instead
        assert DlibDescriptor()._n_jobs() == 1
        assert DlibDescriptor(n_jobs=2)._n_jobs() == 2
    with joblib.parallel_config(backend="threading", n_jobs=2):
        assert DlibDescriptor()._n_jobs() == 1


def test_a_damaged_installed_file_is_one_line_that_says_what_to_reinstall(tmp_path):
    from facebench.errors import UserError

    path = tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    path.write_bytes(model_files()["descriptor"].read_bytes()[:100_000])
    with pytest.raises(UserError, match="pip install --force-reinstall face-recognition-models"):
        descriptors(np.zeros((1, 150, 150, 3), np.uint8), path)
