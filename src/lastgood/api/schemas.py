"""Wire schemas: request bodies (strict: unknown keys are refused) and the documented shapes of
responses, which are exactly `lastgood.services.views` (responses are the views themselves; these
models only describe them in /openapi.json, and the schema tests hold the two together).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat

Name = Annotated[str, Field(min_length=1, max_length=128)]
Ref = Annotated[Annotated[int, Field(ge=0, le=2**31 - 1)]
                | Annotated[str, Field(min_length=1, max_length=64)],
                Field(description="a version number or tag")]
Text = Annotated[str, Field(max_length=4000)]
Seconds = Annotated[float, Field(gt=0, le=3.2e9, allow_inf_nan=False)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests ----------------------------------------------------------------------------------

class DeployIn(Strict):
    version: Ref
    env: Name
    reason: Text = ""
    force: bool = False


class VerifyIn(Strict):
    env: Name
    baseline: dict[Annotated[str, Field(min_length=1, max_length=128)], FiniteFloat]
    reason: Text = ""


class RollbackIn(Strict):
    env: Name
    reason: Text = ""
    to: Ref | None = None
    force: bool = False
    dry_run: bool = False
    cause: Literal["model", "infra", "unknown"] = Field(
        "model", description="why: only `model` quarantines the replaced version")


class ResumeIn(Strict):
    model: Name | None = None
    env: Name | None = None


class RetireIn(Strict):
    reason: Text = ""


class LiftIn(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=4000, pattern=r"\S",
                                 description="why the version was not at fault (audited)")]


Dtype = Literal["float64", "float32", "int64", "int32", "bool", "string", "category", "datetime"]


class ColumnIn(Strict):
    name: Name
    dtype: Dtype
    shape: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] = []


class CheckIn(Strict):
    name: Name
    command: Text = ""
    entry_point: Text = ""
    timeout_s: Seconds = 60.0


class EnvironmentIn(Strict):
    """Only the fields sent are changed; the rest keep their value."""

    feature_schema: list[ColumnIn] | None = None
    expected_outputs: list[ColumnIn] | None = None
    runtime_drift: Literal["exact", "minor", "major", "ignore"] | None = None
    switch_mode: Literal["serving", "command"] | None = None
    deploy_command: Text | None = None
    checks: list[CheckIn] | None = None
    require_signature: bool | None = None
    trusted_keys: list[Name] | None = None
    switch_timeout_s: Seconds | None = None
    mlflow_alias: Name | None = None
    mlflow_mode: Literal["off", "mirror", "follow"] | None = None


class TokenIn(Strict):
    owner: Name
    role: Literal["viewer", "operator", "admin"]
    expires_in_s: Seconds | None = None


class KeyIn(Strict):
    name: Name
    public_key: Annotated[str, Field(min_length=1, max_length=200)]


class RegisterMeta(Strict):
    """The JSON form field `meta` of an upload; artifacts are the `file` parts."""

    tag: Name | None = None
    flavor: Name | None = None
    metrics: dict[Annotated[str, Field(min_length=1, max_length=128)], FiniteFloat] = {}
    requires: list[Text] = []
    python: Name | None = None
    schema_: Any = Field(None, alias="schema")
    golden: Any = None
    provenance: dict[str, Text] = {}
    labels: list[Name] = []
    allow_pickle: bool = False
    directory: bool = False  # keep paths relative to a folder even for a single file
    signature: Annotated[str, Field(max_length=200)] | None = None
    signed_by: Name | None = None


# -- responses (documentation of services.views) -----------------------------------------------

class WhoamiOut(BaseModel):
    owner: str
    role: str


class ModelOut(BaseModel):
    name: str
    created_at: str | None
    latest_version: int
    versions: int


class VersionSummaryOut(BaseModel):
    name: str
    version: int
    tag: str | None
    digest: str
    flavor: str
    status: str
    unsafe_format: bool
    created_at: str | None
    created_by: str
    metrics: dict[str, float]
    size: int
    mlflow_url: str | None = None  # its MLflow UI page, when it was imported from MLflow


class QuarantineOut(VersionSummaryOut):
    quarantined_at: str | None  # when the rollback quarantined it (None: not in the trail)
    operation: str  # the rollback that quarantined it
    cause: str
    quarantine_reason: str


class FileOut(BaseModel):
    path: str
    size: int
    sha256: str


class ColumnOut(BaseModel):
    name: str
    dtype: str
    shape: list[int] = []
    optional: bool = False


class ResourcesOut(BaseModel):
    memory_mb: int
    cpus: float
    gpus: int


class RuntimeOut(BaseModel):
    python: str
    packages: dict[str, str]
    resources: ResourcesOut


class SchemaOut(BaseModel):
    inputs: list[ColumnOut]
    outputs: list[ColumnOut]


class GoldenOut(BaseModel):
    input: dict[str, Any]
    output: Any
    tolerance: float
    source: str = "given"


class VersionOut(VersionSummaryOut):
    files: list[FileOut]
    runtime: RuntimeOut
    schema_: SchemaOut = Field(alias="schema")
    golden: list[GoldenOut]
    provenance: dict[str, str]
    labels: list[str]
    signature: str | None
    signed_by: str | None


class RegisteredOut(VersionOut):
    notes: list[str] = []  # what lastgood read, ignored or recorded while registering


class EventOut(BaseModel):
    seq: int
    at: str | None
    action: str
    actor: str
    model: str | None
    env: str | None
    subject: str | None
    reason: str
    outcome: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    evidence: dict[str, Any]
    prev_hash: str
    hash: str


class VerifiedOut(BaseModel):
    baseline: dict[str, float]
    window_start: str | None
    window_end: str | None
    approver: str
    at: str | None
    reason: str
    distribution: dict[str, Any] = {}  # the measured baseline the watch judges against


class DeploymentOut(BaseModel):
    id: int
    model: str
    env: str
    version: int
    started_at: str | None
    deployed_by: str
    reason: str
    operation_id: str | None
    ended_at: str | None
    end: str | None
    end_reason: str
    verified: VerifiedOut | None


class CheckOut(BaseModel):
    name: str
    status: str
    summary: str
    evidence: dict[str, Any]
    duration_ms: float


class CandidateOut(BaseModel):
    version: int
    tag: str | None
    deployment_id: int | None
    accepted: bool
    refusals: list[str]
    checks: list[CheckOut]


class OperationOut(BaseModel):
    id: str
    kind: str
    model: str
    env: str
    phase: str
    actor: str
    reason: str
    from_version: int | None
    target_version: int | None
    forced: bool
    error: str
    archive_id: str | None
    created_at: str | None
    updated_at: str | None
    candidates: list[CandidateOut]
    trigger: dict[str, Any]
    resumed: list[str] = []  # operations the command finished first
    cause: str | None = None  # a rollback's cause: model | infra | unknown


class PlanOut(BaseModel):
    model: str
    env: str
    live: int | None
    target: int | None
    dry_run: Literal[True]
    candidates: list[CandidateOut]


class CheckSpecOut(BaseModel):
    name: str
    command: str
    entry_point: str
    timeout_s: float


class EnvironmentOut(BaseModel):
    name: str
    feature_schema: list[ColumnOut] | None
    expected_outputs: list[ColumnOut] | None
    runtime_drift: str
    switch_mode: str
    deploy_command: str
    checks: list[CheckSpecOut]
    require_signature: bool
    trusted_keys: list[str]
    switch_timeout_s: float
    mlflow_alias: str = ""
    mlflow_mode: str = "off"


class ReplicaOut(BaseModel):
    replica_id: str
    version: int | None
    since: str | None
    seen_at: str | None
    state: str
    detail: str
    url: str = ""
    evidence: dict[str, Any] | None = None
    liveness: str = "live"  # live | stale (silent past the stale window) | gone (stopped)


class ReadinessOut(BaseModel):
    verdict: str  # proven | broken | unproven
    summary: str
    replicas: int
    age_s: float | None
    version: int | None
    ready: bool
    headline: str  # "rollback ready: v2, proven 12 s ago on 3/3 replicas", or what broke
    foreign_digests: list[list[str]]
    check: str = ""  # the preflight check that would refuse the target now, e.g. integrity


class StatusOut(BaseModel):
    model: str
    env: str
    desired: DeploymentOut | None
    version: VersionSummaryOut | None
    standby: list[int]
    replicas: list[ReplicaOut]
    unfinished: list[OperationOut]
    last_operation: OperationOut | None
    readiness: ReadinessOut | None = None  # of the first rollback target
    checked_at: str | None = None  # when this status was read (liveness is judged then)
    stale_after_s: float = 15.0  # a replica silent longer than this is stale


class TimelineOut(BaseModel):
    deployments: list[DeploymentOut]
    operations: list[OperationOut]


class ArchiveOut(BaseModel):
    id: str
    model: str
    env: str
    version: int
    operation_id: str
    sha256: str
    size: int
    created_at: str | None
    manifest: dict[str, Any]


class ArchiveDetailOut(ArchiveOut):
    members: list[str]


class ChainOut(BaseModel):
    ok: bool
    checked: int
    first_bad: int | None
    problem: str


class TokenOut(BaseModel):
    id: str
    owner: str
    role: str
    created_at: str | None
    created_by: str
    expires_at: str | None
    revoked_at: str | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="the secret: shown once, never stored")


class KeyOut(BaseModel):
    name: str
    algorithm: str
    public_key: str
    fingerprint: str
    created_at: str | None
    created_by: str
