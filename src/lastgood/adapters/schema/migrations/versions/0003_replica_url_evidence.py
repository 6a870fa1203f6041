"""Replica reports carry the URL the replica serves on and its readiness evidence.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.add_column(sa.Column("url", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("evidence", sa.Text(), nullable=True))  # JSON text


def downgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.drop_column("evidence")
        batch.drop_column("url")
