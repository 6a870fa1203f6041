"""Models and their immutable versions: manifest, schema, runtime needs, golden examples."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from lastgood.domain.errors import InvalidInput
from lastgood.domain.golden_outputs import (
    OutputDifference,
    output_differences,
    plain_value,
)
from lastgood.domain.golden_outputs import (
    golden_matches as golden_matches,
)

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
    """A named field of an input or output record: dtype, shape, whether it may be absent."""

    name: str
    dtype: str
    shape: tuple[int, ...] = ()
    optional: bool = False  # a record may leave it out (MLflow's `"required": false`)


@dataclass(frozen=True, slots=True)
class Param:
    """An inference parameter the model takes beside its records (MLflow's ParamSpec): a
    request may set it, else its default is passed."""

    name: str
    dtype: str  # MLflow's names: string, integer, long, float, double, boolean, datetime
    default: Any = None
    shape: tuple[int, ...] = ()  # (-1,): a list of values


@dataclass(frozen=True, slots=True)
class Schema:
    """Input and output columns of a version (empty when unknown), and its inference params."""

    inputs: tuple[Column, ...] = ()
    outputs: tuple[Column, ...] = ()
    params: tuple[Param, ...] = ()

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


class GoldenSource(StrEnum):
    """Where a golden example's expected output came from; decides how it is judged."""

    GIVEN = "given"  # the registrant stated it (--golden, the SDK): it must be reproduced
    RECORDED = "recorded"  # lastgood ran the version once at registration: it must be reproduced
    UNCHECKED = "unchecked"  # no output is known (recording was off): the input must only run


@dataclass(frozen=True, slots=True)
class GoldenExample:
    """An input record with the output the version must reproduce.

    One definition for registration, the preflight smoke test, a replica's warm-up and every
    later re-check: `golden_problems` judges them all the same way.
    """

    inputs: Mapping[str, Any]
    expected: Any
    tolerance: float = 1e-6  # numbers: |actual - expected| <= tolerance * max(1, |expected|)
    source: GoldenSource = GoldenSource.GIVEN
    # Per output of a version with several (named as in its answer): their own tolerance,
    # else `tolerance`. Labels, strings and booleans are always held exactly.
    tolerances: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)  # inference params it runs with

    def __post_init__(self) -> None:
        if self.expected is None and self.source is GoldenSource.GIVEN:  # nothing was given
            object.__setattr__(self, "source", GoldenSource.UNCHECKED)

    @property
    def checked(self) -> bool:
        """Whether the output is compared (else the example only has to run)."""
        return self.source is not GoldenSource.UNCHECKED


def golden_example(inputs: Mapping[str, Any], expected: Any, tolerance: float = 1e-6,
                   source: str | None = None, *, tolerances: Mapping[str, float] | None = None,
                   params: Mapping[str, Any] | None = None) -> GoldenExample:
    """A golden example from stored parts; records older than `source` read as given/unchecked."""
    if source is None:
        source = GoldenSource.UNCHECKED if expected is None else GoldenSource.GIVEN
    return GoldenExample(dict(inputs), expected, float(tolerance), GoldenSource(source),
                         {str(k): float(v) for k, v in (tolerances or {}).items()},
                         dict(params or {}))


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


_plain = plain_value

def golden_differences(golden: Sequence[GoldenExample], outputs: Sequence[Any]
                       ) -> list[tuple[int, OutputDifference]]:
    """Every output of every checked example that its answer does not reproduce, by index."""
    return [(i, d) for i, (g, out) in enumerate(zip(golden, outputs, strict=True)) if g.checked
            for d in output_differences(g.expected, out, g.tolerance, g.tolerances)]


def golden_problems(golden: Sequence[GoldenExample], outputs: Sequence[Any]) -> list[str]:
    """One line per output of a golden example its answer does not reproduce (unchecked ones
    only ran): which example, which output (when the version has several), by how much."""
    if len(outputs) != len(golden):
        return [f"{len(golden)} golden examples gave {len(outputs)} outputs"]
    return [f"golden example {i}{_output_part(d.output)}{_params_part(golden[i])}: {d.line()}"
            for i, d in golden_differences(golden, outputs)]


def golden_evidence(golden: Sequence[GoldenExample], outputs: Sequence[Any]
                    ) -> list[dict[str, Any]]:
    """The differences as evidence: example, output, expected, got, difference, tolerance, and
    the params the example ran with."""
    if len(outputs) != len(golden):
        return [{"problem": f"{len(golden)} golden examples gave {len(outputs)} outputs"}]
    return [{"example": i, **d.to_json(), "params": dict(golden[i].params),
             "problem": f"golden example {i}{_output_part(d.output)}"
                        f"{_params_part(golden[i])}: {d.line()}"}
            for i, d in golden_differences(golden, outputs)]


def golden_params(golden: Sequence[GoldenExample]) -> list[dict[str, Any]]:
    """The inference params each example runs with ({} for none), for check evidence."""
    return [dict(g.params) for g in golden]


def _output_part(name: str) -> str:
    return f", output {name!r}" if name else ""


def _params_part(g: GoldenExample) -> str:
    return f" (params {dict(g.params)})" if g.params else ""


def golden_summary(golden: Sequence[GoldenExample]) -> dict[str, int]:
    """How many examples of each source a version has (for check evidence)."""
    return {str(source): sum(1 for g in golden if g.source is source) for source in GoldenSource
            if any(g.source is source for g in golden)}


def with_recorded_outputs(golden: Sequence[GoldenExample],
                          outputs: Sequence[Any]) -> tuple[GoldenExample, ...]:
    """Unchecked examples with the outputs the version gave at registration, now recorded."""
    return tuple(GoldenExample(g.inputs, _plain(out), g.tolerance, GoldenSource.RECORDED,
                               g.tolerances, g.params)
                 if not g.checked else g for g, out in zip(golden, outputs, strict=True))


@dataclass(frozen=True, slots=True)
class Blob:
    """Bytes kept in the artifact store under their sha256."""

    sha256: str
    size: int
    created: bool  # False when the same bytes were already stored
