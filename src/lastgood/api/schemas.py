"""Wire schemas: request bodies (strict: unknown keys are refused) and the documented shapes of
responses, which are exactly `lastgood.services.views` (responses are the views themselves; these
models only describe them in /openapi.json, and the schema tests hold the two together).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from lastgood.domain.access import KEY_NAME_PATTERN, OWNER_PATTERN
from lastgood.domain.baselines import COUNT_NAMES, LATENCY_NAME, RATE_NAMES, stated_problem
from lastgood.domain.versions import NAME_PATTERN
from lastgood.services.access import MAX_LIFETIME_S
from lastgood.services.documents import PIN_PATTERN

# The constraints below are the server's own rules, enforced by pydantic as it parses a request
# and published by the same declaration in /openapi.json: the document says what is refused.
# Patterns are written for every regex dialect involved (pydantic's, JSON Schema's, Python's):
# no lookarounds, `$` only at the end.

MAX_NUMBER = 2**31 - 1  # the largest version number a registry holds


def digits_up_to(maximum: int) -> str:
    """A regex (no anchors) for the decimal numbers 0..`maximum`, leading zeros allowed."""
    text = str(maximum)
    shorter = [f"[0-9]{{1,{len(text) - 1}}}"] if len(text) > 1 else []
    # numbers as long as `maximum`: its first i digits, a smaller digit, then any digits
    same = [f"{text[:i]}{'0' if d == '1' else f'[0-{int(d) - 1}]'}"
            + (f"[0-9]{{{len(text) - i - 1}}}" if i < len(text) - 1 else "")
            for i, d in enumerate(text) if d != "0"]
    return "0*(?:" + "|".join([*shorter, *same, text]) + ")"


def not_blank() -> str:
    """A regex (no anchors) matching text with a character `str.strip()` keeps."""
    # every character Python counts as whitespace is in the Basic Multilingual Plane
    blanks = "".join(f"\\u{c:04x}" for c in range(0x10000) if chr(c).isspace())
    return f"[^{blanks}]"


NAME = NAME_PATTERN.pattern
# A tag: a letter or digit first, then letters, digits and . _ + -, and not only digits.
TAG = r"(?:[A-Za-z]|[0-9]+[A-Za-z._+-])[A-Za-z0-9._+-]*"
REF = f"^(?:{digits_up_to(MAX_NUMBER)}|{TAG})$"

Name = Annotated[str, Field(min_length=1, max_length=128, pattern=NAME,
                            description="lowercase letters, digits, '.', '_' or '-'")]
Label = Annotated[str, Field(min_length=1, max_length=128)]
KeyName = Annotated[str, Field(pattern=KEY_NAME_PATTERN.pattern,
                               description="a signing key's name, e.g. ci-release")]
Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=f"^{TAG}$",
                           description="letters, digits, '.', '_', '+' or '-', not only digits "
                                       "(e.g. v1.4.2)")]
RefText = Annotated[str, Field(min_length=1, max_length=64, pattern=REF,
                               description=f"a version number (up to {MAX_NUMBER}) or a tag")]


def _whole(value: Any) -> Any:
    if isinstance(value, str | bool):  # pydantic would read "3" or true as a number
        raise ValueError("expected a whole number")
    return value


# Numbers as JSON Schema has them: 3 and 3.0 are integers, "3" and true are not numbers.
Count = Annotated[int, Field(ge=0, le=MAX_NUMBER), BeforeValidator(_whole)]
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Flag = StrictBool
Ref = Annotated[Count | RefText,
                Field(description="a version number or tag")]
Text = Annotated[str, Field(max_length=4000)]
Reason = Annotated[str, Field(min_length=1, max_length=4000, pattern=not_blank(),
                              description="why: it goes into the audit trail (not blank)")]
Seconds = Annotated[float, Field(strict=True, gt=0, le=3.2e9, allow_inf_nan=False)]
ARCHIVE_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"  # a plain name: nothing that leaves its table


def _possible_baseline(values: dict[str, float]) -> dict[str, float]:
    for name, value in values.items():
        problem = stated_problem(name, value)
        if problem:
            raise ValueError(problem)
    return values


_LATENCY = LATENCY_NAME.pattern.replace("([1-9]", "(?:[1-9]")
Baseline = Annotated[
    dict[Label, Number],
    Field(min_length=1, description="the measured values, e.g. {\"p95_ms\": 41}",
          json_schema_extra={"patternProperties": {
              f"^(?:{'|'.join(RATE_NAMES)})$": {"type": "number", "minimum": 0, "maximum": 1},
              f"^(?:{'|'.join(COUNT_NAMES)})$|{_LATENCY}": {"type": "number", "minimum": 0}}}),
    AfterValidator(_possible_baseline)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests ----------------------------------------------------------------------------------

class DeployIn(Strict):
    version: Ref
    env: Name
    reason: Reason
    force: Flag = False
    dry_run: Flag = False  # check (and replay on the replicas) only; nothing moves


class VerifyIn(Strict):
    env: Name
    baseline: Baseline
    reason: Reason


class RollbackIn(Strict):
    """A rollback needs a reason; its dry run (the plan) does not."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": ["reason"]},
        {"required": ["dry_run"], "properties": {"dry_run": {"const": True}}}]})

    env: Name
    reason: Reason | SkipJsonSchema[None] = None  # optional, but never null
    to: Ref | None = None
    force: Flag = False
    dry_run: Flag = False
    cause: Literal["model", "infra", "unknown"] = Field(
        "model", description="why: only `model` quarantines the replaced version")

    @field_validator("reason", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:  # only a sent null comes here: the default is not validated
            raise ValueError("a reason is text; leave it out for a dry run")
        return value

    @model_validator(mode="after")
    def _reason_unless_planning(self) -> RollbackIn:
        if self.reason is None and not self.dry_run:
            raise ValueError("reason: a rollback needs a reason (it goes into the audit trail)")
        return self


class ResumeIn(Strict):
    model: Name | None = None
    env: Name | None = None


class RetireIn(Strict):
    reason: Reason


class LiftIn(Strict):
    reason: Reason  # why the version was not at fault (audited)


Dtype = Literal["float64", "float32", "int64", "int32", "bool", "string", "category", "datetime"]


class ColumnIn(Strict):
    name: Label
    dtype: Dtype
    shape: list[Count] = []


class CheckIn(Strict):
    name: Label
    command: Text = ""
    entry_point: Text = ""
    timeout_s: Seconds = 60.0


class EnvironmentIn(Strict):
    """Only the fields sent are changed; the rest keep their value (null too, except for the
    two schemas, which null clears). Switching by command needs the command, if one is sent."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"properties": {"switch_mode": {"not": {"const": "command"}}}},
        {"properties": {"deploy_command": {"anyOf": [{"type": "string", "minLength": 1},
                                                     {"type": "null"}]}}}]})

    feature_schema: list[ColumnIn] | None = None
    expected_outputs: list[ColumnIn] | None = None
    runtime_drift: Literal["exact", "minor", "major", "ignore"] | None = None
    switch_mode: Literal["serving", "command"] | None = None
    deploy_command: Text | None = None
    checks: list[CheckIn] | None = None
    require_signature: Flag | None = None
    trusted_keys: list[KeyName] | None = None
    switch_timeout_s: Seconds | None = None
    mlflow_alias: Label | None = None
    mlflow_mode: Literal["off", "mirror", "follow"] | None = None

    @model_validator(mode="after")
    def _command_to_switch(self) -> EnvironmentIn:
        if self.switch_mode == "command" and self.deploy_command == "":
            raise ValueError("deploy_command: switch mode 'command' needs a deploy command")
        return self


class TokenIn(Strict):
    owner: Annotated[str, Field(pattern=OWNER_PATTERN.pattern,
                                description="a person or service account, e.g. ci-bot")]
    role: Literal["viewer", "operator", "admin"]
    expires_in_s: Annotated[float, Field(strict=True, gt=0, le=MAX_LIFETIME_S,
                                         allow_inf_nan=False,
                                         description="lifetime in seconds (at most 100 "
                                                     "years); none: no expiry")] | None = None


class KeyIn(Strict):
    name: KeyName
    public_key: Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{43}=$",
                                     description="base64 of the 32 raw ed25519 public key "
                                                 "bytes")]


class RegisterMeta(Strict):
    """The JSON part `meta` of an upload; artifacts are the `file` parts."""

    tag: Tag | None = None
    flavor: Label | None = None
    metrics: dict[Label, Number] = {}
    requires: list[Annotated[str, Field(max_length=4000, pattern=PIN_PATTERN.pattern,
                                        description="an exact pin: pkg==1.2.3")]] = []
    python: Label | None = None
    schema_: Any = Field(None, alias="schema")
    golden: Any = None
    provenance: dict[str, Text] = {}
    labels: list[Label] = []
    allow_pickle: Flag = False
    directory: Flag = False  # keep paths relative to a folder even for a single file
    signature: Annotated[str, Field(max_length=200)] | None = None
    signed_by: KeyName | None = None


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
    tolerances: dict[str, float] = {}  # per output of a version with several
    params: dict[str, Any] = {}  # the inference params the example runs with


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
