"""The registry's first schema: models, versions, audit events, deployments, operations.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Frozen: later changes go into new revisions. JSON is stored as exact text (see sql/types.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NAME = sa.String(128)
SHORT = sa.String(64)
PERSON = sa.String(255)
WHEN = sa.DateTime(timezone=True)
JSON = sa.Text


def upgrade() -> None:
    _versions()
    _audit()
    _deployments()
    _operations()
    _records()


def _versions() -> None:
    op.create_table(
        "models",
        sa.Column("name", NAME, primary_key=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("last_number", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", NAME, sa.ForeignKey("models.name"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("tag", SHORT, nullable=True),
        sa.Column("digest", SHORT, nullable=False),
        sa.Column("flavor", SHORT, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("created_by", PERSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("unsafe_format", sa.Boolean, nullable=False),
        sa.Column("signature", sa.Text, nullable=True),
        sa.Column("signed_by", PERSON, nullable=True),
        *(sa.Column(name, JSON, nullable=False) for name in (
            "manifest", "runtime", "schema", "golden", "metrics", "provenance", "labels")),
        sa.UniqueConstraint("model", "number", name="uq_versions_model_number"),
        sa.UniqueConstraint("model", "tag", name="uq_versions_model_tag"),
    )


def _audit() -> None:
    op.create_table(
        "events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("action", NAME, nullable=False),
        sa.Column("actor", PERSON, nullable=False),
        sa.Column("model", NAME, nullable=True),
        sa.Column("env", NAME, nullable=True),
        sa.Column("subject", sa.Text, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("before", JSON, nullable=True),
        sa.Column("after", JSON, nullable=True),
        sa.Column("evidence", JSON, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("prev_hash", SHORT, nullable=False),
        sa.Column("hash", SHORT, nullable=False),
    )
    op.create_index("ix_events_model", "events", ["model"])
    op.create_index("ix_events_env", "events", ["env"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", SHORT, nullable=False),
    )
    # The chain's genesis: seq 0 and the all-zero hash (domain.audit.GENESIS_HASH).
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": "0" * 64}])


def _deployments() -> None:
    op.create_table(
        "environments",
        sa.Column("name", NAME, primary_key=True),
        sa.Column("settings", JSON, nullable=False),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", NAME, nullable=False),
        sa.Column("env", NAME, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("deployed_by", PERSON, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("operation_id", NAME, nullable=True),
        sa.Column("ended_at", WHEN, nullable=True),
        sa.Column("end", sa.String(32), nullable=True),
        sa.Column("end_reason", sa.Text, nullable=False),
        sa.Column("verified", JSON, nullable=True),
        sa.ForeignKeyConstraint(["model", "version"], ["versions.model", "versions.number"],
                                name="fk_deployments_version"),
    )
    op.create_index("ix_deployments_model_env", "deployments", ["model", "env"])
    op.create_table(
        "generations",
        sa.Column("env", NAME, primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )


def _operations() -> None:
    op.create_table(
        "operations",
        sa.Column("id", NAME, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("model", NAME, nullable=False),
        sa.Column("env", NAME, nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("actor", PERSON, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("target_version", sa.Integer, nullable=True),
        sa.Column("forced", sa.Boolean, nullable=False),
        sa.Column("candidates", JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("archive_id", NAME, nullable=True),
        sa.Column("trigger", JSON, nullable=False),
    )
    op.create_index("ix_operations_phase", "operations", ["phase"])
    op.create_index("ix_operations_model_env", "operations", ["model", "env"])
    op.create_table(
        "leases",
        sa.Column("key", PERSON, primary_key=True),
        sa.Column("holder", PERSON, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
    )


def _records() -> None:
    op.create_table(
        "archives",
        sa.Column("id", NAME, primary_key=True),
        sa.Column("model", NAME, nullable=False),
        sa.Column("env", NAME, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("operation_id", NAME, nullable=False),
        sa.Column("sha256", SHORT, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("manifest", JSON, nullable=False),
    )
    op.create_index("ix_archives_model_env", "archives", ["model", "env"])
    op.create_table(
        "replicas",
        sa.Column("replica_id", PERSON, primary_key=True),
        sa.Column("model", NAME, primary_key=True),
        sa.Column("env", NAME, primary_key=True),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("since", WHEN, nullable=False),
        sa.Column("seen_at", WHEN, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("replicas", "archives", "leases", "operations", "generations", "deployments",
                  "environments", "audit_head", "events", "versions", "models"):
        op.drop_table(table)
