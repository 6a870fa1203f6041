"""The in-memory registry's own rules; the shared behaviour is in tests/contract."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from lastgood.domain.audit import EventDraft, verify_chain
from lastgood.domain.errors import AlreadyExists, NotFound, OperationInProgress
from lastgood.testing import (
    EPOCH,
    FixedClock,
    MemoryRegistry,
    make_new_version,
    memory_uow_factory,
)


def test_changes_are_visible_only_after_commit() -> None:
    registry = MemoryRegistry()
    with registry() as uow:
        uow.versions.add(make_new_version("m"), at=EPOCH, actor="a")
    with registry() as uow:
        assert uow.models.list() == []
        uow.versions.add(make_new_version("m"), at=EPOCH, actor="a")
        uow.commit()
    with registry() as uow:
        assert [m.name for m in uow.models.list()] == ["m"]
        assert uow.versions.get("m", 1).number == 1


def test_nested_unit_of_work_in_one_thread_is_refused() -> None:
    registry = memory_uow_factory()
    with registry(), pytest.raises(RuntimeError, match="already open in this thread"):
        registry().__enter__()


def test_units_of_work_in_threads_serialise_number_allocation() -> None:
    registry = MemoryRegistry()

    def register() -> None:
        with registry() as uow:
            uow.versions.add(make_new_version("m"), at=EPOCH, actor="a")
            uow.events.append(EventDraft(action="register", actor="a", model="m"), at=EPOCH)
            uow.commit()

    threads = [threading.Thread(target=register) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with registry() as uow:
        assert [v.number for v in uow.versions.list("m")] == list(range(8, 0, -1))
        assert verify_chain(uow.events.scan(), head=uow.events.head()).ok


def test_not_found_names_the_known_models_and_the_fix() -> None:
    registry = MemoryRegistry()
    with registry() as uow:
        uow.versions.add(make_new_version("b"), at=EPOCH, actor="a")
        uow.versions.add(make_new_version("a"), at=EPOCH, actor="a")
        with pytest.raises(NotFound) as caught:
            uow.models.get("x")
    assert str(caught.value) == ("unknown model 'x' — known models: a, b; "
                                 "register one with `lastgood register`")


def test_duplicate_tag_and_held_lease_say_who_and_what() -> None:
    registry = MemoryRegistry()
    with registry() as uow:
        uow.versions.add(make_new_version("m", tag="v1"), at=EPOCH, actor="a")
        with pytest.raises(AlreadyExists, match=r"'v1' \(#1\)"):
            uow.versions.add(make_new_version("m", tag="v1"), at=EPOCH, actor="a")
        uow.leases.acquire("m/production", holder="op-1", now=EPOCH, ttl_s=60)
        with pytest.raises(OperationInProgress, match="locked by op-1 until 2025-01-01T12:01:00Z"):
            uow.leases.acquire("m/production", holder="op-2", now=EPOCH, ttl_s=60)


def test_fixed_clock_moves_only_when_told() -> None:
    clock = FixedClock()
    assert clock.now() == EPOCH
    assert clock.advance(30, minutes=1) == EPOCH + timedelta(seconds=90)
    later = datetime(2030, 1, 1, tzinfo=UTC)
    assert clock.set(later) == later
    assert clock.now().tzinfo is UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2030, 1, 1))  # naive on purpose
