"""facebench.machine: usable cores, memory, CPU name, worker counts."""

import os

import pytest

from facebench import machine


def test_usable_cores_follow_the_affinity_mask():
    n = machine.usable_cores()
    assert n >= 1
    if hasattr(os, "sched_getaffinity"):
        assert n == len(os.sched_getaffinity(0))


def test_usable_cores_without_affinity_fall_back_to_cpu_count(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert machine.usable_cores() == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert machine.usable_cores() == 1


def test_memory_and_cpu_name_describe_this_machine():
    memory = machine.memory_bytes()
    assert memory is None or memory > 2**26
    name = machine.cpu_name()
    assert isinstance(name, str) and name and "\n" not in name


def test_resolve_n_jobs_reads_counts_as_joblib_does(monkeypatch):
    monkeypatch.setattr(machine, "usable_cores", lambda: 4)
    assert [machine.resolve_n_jobs(n) for n in (None, 1, 3, -1, -2, -4, -100)] == [1, 1, 3, 4, 3, 1, 1]
    for bad in (0, 1.5, "2", True):
        with pytest.raises(ValueError, match="n_jobs"):
            machine.resolve_n_jobs(bad)


def test_bf16_support_is_read_from_the_cpu_flags(monkeypatch):
    flags = machine.cpu_flags()
    assert isinstance(flags, frozenset)
    assert machine.has_bf16() == bool({"amx_bf16", "avx512_bf16"} & flags)
    for reported, expected in ((frozenset({"avx2", "fma"}), False), (frozenset({"avx512f", "avx512_bf16"}), True),
                               (frozenset({"amx_bf16", "amx_tile"}), True), (frozenset(), False)):
        monkeypatch.setattr(machine, "cpu_flags", lambda reported=reported: reported)
        assert machine.has_bf16() is expected
