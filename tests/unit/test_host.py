"""LocalHost: the real machine's facts, and fake /proc, cgroup and /dev trees for the edge cases."""

from __future__ import annotations

import importlib.metadata
import os
import pickle
import platform
from pathlib import Path

import pytest

from lastgood.adapters.system.host import LocalHost, normal_name
from lastgood.ports import Host


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    for name in ("proc", "cgroup", "dev"):
        (tmp_path / name).mkdir()
    return tmp_path


def host_on(root: Path) -> LocalHost:
    return LocalHost(proc=root / "proc", cgroup=root / "cgroup", dev=root / "dev",
                     packages=dict)


def meminfo(root: Path, available_kb: int) -> None:
    (root / "proc" / "meminfo").write_text(
        f"MemTotal:       16000000 kB\nMemFree:         1000000 kB\n"
        f"MemAvailable:   {available_kb} kB\n")


def test_the_real_host_reports_python_and_packages() -> None:
    host: Host = LocalHost()
    facts = host.facts()
    assert facts.python == platform.python_version()
    assert facts.packages["scikit-learn"] == importlib.metadata.version("scikit-learn")
    assert facts.packages["pyyaml"] == importlib.metadata.version("PyYAML")
    assert all(name == normal_name(name) for name in facts.packages)
    assert facts.resources.memory_mb > 0
    assert facts.resources.cpus >= 1
    assert facts.hostname
    # platform.platform() without the processor name (a `uname -p` subprocess away)
    processor = platform.uname().processor
    full = platform.platform()
    assert facts.platform == (full.replace(f"-{processor}-", "-", 1) if processor else full)


@pytest.mark.parametrize(("raw", "normal"), [("PyYAML", "pyyaml"), ("scikit_learn", "scikit-learn"),
                                              ("zope.interface", "zope-interface"),
                                              ("A__b-.c", "a-b-c")])
def test_names_are_normalised(raw: str, normal: str) -> None:
    assert normal_name(raw) == normal


def test_packages_are_listed_once_until_refreshed() -> None:
    calls: list[int] = []

    def listing() -> dict[str, str]:
        calls.append(1)
        return {"numpy": f"2.{len(calls)}.0"}

    host = LocalHost(packages=listing)
    assert host.facts().packages == {"numpy": "2.1.0"}
    assert host.facts().packages == {"numpy": "2.1.0"}
    assert len(calls) == 1
    assert host.facts(refresh=True).packages == {"numpy": "2.2.0"}
    host.refresh()
    assert host.facts().packages == {"numpy": "2.3.0"}


def test_memory_is_mem_available(fake: Path) -> None:
    meminfo(fake, 2048 * 1024)
    assert host_on(fake).memory_mb() == 2048


def test_a_cgroup_limit_lowers_memory(fake: Path) -> None:
    meminfo(fake, 8192 * 1024)
    (fake / "cgroup" / "memory.max").write_text(f"{1024 * 1024 * 1024}\n")
    (fake / "cgroup" / "memory.current").write_text(f"{256 * 1024 * 1024}\n")
    assert host_on(fake).memory_mb() == 768


def test_an_unlimited_cgroup_keeps_mem_available(fake: Path) -> None:
    meminfo(fake, 4096 * 1024)
    (fake / "cgroup" / "memory.max").write_text("max\n")
    (fake / "cgroup" / "memory.current").write_text("1000\n")
    assert host_on(fake).memory_mb() == 4096


def test_without_meminfo_sysconf_answers(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pages = {"SC_AVPHYS_PAGES": 3000, "SC_PAGE_SIZE": 4096 * 256}  # 1 MiB pages
    monkeypatch.setattr(os, "sysconf", pages.__getitem__)
    assert host_on(fake).memory_mb() == 3000


def test_cpus_follow_affinity_and_quota(fake: Path) -> None:
    affinity = float(len(os.sched_getaffinity(0)))
    assert host_on(fake).cpus() == affinity
    (fake / "cgroup" / "cpu.max").write_text("50000 100000\n")
    assert host_on(fake).cpus() == min(affinity, 0.5)
    (fake / "cgroup" / "cpu.max").write_text("max 100000\n")
    assert host_on(fake).cpus() == affinity


def test_gpus_count_nvidia_devices(fake: Path) -> None:
    assert host_on(fake).gpus() == 0
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"):
        (fake / "dev" / name).write_text("")
    assert host_on(fake).gpus() == 2
    assert host_on(fake / "missing").gpus() == 0


def test_resources_gather_the_three(fake: Path) -> None:
    meminfo(fake, 1024 * 1024)
    (fake / "dev" / "nvidia0").write_text("")
    resources = host_on(fake).resources()
    assert (resources.memory_mb, resources.gpus) == (1024, 1)


def test_the_host_pickles() -> None:
    host = LocalHost()
    host.facts()
    assert pickle.loads(pickle.dumps(host)).packages() == host.packages()
