"""The GPU extra's declaration and the CPU fallback (no GPU on the machines these tests run on)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from facebench.cnn import device

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_extra_installs_tensorflow_with_cuda_on_linux_x86_64_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (req,) = [Requirement(r) for r in project["optional-dependencies"]["gpu"]]
    assert req.name == "tensorflow" and req.extras == {"and-cuda"}
    linux = {"sys_platform": "linux", "platform_machine": "x86_64"}
    assert req.marker.evaluate(linux)
    assert not req.marker.evaluate({"sys_platform": "darwin", "platform_machine": "arm64"})
    assert not req.marker.evaluate({"sys_platform": "linux", "platform_machine": "aarch64"})
    base = {Requirement(r).name: Requirement(r) for r in project["dependencies"] if r.startswith("tensorflow")}
    # the same lowest version as the CPU-only package it replaces
    assert str(req.specifier) == str(base["tensorflow-cpu"].specifier)


def test_without_a_gpu_the_cnn_trains_on_the_cpu_and_says_so(monkeypatch):
    pytest.importorskip("tensorflow")
    if device.training_device() == "gpu":
        pytest.skip("this machine has a GPU TensorFlow sees")
    monkeypatch.setattr(device, "nvidia_gpu_present", lambda: False)
    assert device.describe_device().startswith("the CNN trains on the CPU")
    assert "tensorflow[and-cuda]" not in device.describe_device()
    # an NVIDIA GPU that the CPU-only TensorFlow cannot use: the line says what to install
    monkeypatch.setattr(device, "nvidia_gpu_present", lambda: True)
    line = device.describe_device()
    assert "does not see" in line and device.GPU_INSTALL in line


def test_a_cnn_unit_records_where_it_trained(tiny_run):
    """The shared real run (conftest.tiny_run) trained its ``default`` CNN for two epochs."""
    out = tiny_run
    timing = json.loads((out / "units" / "t0_f1.0_cnn-default" / "timing.json").read_text())
    assert timing["device"] == device.training_device()
    assert "the CNN trains on the" in (out / "run.log").read_text()
