"""The lesson notebook (examples/three_families.ipynb) runs top to bottom, offline, on a small set."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "three_families.ipynb"


@pytest.mark.slow
@pytest.mark.readme  # the documentation lane, which CI runs after the suite
def test_lesson_notebook_runs(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="the test extra's nbformat is not installed")
    nbclient = pytest.importorskip("nbclient", reason="the test extra's nbclient is not installed")
    pytest.importorskip("ipykernel", reason="the test extra's ipykernel is not installed")
    pytest.importorskip("tensorflow")
    # a small set: 60 synthetic faces, one epoch (the kernel inherits the environment)
    monkeypatch.setenv("FACEBENCH_LESSON_FACES", "60")
    monkeypatch.setenv("FACEBENCH_LESSON_EPOCHS", "1")
    monkeypatch.delenv("FACEBENCH_LESSON_DATA", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        "commit the notebook without outputs"
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "60 synthetic faces" in text
    assert "hand-crafted" in text and "learned here" in text
    try:
        import dlib  # noqa: F401
    except ImportError:
        assert "pip install 'facebench[pretrained]'" in text
    else:
        assert "learned elsewhere" in text and "dlib128+ridge" in text
    images = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
              if "image/png" in o.get("data", {})]
    assert len(images) >= 2
