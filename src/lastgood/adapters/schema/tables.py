"""The registry's tables (SQLAlchemy Core). Migrations create them; tests compare the two.

Numbers are allocated from `models.last_number` and the audit chain's tip lives in the one-row
`audit_head`, so both can be locked (row lock on PostgreSQL, BEGIN IMMEDIATE on SQLite).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from lastgood.adapters.schema.types import Json, UtcDateTime

NAME = 128  # model and env names (NAME_PATTERN), ids
SHORT = 64  # digests, tags

metadata = MetaData()

models = Table(
    "models", metadata,
    Column("name", String(NAME), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_number", Integer, nullable=False, server_default="0"),
)

versions = Table(
    "versions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(NAME), ForeignKey("models.name"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("tag", String(SHORT), nullable=True),
    Column("digest", String(SHORT), nullable=False),
    Column("flavor", String(SHORT), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("unsafe_format", Boolean, nullable=False),
    Column("signature", Text, nullable=True),
    Column("signed_by", String(255), nullable=True),
    Column("manifest", Json, nullable=False),
    Column("runtime", Json, nullable=False),
    Column("schema", Json, nullable=False),
    Column("golden", Json, nullable=False),
    Column("metrics", Json, nullable=False),
    Column("provenance", Json, nullable=False),
    Column("labels", Json, nullable=False),
    UniqueConstraint("model", "number", name="uq_versions_model_number"),
    UniqueConstraint("model", "tag", name="uq_versions_model_tag"),
)

events = Table(
    "events", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", UtcDateTime, nullable=False),
    Column("action", String(NAME), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("model", String(NAME), nullable=True),
    Column("env", String(NAME), nullable=True),
    Column("subject", Text, nullable=True),
    Column("reason", Text, nullable=False),
    Column("before", Json, nullable=True),
    Column("after", Json, nullable=True),
    Column("evidence", Json, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("prev_hash", String(SHORT), nullable=False),
    Column("hash", String(SHORT), nullable=False),
    Index("ix_events_model", "model"),
    Index("ix_events_env", "env"),
)

audit_head = Table(
    "audit_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("seq", Integer, nullable=False),
    Column("hash", String(SHORT), nullable=False),
)

environments = Table(
    "environments", metadata,
    Column("name", String(NAME), primary_key=True),
    Column("settings", Json, nullable=False),
)

deployments = Table(
    "deployments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(NAME), nullable=False),
    Column("env", String(NAME), nullable=False),
    Column("version", Integer, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("deployed_by", String(255), nullable=False),
    Column("reason", Text, nullable=False),
    Column("operation_id", String(NAME), nullable=True),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("end", String(32), nullable=True),
    Column("end_reason", Text, nullable=False),
    Column("verified", Json, nullable=True),
    ForeignKeyConstraint(["model", "version"], ["versions.model", "versions.number"],
                         name="fk_deployments_version"),
    Index("ix_deployments_model_env", "model", "env"),
)

generations = Table(
    "generations", metadata,
    Column("env", String(NAME), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

operations = Table(
    "operations", metadata,
    Column("id", String(NAME), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("model", String(NAME), nullable=False),
    Column("env", String(NAME), nullable=False),
    Column("phase", String(16), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("from_version", Integer, nullable=True),
    Column("target_version", Integer, nullable=True),
    Column("forced", Boolean, nullable=False),
    Column("candidates", Json, nullable=False),
    Column("error", Text, nullable=False),
    Column("archive_id", String(NAME), nullable=True),
    Column("trigger", Json, nullable=False),
    Index("ix_operations_phase", "phase"),
    Index("ix_operations_model_env", "model", "env"),
)

leases = Table(
    "leases", metadata,
    Column("key", String(255), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

archives = Table(
    "archives", metadata,
    Column("id", String(NAME), primary_key=True),
    Column("model", String(NAME), nullable=False),
    Column("env", String(NAME), nullable=False),
    Column("version", Integer, nullable=False),
    Column("operation_id", String(NAME), nullable=False),
    Column("sha256", String(SHORT), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("manifest", Json, nullable=False),
    Index("ix_archives_model_env", "model", "env"),
)

replicas = Table(
    "replicas", metadata,
    Column("replica_id", String(255), primary_key=True),
    Column("model", String(NAME), primary_key=True),
    Column("env", String(NAME), primary_key=True),
    Column("version", Integer, nullable=True),
    Column("since", UtcDateTime, nullable=False),
    Column("seen_at", UtcDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("detail", Text, nullable=False),
    Column("url", Text, nullable=False, server_default=""),  # revision 0003
    Column("evidence", Json, nullable=True),  # revision 0003: readiness evidence
)

# -- access control (revision 0002) -----------------------------------------------------------

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", String(SHORT), primary_key=True),
    Column("owner", String(NAME), nullable=False),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(SHORT), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
)

signing_keys = Table(
    "signing_keys", metadata,
    Column("name", String(SHORT), primary_key=True),
    Column("algorithm", String(16), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("fingerprint", String(SHORT), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(255), nullable=False),
)

# -- metric history (revisions 0004_i23hist, 0005_history_columns) -----------------------------
# One row per (model, env, version, replica, bucket): what the version did in the bucket, in the
# stored form of `lastgood.domain.history.StoredPoint`: counts and latency quantiles as numbers
# (a reading of one row a bucket decodes nothing), histograms and custom metrics as compact JSON
# text. Times are whole epoch seconds, so a range is an integer comparison on both databases.

metric_history = Table(
    "metric_history", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("model", String(NAME), nullable=False),
    Column("env", String(NAME), nullable=False),
    Column("version", Integer, nullable=False),
    Column("replica", String(255), nullable=False),
    Column("resolution_s", Integer, nullable=False),
    Column("at_s", BigInteger, nullable=False),
    Column("requests", BigInteger, nullable=True),  # NULL: no request counts in the bucket
    Column("errors", BigInteger, nullable=True),
    Column("labelled", BigInteger, nullable=True),  # NULL: no labelled feedback
    Column("correct", BigInteger, nullable=True),
    Column("p50_s", Float, nullable=True),  # NULL: no latency
    Column("p95_s", Float, nullable=True),
    Column("p99_s", Float, nullable=True),
    Column("latency", Text, nullable=True),
    Column("predictions", Text, nullable=True),
    Column("custom", Text, nullable=True),
    Index("ix_metric_history_series", "model", "env", "at_s"),
    Index("ix_metric_history_tier", "resolution_s", "at_s"),
)
