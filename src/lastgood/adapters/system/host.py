"""Facts about the serving host: Python, installed packages, free memory, CPUs and GPUs."""

from __future__ import annotations

import functools
import os
import platform
import re
import socket
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from lastgood.domain.compatibility import HostFacts, normal_name
from lastgood.domain.readiness_evidence import package_fingerprint
from lastgood.domain.versions import Resources

MB = 1024 * 1024


DIST_INFO = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)\.dist-info$")


def installed_packages() -> dict[str, str]:
    """Every installed distribution by normalised name; the first on sys.path wins, as in import.

    Read from the `.dist-info` folder names, which carry the name and the version (PEP 491),
    so a listing of each path entry replaces parsing every METADATA file (half a second for
    500 distributions, on every `lastgood rollback`). Anything else (eggs) is read from its
    metadata, as `importlib.metadata` does.
    """
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:  # a zip, a missing folder
            continue
        for item in names:
            for name, version in _distribution(entry or ".", item):
                found.setdefault(normal_name(name), version)
    return found


def _distribution(folder: str, item: str) -> list[tuple[str, str]]:
    match = DIST_INFO.match(item)
    if match:
        return [(match["name"], match["version"])]
    if not item.endswith(".egg-info"):
        return []  # most entries: no Path built for them (hundreds per rollback plan)
    import importlib.metadata  # only for eggs: it imports the email parser

    metadata = importlib.metadata.PathDistribution(Path(folder) / item).metadata
    name = metadata["Name"] if metadata else None
    return [(name, metadata["Version"])] if name else []


@functools.cache
def platform_name() -> str:
    """`platform.platform()` without the processor name (`Linux-6.1.0-x86_64-with-glibc2.36`):
    that name costs a `uname -p` subprocess (tens of ms on every rollback plan) and says
    nothing the machine name does not."""
    u = os.uname()
    libc = "".join(platform.libc_ver())
    return "-".join(p for p in (u.sysname, u.release, u.machine) if p) + (
        f"-with-{libc}" if libc else "")


@functools.cache
def packages_fingerprint() -> str:
    """This process's package fingerprint (readiness evidence), computed once."""
    return package_fingerprint(installed_packages())


class LocalHost:
    """The machine this process runs on, read from /proc, /sys/fs/cgroup and /dev.

    Listing packages walks every installed distribution, so it is done once and cached until
    `refresh()`; resources are read fresh on every call because they change.
    """

    def __init__(self, *, proc: Path = Path("/proc"), cgroup: Path = Path("/sys/fs/cgroup"),
                 dev: Path = Path("/dev"),
                 packages: Callable[[], Mapping[str, str]] = installed_packages) -> None:
        self._proc, self._cgroup, self._dev = proc, cgroup, dev
        self._list_packages = packages
        # No lock: two threads filling the cache at once compute the same list, and the host
        # stays picklable for probe processes.
        self._packages: Mapping[str, str] | None = None

    def facts(self, *, refresh: bool = False) -> HostFacts:
        """Python, installed packages and free resources of this host."""
        if refresh:
            self.refresh()
        return HostFacts(python=platform.python_version(), packages=self.packages(),
                         resources=self.resources(), hostname=socket.gethostname(),
                         platform=platform_name())

    def packages(self) -> Mapping[str, str]:
        """Installed distributions by normalised name (cached)."""
        packages = self._packages
        if packages is None:
            packages = self._packages = dict(self._list_packages())
        return packages

    def refresh(self) -> None:
        """Forget the cached package list (after installing or upgrading packages)."""
        self._packages = None

    def resources(self) -> Resources:
        """Available memory (MB), usable CPUs and NVIDIA GPUs right now."""
        return Resources(memory_mb=self.memory_mb(), cpus=self.cpus(), gpus=self.gpus())

    def memory_mb(self) -> int:
        """MemAvailable, lowered to what the cgroup limit still allows."""
        available = _meminfo_available(self._proc / "meminfo")
        if available is None:
            available = _sysconf_available()
        room = _cgroup_memory_room(self._cgroup)
        return max(0, min(available, room) if room is not None else available) // MB

    def cpus(self) -> float:
        """CPUs this process may run on, lowered to the cgroup's CPU quota."""
        try:
            count = float(len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):  # not on Linux
            count = float(os.cpu_count() or 1)
        quota = _cgroup_cpu_quota(self._cgroup)
        return min(count, quota) if quota is not None else count

    def gpus(self) -> int:
        """NVIDIA devices (/dev/nvidia0, /dev/nvidia1, …); 0 without a driver."""
        try:
            return sum(1 for p in self._dev.iterdir() if re.fullmatch(r"nvidia\d+", p.name))
        except OSError:
            return 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _meminfo_available(path: Path) -> int | None:
    text = _read(path) or ""
    match = re.search(r"^MemAvailable:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def _sysconf_available() -> int:
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


def _cgroup_memory_room(root: Path) -> int | None:
    """Bytes left under the cgroup's memory limit (v2, else v1); None without a limit."""
    for limit_file, usage_file in (("memory.max", "memory.current"),
                                   ("memory/memory.limit_in_bytes",
                                    "memory/memory.usage_in_bytes")):
        limit, usage = _read(root / limit_file), _read(root / usage_file)
        if limit and limit.isdigit() and usage and usage.isdigit():
            # v1 reports "no limit" as a huge number; that never wins the min() anyway
            return int(limit) - int(usage)
    return None


def _cgroup_cpu_quota(root: Path) -> float | None:
    """CPUs granted by cpu.max (v2) or cfs quota/period (v1); None without a quota."""
    text = _read(root / "cpu.max")
    if text:
        quota, _, period = text.partition(" ")
        if quota.isdigit() and period.isdigit() and int(period):
            return int(quota) / int(period)
        return None
    quota_v1 = _read(root / "cpu" / "cpu.cfs_quota_us")
    period_v1 = _read(root / "cpu" / "cpu.cfs_period_us")
    if quota_v1 and period_v1 and quota_v1.isdigit() and period_v1.isdigit() and int(period_v1):
        return int(quota_v1) / int(period_v1)
    return None
