"""Contract: the hash-chained audit log and transaction semantics on every registry backend."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from lastgood.domain.audit import GENESIS_HASH, EventDraft, chain_hash, verify_chain
from lastgood.ports import UnitOfWorkFactory
from lastgood.testing import EPOCH, make_new_version


def draft(n: int, *, model: str = "fraud", env: str | None = "production") -> EventDraft:
    return EventDraft(action="deploy", actor="ana", model=model, env=env, subject=f"#{n}",
                      reason=f"step {n}", before={"version": n - 1}, after={"version": n},
                      evidence={"checks": ("integrity", "smoke"), "p": 0.5})


def append(registry: UnitOfWorkFactory, *drafts: EventDraft) -> None:
    with registry() as uow:
        for i, d in enumerate(drafts):
            uow.events.append(d, at=EPOCH + timedelta(seconds=i, microseconds=7))
        uow.commit()


def test_an_empty_log_is_at_genesis(registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        assert uow.events.head() == (0, GENESIS_HASH)
        assert list(uow.events.scan()) == []
        assert uow.events.list() == []


def test_appended_events_chain_onto_the_head(registry: UnitOfWorkFactory) -> None:
    append(registry, draft(1), draft(2))
    append(registry, draft(3))
    with registry() as uow:
        events = list(uow.events.scan())
        head = uow.events.head()
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS_HASH
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    assert head == (3, events[-1].hash)
    assert verify_chain(events, head=head).ok


def test_an_event_reads_back_as_sealed(registry: UnitOfWorkFactory) -> None:
    at = EPOCH.astimezone(timezone(timedelta(hours=2)))  # stored and hashed as UTC
    with registry() as uow:
        sealed = uow.events.append(draft(1), at=at)
        quiet = uow.events.append(EventDraft(action="refuse", actor="bot", outcome="refused"),
                                  at=at)
        uow.commit()
    with registry() as uow:
        stored = uow.events.list()
    assert stored == [sealed, quiet]
    assert sealed.at == EPOCH
    assert sealed.at.utcoffset() == timedelta(0)
    assert stored[0].draft.evidence == {"checks": ["integrity", "smoke"], "p": 0.5}
    assert (stored[1].draft.before, stored[1].draft.model, stored[1].draft.outcome) == (
        None, None, "refused")
    assert stored[0].hash == chain_hash(GENESIS_HASH, 1, EPOCH, stored[0].draft)


def test_list_filters_in_chain_order(registry: UnitOfWorkFactory) -> None:
    append(registry, draft(1), draft(2, model="churn"), draft(3, env="staging"), draft(4),
           draft(5, env=None))
    with registry() as uow:
        assert [e.seq for e in uow.events.list(model="fraud")] == [1, 3, 4, 5]
        assert [e.seq for e in uow.events.list(env="production")] == [1, 2, 4]
        assert [e.seq for e in uow.events.list(model="fraud", env="production")] == [1, 4]
        assert [e.seq for e in uow.events.list(after_seq=2)] == [3, 4, 5]
        assert [e.seq for e in uow.events.list(after_seq=1, limit=2)] == [2, 3]


def test_scan_pages_through_every_event(registry: UnitOfWorkFactory) -> None:
    append(registry, *(draft(n) for n in range(1, 8)))
    with registry() as uow:
        assert [e.seq for e in uow.events.scan(batch=3)] == list(range(1, 8))
        assert [e.seq for e in uow.events.scan(batch=7)] == list(range(1, 8))


def test_nothing_is_visible_without_commit(registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        uow.versions.add(make_new_version("fraud"), at=EPOCH, actor="ana")
        uow.events.append(draft(1), at=EPOCH)
        uow.leases.acquire("fraud/production", holder="op-1", now=EPOCH, ttl_s=60)
    with registry() as uow:
        assert uow.models.list() == []
        assert uow.events.head() == (0, GENESIS_HASH)
        uow.leases.acquire("fraud/production", holder="op-2", now=EPOCH, ttl_s=60)


def test_an_error_inside_the_block_rolls_everything_back(registry: UnitOfWorkFactory) -> None:
    class Boom(Exception):
        pass

    def fail_midway() -> None:
        with registry() as uow:
            uow.versions.add(make_new_version("fraud"), at=EPOCH, actor="ana")
            uow.events.append(draft(1), at=EPOCH)
            raise Boom

    with pytest.raises(Boom):
        fail_midway()
    with registry() as uow:
        assert uow.models.list() == []
        assert uow.events.list() == []


def test_commit_keeps_the_unit_of_work_open_for_the_next_transaction(
        registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        uow.versions.add(make_new_version("fraud"), at=EPOCH, actor="ana")
        uow.events.append(draft(1), at=EPOCH)
        uow.commit()
        uow.versions.add(make_new_version("fraud"), at=EPOCH, actor="ana")
        uow.events.append(draft(2), at=EPOCH)
        uow.commit()
        uow.versions.add(make_new_version("fraud"), at=EPOCH, actor="ana")  # never committed
    with registry() as uow:
        assert [v.number for v in uow.versions.list("fraud")] == [2, 1]
        assert uow.events.head()[0] == 2
    with registry() as uow:  # the discarded number is not skipped: it was never taken
        assert uow.versions.add(make_new_version("fraud"), at=EPOCH, actor="ana").number == 3
