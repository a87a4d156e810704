"""facebench.compare.planning.config: one resolve path, validation messages, config differences."""

import re
from pathlib import Path

import pytest
from test_baselines_models import registry_snapshot  # noqa: F401 - the fixture that undoes register_model

from facebench.compare.planning.config import PRESETS, config_diff, load_config, resolve, science_digest
from facebench.errors import UserError
from facebench.machine import usable_cores


def one_line_error(**kwargs) -> str:
    with pytest.raises(UserError) as excinfo:
        load_config(**kwargs)
    message = str(excinfo.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_resolves_and_resolving_again_changes_nothing(preset):
    config = load_config(preset=preset, data="faces")
    assert config["preset"] == preset
    assert resolve(config) == config


def test_a_partial_config_resolves_like_load_config():
    partial = {"preset": "quick", "data": {"path": "faces/"}, "trials": 2}
    assert resolve(partial) == load_config(preset="quick", data="faces/", overrides=["trials=2"])
    assert partial == {"preset": "quick", "data": {"path": "faces/"}, "trials": 2}  # not modified
    assert resolve({})["preset"] == "standard"


def test_data_path_has_one_spelling(tmp_path, monkeypatch):
    (tmp_path / "faces").mkdir()
    monkeypatch.chdir(tmp_path)
    spellings = ["faces", "faces/", "./faces", str(tmp_path / "faces"), str(tmp_path / "faces") + "/"]
    configs = [load_config(preset="quick", data=s) for s in spellings]
    assert {c["data"]["path"] for c in configs} == {str((tmp_path / "faces").resolve())}
    assert len({science_digest(c) for c in configs}) == 1
    assert load_config(preset="quick")["data"]["path"] == ""


def test_n_jobs_is_minus_one_or_a_sensible_count():
    most = usable_cores() * 4
    assert load_config(overrides=["n_jobs=-1"])["n_jobs"] == -1
    assert load_config(overrides=[f"n_jobs={most}"])["n_jobs"] == most
    for bad in (-1000, 0, -2, most + 1):
        message = one_line_error(overrides=[f"n_jobs={bad}"])
        assert message == (f"config key 'n_jobs' = {bad} is invalid: expected -1 (every core) or a count of "
                           f"processes from 1 to {most}")


def test_cnn_parameters_are_checked_by_the_cnn_module_and_named_as_config_keys():
    assert one_line_error(overrides=["cnn.default.epochs='x'"]) == (
        "config key 'cnn.default.epochs' = 'x' is invalid: expected a positive integer")
    message = one_line_error(overrides=["cnn.default.epoch=3"])
    assert message.startswith("config key 'cnn.default.epoch' is unknown (did you mean 'epochs'?); allowed: ")
    assert "config key 'cnn.default.augment.blur' is unknown" in one_line_error(overrides=["cnn.default.augment={blur = 1}"])
    assert "'cnn.seed.dropout' = 1.5 is invalid: expected a number in [0, 1)" in one_line_error(
        overrides=["cnn.seed.dropout=1.5"])
    assert "'cnn.seed.image_size' = 16 is invalid" in one_line_error(overrides=["cnn.seed.image_size=16"])
    assert load_config(overrides=["cnn.default.epochs=2"])["cnn"]["default"]["epochs"] == 2


def test_unknown_keys_are_named_with_a_suggestion():
    assert one_line_error(overrides=["trial=3"]) == "--set trial: config key 'trial' is unknown (did you mean 'trials'?)"
    assert "'data.paht'" in one_line_error(overrides=["data.paht=x"])
    assert "not a table" in one_line_error(overrides=["trials.x=1"])


def test_config_files_binary_missing_and_with_their_own_data_path(tmp_path, monkeypatch):
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe\x00")
    assert one_line_error(path=binary) == f"--config {binary}: not a text TOML file"
    latin = tmp_path / "latin.toml"
    latin.write_bytes('description = "caf\xe9"\n'.encode("latin-1"))
    assert one_line_error(path=latin) == f"--config {latin}: not a text TOML file"
    assert "no such file" in one_line_error(path=tmp_path / "none.toml")
    assert "not valid TOML" in one_line_error(path=_write(tmp_path / "bad.toml", "trials = = 3\n"))

    monkeypatch.chdir(tmp_path)
    own = _write(tmp_path / "own.toml", 'preset = "quick"\ntrials = 2\n[data]\npath = "faces"\n')
    config = load_config(path=own)
    assert config["data"]["path"] == str(tmp_path / "faces") and config["trials"] == 2
    assert config["preset"] == "quick" and config["models"]["cnn"] == ["default"]
    assert load_config(path=own, data="other")["data"]["path"] == str(tmp_path / "other")
    assert load_config(path=own, preset="seed")["preset"] == "seed"


def test_config_diff_names_the_science_keys_that_differ():
    old = load_config(preset="quick", data="/data/faces")
    new = load_config(preset="quick", data="/data/faces", overrides=["test_size=0.3", "n_jobs=1",
                                                                     "cnn.default.epochs=2", "description='x'"])
    assert config_diff(old, new) == ["cnn.default.epochs: 6 -> 2", "test_size: 0.2 -> 0.3"]
    assert config_diff(old, old) == []
    assert science_digest(old) != science_digest(new)
    assert science_digest(old) == science_digest(load_config(preset="quick", data="/data/faces",
                                                             overrides=["n_jobs=1", "description='x'"]))
    partial = {k: v for k, v in old.items() if k != "bootstrap"}
    assert config_diff(partial, old) == ["bootstrap: (unset) -> 500"]


def test_a_registered_classical_model_is_valid_in_the_config(registry_snapshot):
    from facebench.baselines import register_model

    with pytest.raises(UserError, match=re.escape("'models.gender' = 'lbp+linsvm' is invalid")):
        load_config(overrides=["models.gender=['lbp+linsvm']"])
    register_model("lbp+linsvm", ("lbp",), "linsvm", tasks=("gender",))
    assert load_config(overrides=["models.gender=['lbp+linsvm']"])["models"]["gender"] == ["lbp+linsvm"]
    with pytest.raises(UserError, match=re.escape("'models.age' = 'lbp+linsvm' is invalid")):
        load_config(overrides=["models.age=['lbp+linsvm']"])


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
