"""Access control: API tokens (stored as sha256 hashes) and named ed25519 public keys.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NAME = sa.String(128)
SHORT = sa.String(64)
PERSON = sa.String(255)
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", SHORT, primary_key=True),
        sa.Column("owner", NAME, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", SHORT, nullable=False, unique=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("created_by", PERSON, nullable=False),
        sa.Column("expires_at", WHEN, nullable=True),
        sa.Column("revoked_at", WHEN, nullable=True),
    )
    op.create_table(
        "signing_keys",
        sa.Column("name", SHORT, primary_key=True),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("fingerprint", SHORT, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("created_by", PERSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("signing_keys")
    op.drop_table("api_tokens")
