"""Models and their immutable versions: manifest, schema, runtime needs, golden examples."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from lastgood.domain.errors import InvalidInput

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
TAG_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
DTYPES = frozenset(
    {"float64", "float32", "int64", "int32", "bool", "string", "category", "datetime"}
)


class VersionStatus(StrEnum):
    """Lifecycle of a version; the record itself never changes, only its status."""

    ACTIVE = "active"  # may be deployed and chosen as a rollback target
    QUARANTINED = "quarantined"  # failed in production; kept as evidence, never a target
    RETIRED = "retired"  # withdrawn by a person; never a target


def check_name(kind: str, value: str) -> str:
    """Return `value` if it is a valid model or environment name, else raise InvalidInput."""
    if not NAME_PATTERN.match(value):
        raise InvalidInput(
            f"invalid {kind} name {value!r}",
            fix="use lowercase letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return value


def check_tag(value: str) -> str:
    """Return `value` if it is a valid version tag such as v1.4.2, else raise InvalidInput."""
    if not TAG_PATTERN.match(value) or value.isdigit():
        raise InvalidInput(
            f"invalid tag {value!r}",
            fix="use letters, digits, '.', '_', '+' or '-' and not only digits (e.g. v1.4.2)",
        )
    return value


@dataclass(frozen=True, slots=True)
class ArtifactFile:
    """One file of a version: its path inside the version, size and content digest."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """Every file of a version; the version digest is the sha256 of its canonical JSON."""

    files: tuple[ArtifactFile, ...]

    def canonical(self) -> bytes:
        rows = sorted(({"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files),
                      key=lambda r: str(r["path"]))
        return json.dumps(rows, sort_keys=True, separators=(",", ":")).encode()

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True, slots=True)
class Column:
    """A named field of an input or output record: dtype and optional shape."""

    name: str
    dtype: str
    shape: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Schema:
    """Input and output columns of a version (empty when unknown)."""

    inputs: tuple[Column, ...] = ()
    outputs: tuple[Column, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.inputs and not self.outputs


@dataclass(frozen=True, slots=True)
class Resources:
    """What a version needs from its host."""

    memory_mb: int = 0
    cpus: float = 0.0
    gpus: int = 0


@dataclass(frozen=True, slots=True)
class Runtime:
    """What a version needs to run: Python version, package pins and host resources."""

    python: str = ""
    packages: Mapping[str, str] = field(default_factory=dict)
    resources: Resources = Resources()


@dataclass(frozen=True, slots=True)
class GoldenExample:
    """An input record with the output the version must reproduce in a smoke test."""

    inputs: Mapping[str, Any]
    expected: Any
    tolerance: float = 1e-6


@dataclass(frozen=True, slots=True)
class NewVersion:
    """Everything needed to register a version, before the registry gives it a number."""

    model: str
    manifest: Manifest
    flavor: str
    runtime: Runtime = Runtime()
    schema: Schema = Schema()
    golden: tuple[GoldenExample, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)
    provenance: Mapping[str, str] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    tag: str | None = None
    unsafe_format: bool = False
    signature: str | None = None
    signed_by: str | None = None


@dataclass(frozen=True, slots=True)
class Version:
    """An immutable registered build of a model."""

    model: str
    number: int
    manifest: Manifest
    digest: str
    flavor: str
    created_at: datetime
    created_by: str
    runtime: Runtime = Runtime()
    schema: Schema = Schema()
    golden: tuple[GoldenExample, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)
    provenance: Mapping[str, str] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    tag: str | None = None
    unsafe_format: bool = False
    status: VersionStatus = VersionStatus.ACTIVE
    signature: str | None = None
    signed_by: str | None = None

    @property
    def ref(self) -> str:
        """Human reference such as `fraud-detector@3 (v1.4.2)`."""
        return f"{self.model}@{self.number}" + (f" ({self.tag})" if self.tag else "")


@dataclass(frozen=True, slots=True)
class Model:
    """A named thing that is served, with a summary of its versions."""

    name: str
    created_at: datetime
    latest_number: int = 0
    version_count: int = 0


def validate_new_version(new: NewVersion) -> NewVersion:
    """Check the parts of a registration that do not depend on the registry's state."""
    check_name("model", new.model)
    if new.tag is not None:
        check_tag(new.tag)
    if not new.manifest.files:
        raise InvalidInput("a version needs at least one artifact file",
                           fix="point PATH at a model file or a non-empty directory")
    for f in new.manifest.files:
        if not SHA256_PATTERN.match(f.sha256) or f.size < 0:
            raise InvalidInput(f"manifest entry {f.path!r} is malformed",
                               fix="re-hash the artifact")
    for key, value in new.metrics.items():
        if not key or not math.isfinite(value):
            raise InvalidInput(f"metric {key!r}={value!r} is not a finite number",
                               fix="pass --metric NAME=NUMBER, e.g. --metric accuracy=0.93")
    for column in (*new.schema.inputs, *new.schema.outputs):
        check_column(column)
    return new


def check_column(column: Column) -> Column:
    """Return a column whose name and dtype are valid, else raise InvalidInput."""
    if not column.name:
        raise InvalidInput("a schema column has no name", fix="give every column a 'name'")
    if column.dtype not in DTYPES:
        raise InvalidInput(
            f"column {column.name!r} has unknown dtype {column.dtype!r}",
            fix=f"use one of: {', '.join(sorted(DTYPES))}",
        )
    return column


def parse_ref(ref: str) -> int | str:
    """A version reference is a number (`3`) or a tag (`v1.4.2`)."""
    text = ref.strip()
    if text.isdigit():
        return int(text)
    return check_tag(text)


def golden_matches(expected: Any, actual: Any, tolerance: float) -> bool:
    """Whether a prediction reproduces a golden output: numbers within tolerance, else equal."""
    if isinstance(expected, list | tuple) and isinstance(actual, list | tuple):
        return len(expected) == len(actual) and all(
            golden_matches(e, a, tolerance) for e, a in zip(expected, actual, strict=True))
    numeric = (int, float)
    if isinstance(expected, numeric) and isinstance(actual, numeric) \
            and not isinstance(expected, bool) and not isinstance(actual, bool):
        return abs(float(expected) - float(actual)) <= tolerance
    return bool(expected == actual)
