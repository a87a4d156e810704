"""TensorFlow's start-up settings: oneDNN's CPU kernels on x86-64 unless the user chose, and XLA
left to "auto" only where it pays."""

from __future__ import annotations

import os

import pytest

from facebench import tf_runtime


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_onednn_is_turned_on_for_x86_64_only(clean_env):
    clean_env.setattr(tf_runtime.platform, "machine", lambda: "x86_64")
    assert tf_runtime._configure_environment() is True  # quiet: the user set no log level
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1" and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
    clean_env.delenv("TF_ENABLE_ONEDNN_OPTS")
    clean_env.setattr(tf_runtime.platform, "machine", lambda: "aarch64")
    tf_runtime._configure_environment()
    assert "TF_ENABLE_ONEDNN_OPTS" not in os.environ


def test_the_users_own_settings_stay(clean_env):
    clean_env.setattr(tf_runtime.platform, "machine", lambda: "x86_64")
    clean_env.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    clean_env.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert tf_runtime._configure_environment() is False  # the user's log level: nothing silenced
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0" and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


def test_before_tensorflow_loads_the_setting_says_after_tensorflow_does(clean_env):
    import sys

    with clean_env.context() as patch:  # as if TensorFlow were not loaded yet
        patch.delitem(sys.modules, "tensorflow", raising=False)
        patch.setattr(tf_runtime.platform, "machine", lambda: "x86_64")
        assert tf_runtime.onednn_enabled()  # what tf_module will set
        patch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
        assert not tf_runtime.onednn_enabled()
        patch.delenv("TF_ENABLE_ONEDNN_OPTS")
        patch.setattr(tf_runtime.platform, "machine", lambda: "aarch64")
        assert not tf_runtime.onednn_enabled()
    tf = tf_runtime.tf_module()
    from tensorflow.python.util import _pywrap_util_port

    assert tf is sys.modules["tensorflow"]
    loaded = bool(_pywrap_util_port.IsMklEnabled())  # asked before the variable changes below
    clean_env.setenv("TF_ENABLE_ONEDNN_OPTS", "0" if loaded else "1")
    assert tf_runtime.onednn_enabled() == loaded  # loaded: its own answer, not the variable's


def test_auto_xla_is_off_on_a_cpu_with_onednn_and_for_short_fits(monkeypatch):
    from facebench.cnn import recipe

    monkeypatch.setattr(recipe, "cpu_with_onednn", lambda: True)
    assert recipe.jit_compile("auto", 10_000) is False
    assert recipe.jit_compile(True, 10_000) is True and recipe.jit_compile(False, 10_000) is False  # a setting is kept
    monkeypatch.setattr(recipe, "cpu_with_onednn", lambda: False)
    assert recipe.jit_compile("auto", 10_000) == "auto"  # Keras decides (a GPU, or TensorFlow without oneDNN)
    assert recipe.jit_compile("auto", recipe.XLA_MIN_STEPS - 1) is False


def test_the_device_line_names_onednn_when_it_is_on(monkeypatch):
    from facebench.cnn import device

    monkeypatch.setattr(device, "nvidia_gpu_present", lambda: False)
    monkeypatch.delenv("FACEBENCH_THREADS", raising=False)
    if device.training_device() == "gpu":
        pytest.skip("TensorFlow sees a GPU here")
    monkeypatch.setattr(tf_runtime, "onednn_enabled", lambda: True)
    assert device.describe_device() == "the CNN trains on the CPU (every core, oneDNN kernels)"
    monkeypatch.setattr(tf_runtime, "onednn_enabled", lambda: False)
    monkeypatch.setenv("FACEBENCH_THREADS", "1")
    assert device.describe_device() == "the CNN trains on the CPU (1 thread)"
    monkeypatch.setenv("FACEBENCH_THREADS", "2")
    assert device.describe_device() == "the CNN trains on the CPU (2 threads)"
