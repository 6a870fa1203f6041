"""Pure compatibility rules: data contract (schema diff) and runtime drift between pins and host."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lastgood.domain.deployments import RuntimeDrift
from lastgood.domain.versions import Column, Resources


@dataclass(frozen=True, slots=True)
class SchemaDiff:
    """How a version's columns differ from what the environment provides or expects."""

    missing: tuple[str, ...] = ()  # the version needs it; the environment does not provide it
    dtype_changes: tuple[tuple[str, str, str], ...] = ()  # (column, version's, environment's)
    extra: tuple[str, ...] = ()  # the environment provides it; the version ignores it

    @property
    def compatible(self) -> bool:
        return not self.missing and not self.dtype_changes

    def describe(self) -> str:
        parts = [f"missing column {c!r}" for c in self.missing]
        parts += [f"column {c!r} is {want} in the version but {have} now"
                  for c, want, have in self.dtype_changes]
        return "; ".join(parts) or "compatible"


# Widening that is safe for a model input: an int column can feed a model trained on floats.
SAFE_WIDENING = frozenset({("float64", "float32"), ("float64", "int64"), ("float64", "int32"),
                           ("float32", "int32"), ("int64", "int32"), ("float32", "float64")})


def diff_schema(required: Sequence[Column], provided: Sequence[Column]) -> SchemaDiff:
    """Compare the columns a version requires with the columns the environment provides."""
    have = {c.name: c for c in provided}
    missing = tuple(c.name for c in required if c.name not in have)
    changes = tuple(
        (c.name, c.dtype, have[c.name].dtype)
        for c in required
        if c.name in have and c.dtype != have[c.name].dtype
        and (c.dtype, have[c.name].dtype) not in SAFE_WIDENING
    )
    names = {c.name for c in required}
    extra = tuple(c.name for c in provided if c.name not in names)
    return SchemaDiff(missing=missing, dtype_changes=changes, extra=extra)


_VERSION_PARTS = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def release_parts(version: str) -> tuple[int, int, int] | None:
    """`1.4.2rc1` -> (1, 4, 2); None if it does not start with a number."""
    m = _VERSION_PARTS.match(version.strip())
    if not m:
        return None
    return (int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0))


def package_drift(want: str, have: str | None, policy: RuntimeDrift) -> str | None:
    """A refusal if `have` drifts from `want` beyond `policy`, else None."""
    if have is None:
        return "not installed"
    if want == have:
        return None
    w, h = release_parts(want), release_parts(have)
    if policy is RuntimeDrift.IGNORE:
        return None
    if policy is RuntimeDrift.EXACT or w is None or h is None:
        return f"needs =={want}, host has {have}"
    depth = 2 if policy is RuntimeDrift.MINOR else 1
    if w[:depth] != h[:depth]:
        return f"needs {want}, host has {have} ({policy} drift exceeded)"
    return None


def normal_name(name: str) -> str:
    """A distribution name as PEP 503 compares them: `PyYAML`, `py_yaml` and `py.yaml` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_drift(
    packages: Mapping[str, str], installed: Mapping[str, str], policy: RuntimeDrift
) -> dict[str, str]:
    """Map each pinned package that does not fit the host to the reason."""
    normal = {normal_name(k): v for k, v in installed.items()}
    problems: dict[str, str] = {}
    for name, want in sorted(packages.items()):
        reason = package_drift(want, normal.get(normal_name(name)), policy)
        if reason:
            problems[name] = reason
    return problems


def python_drift(want: str, have: str) -> str | None:
    """A refusal if the host Python's major.minor differs from the version's."""
    if not want:
        return None
    w, h = release_parts(want), release_parts(have)
    if w is None or h is None or w[:2] != h[:2]:
        return f"needs Python {want}, host has {have}"
    return None


def resource_shortfall(need: Resources, host: Resources) -> list[str]:
    """What the host lacks for a version's declared needs."""
    short: list[str] = []
    if need.memory_mb > host.memory_mb:
        short.append(f"needs {need.memory_mb} MB memory, host has {host.memory_mb} MB available")
    if need.cpus > host.cpus:
        short.append(f"needs {need.cpus:g} CPUs, host has {host.cpus:g}")
    if need.gpus > host.gpus:
        short.append(f"needs {need.gpus} GPUs, host has {host.gpus}")
    return short


@dataclass(frozen=True, slots=True)
class HostFacts:
    """The serving environment as it is today."""

    python: str
    packages: Mapping[str, str]
    resources: Resources
    hostname: str
    platform: str
