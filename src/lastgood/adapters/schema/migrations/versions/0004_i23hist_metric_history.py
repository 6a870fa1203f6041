"""Metric history: per-version bucket summaries written by the replicas, rolled up over time.

Revision ID: 0004_i23hist
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_i23hist"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("env", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("replica", sa.String(255), nullable=False),
        sa.Column("resolution_s", sa.Integer(), nullable=False),
        sa.Column("at_s", sa.BigInteger(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
    )
    op.create_index("ix_metric_history_series", "metric_history", ["model", "env", "at_s"])
    op.create_index("ix_metric_history_tier", "metric_history", ["resolution_s", "at_s"])


def downgrade() -> None:
    op.drop_index("ix_metric_history_tier", "metric_history")
    op.drop_index("ix_metric_history_series", "metric_history")
    op.drop_table("metric_history")
