"""Metric history in columns: counts and latency quantiles as numbers, histograms and custom
metrics as their own compact JSON text, instead of one JSON summary a point.

A reading of one point a bucket (every rolled-up tier) then decodes nothing. Rows written before
are converted in place, in batches: the same numbers, nothing lost.

Revision ID: 0005_history_columns
Revises: 0004_i23hist
Create Date: 2026-12-08
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005_history_columns"
down_revision = "0004_i23hist"
branch_labels = None
depends_on = None

_NUMBERS = ("requests", "errors", "labelled", "correct")
_QUANTILES = ("p50_s", "p95_s", "p99_s")
_TEXTS = ("latency", "predictions", "custom")
_BATCH = 2000
_HISTORY = sa.table("metric_history", sa.column("id"), sa.column("summary"),
                    *(sa.column(c) for c in _NUMBERS + _QUANTILES + _TEXTS))


def _text(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _columns(summary: str) -> dict[str, Any]:
    """The new columns of one old summary (a damaged one keeps no numbers: readings skip it)."""
    from lastgood.domain.history import QUANTILES, sparse_quantiles

    out: dict[str, Any] = dict.fromkeys(_NUMBERS + _QUANTILES + _TEXTS)
    try:
        data = json.loads(summary)
        if "e" in data:
            out["errors"], out["requests"] = int(data["e"][0]), int(data["e"][1])
        if "a" in data:
            out["correct"], out["labelled"] = int(data["a"][0]), int(data["a"][1])
        if "l" in data:
            out["latency"] = _text(data["l"])
            out.update(zip(_QUANTILES, sparse_quantiles(data["l"], QUANTILES), strict=True))
        if "p" in data:
            out["predictions"] = _text(data["p"])
        if data.get("x"):
            out["custom"] = _text(data["x"])
    except (KeyError, TypeError, ValueError, IndexError):
        out = dict.fromkeys(_NUMBERS + _QUANTILES + _TEXTS)
        out["custom"] = "damaged"  # not JSON: a reading counts the point as damaged
    return out


def _summary(row: Any) -> str:
    data: dict[str, Any] = {}
    if row.requests is not None:
        data["e"] = [row.errors, row.requests]
    if row.labelled is not None:
        data["a"] = [row.correct, row.labelled]
    for key, column in (("l", row.latency), ("p", row.predictions), ("x", row.custom)):
        if column:
            data[key] = json.loads(column)
    return _text(data)


def _convert(select: Any, values: Any, names: tuple[str, ...]) -> None:
    """Rewrite every row in batches by id: `values(row)` gives its new `names` columns."""
    bind = op.get_bind()
    update = _HISTORY.update().where(_HISTORY.c.id == sa.bindparam("row_id")).values(
        {name: sa.bindparam(name) for name in names})
    last = -1
    while True:
        rows = bind.execute(select.where(_HISTORY.c.id > last).order_by(_HISTORY.c.id)
                            .limit(_BATCH)).fetchall()
        if not rows:
            return
        bind.execute(update, [{"row_id": row.id, **values(row)} for row in rows])
        last = rows[-1].id


def upgrade() -> None:
    for name in _NUMBERS:
        op.add_column("metric_history", sa.Column(name, sa.BigInteger(), nullable=True))
    for name in _QUANTILES:
        op.add_column("metric_history", sa.Column(name, sa.Float(), nullable=True))
    for name in _TEXTS:
        op.add_column("metric_history", sa.Column(name, sa.Text(), nullable=True))
    _convert(sa.select(_HISTORY.c.id, _HISTORY.c.summary), lambda row: _columns(row.summary),
             _NUMBERS + _QUANTILES + _TEXTS)
    with op.batch_alter_table("metric_history") as batch:
        batch.drop_column("summary")


def downgrade() -> None:
    op.add_column("metric_history", sa.Column("summary", sa.Text(), nullable=True))
    _convert(sa.select(_HISTORY), lambda row: {"summary": _summary(row)}, ("summary",))
    with op.batch_alter_table("metric_history") as batch:
        batch.alter_column("summary", existing_type=sa.Text(), nullable=False)
        for name in _NUMBERS + _QUANTILES + _TEXTS:
            batch.drop_column(name)
