"""``facebench predict`` (facebench.compare.predict): faces in photos, the crop, models, errors.

Uses the tiny run directory of ``test_explain.build_tiny_run`` (built once per session).
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
from skimage import data as skdata

from facebench.errors import UserError
from test_explain import build_tiny_run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return build_tiny_run(tmp_path_factory.getbasetemp() / "tiny-run")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    cv2.imwrite(str(folder / "astronaut.jpg"), cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "coffee.png"), cv2.cvtColor(skdata.coffee(), cv2.COLOR_RGB2BGR))
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00garbage" * 20)
    return folder


def _lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_one_real_face(tiny_run, photos, capsys):
    from facebench.compare.predict import default_models, predict_cli

    assert predict_cli(tiny_run, [photos / "astronaut.jpg"]) == 0
    rows = _lines(capsys.readouterr().out)
    expected = default_models(tiny_run)
    assert "cnn-default" in expected and "dummy" not in expected
    assert [r["model"] for r in rows] == expected
    for row in rows:
        assert row["file"].endswith("astronaut.jpg") and row["face"] == 0
        x, y, w, h = row["box"]
        assert 150 < x + w / 2 < 300 and 60 < y + h / 2 < 200 and 60 < w < 140  # her face
        if "age" in row:
            assert 0 <= row["age"] <= 116
        if "gender" in row:
            assert row["gender"] in ("male", "female") and 0 <= row["p_female"] <= 1
            assert (row["gender"] == "female") == (row["p_female"] >= 0.5)
    by_model = {r["model"]: r for r in rows}
    assert set(by_model["cnn-default"]) >= {"age", "p_female", "gender"}
    assert "age" not in by_model["hog+linsvm"]


def test_no_face_and_corrupt_file(tiny_run, photos, capsys):
    from facebench.compare.predict import predict_cli

    files = [photos / "coffee.png", photos / "corrupt.jpg", photos / "missing.jpg", photos / "astronaut.jpg"]
    assert predict_cli(tiny_run, files, models=["hog+ridge"]) == 1  # some files failed, the others ran
    captured = capsys.readouterr()
    rows = _lines(captured.out)
    assert rows[0]["faces"] == 0 and rows[0]["file"].endswith("coffee.png") and "no face" in rows[0]["message"]
    assert [r["model"] for r in rows[1:]] == ["hog+ridge"]
    err = captured.err.strip().splitlines()
    assert len(err) == 2
    assert "corrupt.jpg" in err[0] and "decode" in err[0]
    assert "missing.jpg" in err[1] and "no such file" in err[1]

    assert predict_cli(tiny_run, [photos / "coffee.png"], models=["hog+ridge"]) == 0  # no face is not an error
    with pytest.raises(UserError, match="could not be read"):
        predict_cli(tiny_run, [photos / "corrupt.jpg"])


def test_no_detect_on_a_cropped_face(tiny_run, capsys):
    import joblib

    from facebench.baselines import predict_outputs
    from facebench.compare.predict import predict_cli, read_image
    from facebench.data import to_face_array

    preds = pd.read_csv(tiny_run / "predictions.csv.gz")
    row = preds[preds["model"] == "hog+ridge"].iloc[0]
    assert predict_cli(tiny_run, [row["path"]], models=["hog+ridge", "cnn-default"], detect=False) == 0
    out = _lines(capsys.readouterr().out)
    assert [r["model"] for r in out] == ["hog+ridge", "cnn-default"]
    assert all(r["box"] == [0, 0, 64, 64] and r["face"] == 0 for r in out)
    pipeline = joblib.load(tiny_run / "models" / "t0_f1.0_hog-ridge.joblib")["estimators"]["age"]
    face = to_face_array(read_image(row["path"]), 64, "gray")
    assert out[0]["age"] == pytest.approx(predict_outputs(pipeline, face[None], "age")["age"][0], abs=0.05)
    assert out[0]["age"] == pytest.approx(row["age_pred"], abs=3.0)  # as in the run (JPEG gray decode differs slightly)


def test_model_and_run_errors(tiny_run, photos, tmp_path, capsys):
    from facebench.cli import main
    from facebench.compare.predict import predict_cli

    with pytest.raises(UserError, match=r"unknown model 'hog\+svm'.*cnn-default.*hog\+linsvm"):
        predict_cli(tiny_run, [photos / "astronaut.jpg"], models=["hog+svm"])
    with pytest.raises(UserError, match="not a run directory"):
        predict_cli(tmp_path, [photos / "astronaut.jpg"])
    assert main(["predict", "--run", str(tiny_run), "--model", "nope", str(photos / "coffee.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model 'nope'" in err


def test_chip_geometry():
    from facebench.compare.predict import CHIP_SCALE, CHIP_SHIFT, chip_box, crop_chip

    x0, y0, side = chip_box((100, 100, 100, 100))
    assert side == round(CHIP_SCALE * 100)
    assert x0 + side / 2 == pytest.approx(150, abs=1)
    assert y0 + side / 2 == pytest.approx(150 + CHIP_SHIFT * 100, abs=1)
    image = np.arange(120 * 90 * 3, dtype=np.uint32).reshape(120, 90, 3).astype(np.uint8)
    crop = crop_chip(image, (60, 90, 40, 40))  # reaches past the right and bottom edges
    assert crop.shape == (38, 38, 3)
    inner = crop_chip(image, (20, 20, 40, 40))
    x0, y0, side = chip_box((20, 20, 40, 40))
    np.testing.assert_array_equal(inner, image[y0 : y0 + side, x0 : x0 + side])
