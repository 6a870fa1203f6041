"""The audit log in SQL: rows hash-chained, the tip kept apart in the one-row `audit_head`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import select, update

from lastgood.adapters import registry_rows as rows
from lastgood.adapters.registry_rules import utc
from lastgood.adapters.sql.session import Tx
from lastgood.adapters.sql.tables import audit_head, events
from lastgood.domain import codec
from lastgood.domain.audit import Event, EventDraft, seal

HEAD_ID = 1


class SqlEvents:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def append(self, draft: EventDraft, *, at: datetime) -> Event:
        # FOR UPDATE holds the head row until commit (PostgreSQL; SQLite is already serialised by
        # BEGIN IMMEDIATE), so two writers can never seal onto the same predecessor.
        head = self._tx.execute(select(audit_head.c.seq, audit_head.c.hash)
                                .where(audit_head.c.id == HEAD_ID).with_for_update()).one()
        event = seal((head.seq, head.hash), utc(at), codec.stored_draft(draft))
        self._tx.execute(events.insert().values(**rows.event_row(event)))
        self._tx.execute(update(audit_head).where(audit_head.c.id == HEAD_ID)
                         .values(seq=event.seq, hash=event.hash))
        return event

    def list(self, *, model: str | None = None, env: str | None = None,
             after_seq: int = 0, limit: int | None = None) -> list[Event]:
        query = select(events).where(events.c.seq > after_seq).order_by(events.c.seq).limit(limit)
        if model is not None:
            query = query.where(events.c.model == model)
        if env is not None:
            query = query.where(events.c.env == env)
        return [codec.event_from_json(r._mapping) for r in self._tx.execute(query)]

    def latest(self, *, actions: Sequence[str], model: str, env: str) -> Event | None:
        query = (select(events).where(events.c.model == model, events.c.env == env,
                                      events.c.action.in_(list(actions)))
                 .order_by(events.c.seq.desc()).limit(1))
        row = self._tx.execute(query).first()
        return None if row is None else codec.event_from_json(row._mapping)

    def scan(self, *, batch: int = 1000) -> Iterator[Event]:
        # Pages by seq rather than one huge result, so verifying a long chain stays in bounded
        # memory; ordering by seq is the "stored order" the chain is checked in.
        after: int | None = None
        while True:
            query = select(events).order_by(events.c.seq).limit(batch)
            if after is not None:
                query = query.where(events.c.seq > after)
            page = [codec.event_from_json(r._mapping) for r in self._tx.execute(query)]
            yield from page
            if len(page) < batch:
                return
            after = page[-1].seq

    def head(self) -> tuple[int, str]:
        head = self._tx.execute(select(audit_head.c.seq, audit_head.c.hash)
                                .where(audit_head.c.id == HEAD_ID)).one()
        return int(head.seq), str(head.hash)
