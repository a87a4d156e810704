"""``facebench predict`` (facebench.compare.inference.predict): faces in photos, the crop, models, errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
from skimage import data as skdata

from facebench.errors import UserError


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
    from facebench.compare.inference.loading import default_models
    from facebench.cli import predict_cli

    assert predict_cli(tiny_run, [photos / "astronaut.jpg"]) == 0
    rows = _lines(capsys.readouterr().out)
    expected = default_models(tiny_run)
    assert "cnn-default" in expected and "dummy" not in expected
    assert len(rows) == 1  # one line per face, every model in it
    row = rows[0]
    assert list(row["models"]) == expected and row["crop"] == "detected" and "training_face" not in row
    assert row["file"].endswith("astronaut.jpg") and row["face"] == 0
    x, y, w, h = row["box"]
    assert 150 < x + w / 2 < 300 and 60 < y + h / 2 < 200 and 60 < w < 140  # her face
    for out in row["models"].values():
        if "age" in out:
            assert 0 <= out["age"] <= 116
        if "gender" in out:
            assert out["gender"] in ("male", "female") and 0 <= out["p_female"] <= 1
            assert (out["gender"] == "female") == (out["p_female"] >= 0.5)
    assert set(row["models"]["cnn-default"]) >= {"age", "p_female", "gender"}
    assert "age" not in row["models"]["hog+linsvm"]


def test_no_face_and_corrupt_file(tiny_run, photos, capsys):
    from facebench.cli import predict_cli

    files = [photos / "coffee.png", photos / "corrupt.jpg", photos / "missing.jpg", photos / "astronaut.jpg"]
    assert predict_cli(tiny_run, files, models=["hog+ridge"]) == 1  # some files failed, the others ran
    captured = capsys.readouterr()
    rows = _lines(captured.out)
    assert rows[0]["faces"] == 0 and rows[0]["file"].endswith("coffee.png") and "no face" in rows[0]["message"]
    assert list(rows[1]["models"]) == ["hog+ridge"] and len(rows) == 2
    err = captured.err.strip().splitlines()
    assert len(err) == 2
    assert "corrupt.jpg" in err[0] and "decode" in err[0]
    assert "missing.jpg" in err[1] and "no such file" in err[1]

    assert predict_cli(tiny_run, [photos / "coffee.png"], models=["hog+ridge"]) == 0  # no face is not an error
    with pytest.raises(UserError, match="corrupt.jpg: not an image"):
        predict_cli(tiny_run, [photos / "corrupt.jpg"])


@pytest.mark.parametrize("detect", [None, False])
def test_a_cropped_face_is_used_whole(tiny_run, capsys, detect):
    from facebench.baselines import TRUSTED_TYPES, predict_outputs
    from facebench.cli import predict_cli
    from facebench.data import to_face_array
    from facebench.data.faces import read_image
    from facebench.rundir.saved import load_classical

    preds = pd.read_csv(tiny_run / "predictions.csv.gz")
    row = preds[preds["model"] == "hog+ridge"].iloc[0]
    assert predict_cli(tiny_run, [row["path"]], models=["hog+ridge", "cnn-default"], detect=detect) == 0
    out = _lines(capsys.readouterr().out)
    assert len(out) == 1 and list(out[0]["models"]) == ["hog+ridge", "cnn-default"]
    assert out[0]["box"] == [0, 0, 64, 64] and out[0]["crop"] == "whole image"
    assert "training_face" not in out[0]  # a test face of the run
    _, estimators = load_classical(tiny_run / "units" / "t0_f1.0_hog-ridge" / "model.skops", TRUSTED_TYPES)
    face = to_face_array(read_image(row["path"]), 64, "gray")
    age = out[0]["models"]["hog+ridge"]["age"]
    assert age == pytest.approx(predict_outputs(estimators["age"], face[None], "age")["age"][0], abs=0.05)
    assert age == pytest.approx(row["age_pred"], abs=3.0)  # as in the run (JPEG gray decode differs slightly)


def test_a_training_face_is_flagged(tiny_run, capsys):
    from facebench.cli import predict_cli

    split = pd.read_csv(tiny_run / "split.csv")
    path = split[split["part"] == "train"]["path"].iloc[0]
    assert predict_cli(tiny_run, [path], models=["hog+ridge"]) == 0
    assert _lines(capsys.readouterr().out)[0]["training_face"] is True


def test_model_and_run_errors(tiny_run, photos, tmp_path, capsys):
    from facebench.cli import main
    from facebench.cli import predict_cli

    with pytest.raises(UserError, match=r"unknown model 'hog\+svm'.*cnn-default.*hog\+linsvm"):
        predict_cli(tiny_run, [photos / "astronaut.jpg"], models=["hog+svm"])
    with pytest.raises(UserError, match="not a run directory"):
        predict_cli(tmp_path, [photos / "astronaut.jpg"])
    assert main(["predict", "--run", str(tiny_run), "--model", "nope", str(photos / "coffee.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model 'nope'" in err


def test_chip_geometry():
    from facebench.data.faces import CHIP_SCALE, CHIP_SHIFT, chip_box, crop_chip, looks_like_chip

    assert looks_like_chip(np.zeros((200, 200, 3), np.uint8)) and not looks_like_chip(np.zeros((480, 640, 3)))

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


@pytest.mark.parametrize("photo", ["astronaut.jpg", "chip"])
def test_predict_and_explain_give_the_same_numbers(tiny_run, photos, capsys, photo):
    from facebench.cli import predict_cli
    from facebench.compare.inference.explain import explain_image
    from facebench.data.faces import read_image

    if photo == "chip":
        split = pd.read_csv(tiny_run / "split.csv")
        path = split[split["part"] == "test"]["path"].iloc[0]
    else:
        path = photos / photo
    assert predict_cli(tiny_run, [path]) == 0
    predicted = _lines(capsys.readouterr().out)[0]["models"]
    meta, _ = explain_image(tiny_run, read_image(path), name=str(path))
    explained = {p["model"]: p for p in meta["faces"][0]["predictions"]}
    assert set(predicted) <= set(explained)
    for name, out in predicted.items():
        for key in ("age", "p_female", "gender"):
            if key in out:
                assert explained[name][key] == out[key], (name, key)
