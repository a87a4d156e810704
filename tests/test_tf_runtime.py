"""TensorFlow's start-up settings: oneDNN's CPU kernels on x86-64 unless the user chose, and XLA
left to "auto" only where it pays."""

from __future__ import annotations

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
    assert tf_runtime.onednn_enabled()
    clean_env.delenv("TF_ENABLE_ONEDNN_OPTS")
    clean_env.setattr(tf_runtime.platform, "machine", lambda: "aarch64")
    tf_runtime._configure_environment()
    assert not tf_runtime.onednn_enabled()


def test_the_users_own_settings_stay(clean_env):
    clean_env.setattr(tf_runtime.platform, "machine", lambda: "x86_64")
    clean_env.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    clean_env.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert tf_runtime._configure_environment() is False  # the user's log level: nothing silenced
    assert not tf_runtime.onednn_enabled()
    import os

    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0" and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


def test_auto_xla_is_off_on_a_cpu_with_onednn_and_for_short_fits(monkeypatch):
    from facebench.cnn import train

    monkeypatch.setattr(train, "_cpu_with_onednn", lambda: True)
    assert train._jit("auto", 10_000) is False
    assert train._jit(True, 10_000) is True and train._jit(False, 10_000) is False  # a setting is kept
    monkeypatch.setattr(train, "_cpu_with_onednn", lambda: False)
    assert train._jit("auto", 10_000) == "auto"  # Keras decides (a GPU, or TensorFlow without oneDNN)
    assert train._jit("auto", train.XLA_MIN_STEPS - 1) is False


def test_the_device_line_names_onednn_when_it_is_on(monkeypatch):
    from facebench.cnn import device

    monkeypatch.setattr(device, "nvidia_gpu_present", lambda: False)
    monkeypatch.delenv("FACEBENCH_THREADS", raising=False)
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    if device.training_device() == "gpu":
        pytest.skip("TensorFlow sees a GPU here")
    assert device.describe_device() == "the CNN trains on the CPU (every core, oneDNN kernels)"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    monkeypatch.setenv("FACEBENCH_THREADS", "1")
    assert device.describe_device() == "the CNN trains on the CPU (1 thread)"
    monkeypatch.setenv("FACEBENCH_THREADS", "2")
    assert device.describe_device() == "the CNN trains on the CPU (2 threads)"
