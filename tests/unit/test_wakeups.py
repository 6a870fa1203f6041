"""Announcing commits (over the in-memory registry) and combining change signals."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import pytest

from lastgood.adapters.wakeups import AnnouncingRegistry, AnySignal
from lastgood.domain.deployments import DeploymentEnd
from lastgood.ports import UnitOfWork
from lastgood.serving.signals import ManualSignal
from lastgood.testing import EPOCH, MemoryRegistry, RecordingAnnouncer, make_new_version
from lastgood.testing import make_verified_record as verified


def start(uow: UnitOfWork, env: str, version: int = 1) -> int:
    return uow.deployments.start(model="m", env=env, version=version, at=EPOCH, actor="t",
                                 reason="t", operation_id=None).id


@pytest.fixture
def world() -> tuple[AnnouncingRegistry, RecordingAnnouncer]:
    inner = MemoryRegistry()
    with inner() as uow:
        uow.versions.add(make_new_version("m"), at=EPOCH, actor="t")
        uow.commit()
    told = RecordingAnnouncer()
    return AnnouncingRegistry(inner, told), told


def test_a_commit_that_starts_deployments_announces_their_envs_once(
        world: tuple[AnnouncingRegistry, RecordingAnnouncer]) -> None:
    registry, told = world
    with registry() as uow:
        start(uow, "production")
        start(uow, "staging")
        assert told.announced == []  # not before the commit: replicas would read the old state
        uow.commit()
    assert told.announced == [["production", "staging"]]


def test_ending_a_deployment_announces_its_env(
        world: tuple[AnnouncingRegistry, RecordingAnnouncer]) -> None:
    registry, told = world
    with registry() as uow:
        dep = start(uow, "production")
        uow.commit()
        uow.deployments.end(dep, at=EPOCH, end=DeploymentEnd.SUPERSEDED, reason="undeploy")
        uow.commit()
    assert told.announced == [["production"], ["production"]]


def test_commits_that_move_no_pointer_and_uncommitted_moves_announce_nothing(
        world: tuple[AnnouncingRegistry, RecordingAnnouncer]) -> None:
    registry, told = world
    with registry() as uow:
        dep = start(uow, "production")  # left without commit: rolled back
    with registry() as uow:
        assert uow.deployments.live("m", "production") is None
        dep = start(uow, "staging")
        uow.commit()
        uow.deployments.set_verified(dep, verified())
        uow.commit()
    assert told.announced == [["staging"]]


def test_a_failing_announcer_never_undoes_the_commit() -> None:
    class Broken:
        def announce(self, envs: Collection[str]) -> None:
            raise OSError("no socket for you")

    registry = AnnouncingRegistry(MemoryRegistry(), Broken())
    with registry() as uow:
        uow.versions.add(make_new_version("m"), at=EPOCH, actor="t")
        start(uow, "production")
        uow.commit()
    with registry() as uow:
        assert uow.deployments.live("m", "production") is not None


class Failing:
    async def wait(self, *, timeout_s: float, generation: int | None) -> bool:
        raise RuntimeError("the poll is broken")

    async def aclose(self) -> None:
        return None


def test_any_signal_wakes_on_the_first_member_that_does() -> None:
    async def go() -> tuple[bool, bool]:
        quiet, loud = ManualSignal(), ManualSignal()
        either = AnySignal(quiet, loud)
        loud.notify()
        woke = await either.wait(timeout_s=30, generation=None)
        return woke, await either.wait(timeout_s=0.01, generation=None)

    assert asyncio.run(go()) == (True, False)


def test_a_failing_member_leaves_the_others_in_charge_and_all_failing_is_an_error() -> None:
    async def go() -> bool:
        manual = ManualSignal()
        asyncio.get_running_loop().call_later(0.01, manual.notify)
        return await AnySignal(Failing(), manual).wait(timeout_s=30, generation=None)

    assert asyncio.run(go()) is True
    with pytest.raises(RuntimeError, match="broken"):
        asyncio.run(AnySignal(Failing(), Failing()).wait(timeout_s=30, generation=None))
    with pytest.raises(ValueError, match="at least one"):
        AnySignal()
