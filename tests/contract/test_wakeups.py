"""The SQLite registry's wake-ups with real processes and real unix sockets: a commit that moves
an environment's pointer wakes every replica of that environment on this host, and no other."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from lastgood.adapters.dbapi import DbRegistry
from lastgood.adapters.wakeups import (
    MAX_SOCKET_PATH,
    DatagramAnnouncer,
    DatagramSignal,
    env_folder,
    sqlite_file,
    wakeup_folder,
)
from lastgood.adapters.wakeups.change_signals import signal_for_url
from lastgood.bootstrap.services import open_registry
from lastgood.ports import UnitOfWorkFactory
from lastgood.testing import EPOCH, make_new_version
from tests.contract.wakeup_workers import listen

pytestmark = pytest.mark.slow
CTX = multiprocessing.get_context("spawn")
PATIENCE_S = 60.0  # a hang guard, not a measurement


def deploy(registry: UnitOfWorkFactory, env: str) -> None:
    with registry() as uow:
        live = uow.deployments.live("m", env)
        if live is not None:
            uow.deployments.end(live.id, at=EPOCH, end=live.end or _superseded(), reason="t")
        uow.deployments.start(model="m", env=env, version=1, at=EPOCH, actor="t", reason="t",
                              operation_id=None)
        uow.commit()


def _superseded() -> Any:
    from lastgood.domain.deployments import DeploymentEnd

    return DeploymentEnd.SUPERSEDED


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[tuple[str, DbRegistry]]:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    registry = open_registry(url, announce=True)  # as every committing process opens it
    assert registry.announcer is not None
    with registry() as uow:
        uow.versions.add(make_new_version("m"), at=EPOCH, actor="t")
        uow.commit()
    try:
        yield url, registry
    finally:
        registry.dispose()


@contextmanager
def replicas(folder: Path, *envs: str) -> Iterator[list[Any]]:
    """One child process per env, each listening on its own socket; their message queues."""
    stop = CTX.Event()
    outs = [CTX.Queue() for _ in envs]
    procs = [CTX.Process(target=listen, args=(str(folder), env, out, stop))
             for env, out in zip(envs, outs, strict=True)]
    for proc in procs:
        proc.start()
    try:
        for out in outs:
            assert out.get(timeout=PATIENCE_S)[0] == "ready"
        yield outs
    finally:
        stop.set()
        for proc in procs:
            proc.join(PATIENCE_S)
            if proc.is_alive():
                proc.kill()


def drain(out: Any) -> list[str]:
    found = []
    while True:
        try:
            found.append(out.get_nowait()[0])
        except queue.Empty:
            return found


def test_a_commit_wakes_every_replica_of_its_env_and_no_other(
        sqlite: tuple[str, DbRegistry]) -> None:
    url, registry = sqlite
    folder = wakeup_folder(sqlite_file(url) or "")
    with replicas(folder, "production", "production", "staging") as (one, two, other):
        deploy(registry, "production")
        assert one.get(timeout=PATIENCE_S) == ("woke", "production")
        assert two.get(timeout=PATIENCE_S) == ("woke", "production")
        deploy(registry, "staging")
        assert other.get(timeout=PATIENCE_S) == ("woke", "staging")
        # datagrams are queued at send time: a stray one from the first commit came first
        assert [drain(other), drain(one), drain(two)] == [[], [], []]
    assert list(env_folder(folder, "production").iterdir()) == []  # both removed their socket


def test_a_crashed_replicas_socket_is_removed_and_foreign_files_are_left(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "registry.db.wake"
    env_dir = env_folder(folder, "production")
    env_dir.mkdir(parents=True)
    monkeypatch.chdir(env_dir)  # bound by a relative name: a socket path has at most 107 bytes
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("4242-0badf00d")
    # the socket file stays behind, as a killed replica leaves it
    foreign = env_dir / "notes.txt"
    foreign.write_text("not a socket of ours")
    DatagramAnnouncer(folder).announce(["production", "nowhere"])
    assert sorted(p.name for p in env_dir.iterdir()) == ["notes.txt"]


def test_a_replica_whose_socket_cannot_be_bound_follows_by_polling(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    inner = open_registry(url)
    with inner() as uow:
        uow.versions.add(make_new_version("m"), at=EPOCH, actor="t")
        uow.commit()
    (tmp_path / "registry.db.wake").write_text("a file where the folder should be")

    async def go() -> tuple[bool, bool, str | None]:
        alone = DatagramSignal(wakeup_folder(tmp_path / "registry.db"), "production")
        unbound = await alone.wait(timeout_s=0, generation=None)
        signal = signal_for_url(url, poll_interval_s=0.01)(inner, "production")
        deploy(inner, "production")
        woke = await signal.wait(timeout_s=PATIENCE_S, generation=0)
        await signal.aclose()
        await alone.aclose()
        return unbound, woke, alone.path

    try:
        assert asyncio.run(go()) == (False, True, None)
    finally:
        inner.dispose()


def test_a_registry_deeper_than_a_socket_path_allows_still_wakes(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    folder = wakeup_folder(deep / "registry.db")

    async def go() -> tuple[bool, bool]:
        signal = DatagramSignal(folder, "production")
        await signal.wait(timeout_s=0, generation=None)
        assert signal.path is not None
        assert len(signal.path) > MAX_SOCKET_PATH
        DatagramAnnouncer(folder).announce(["production"])
        woke = await signal.wait(timeout_s=PATIENCE_S, generation=None)
        await signal.aclose()
        return woke, os.path.exists(signal.path)

    assert asyncio.run(go()) == (True, False)


def test_the_folder_takes_the_permissions_of_the_registrys_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o750)
    os.chmod(home, 0o750)

    async def go() -> None:
        signal = DatagramSignal(wakeup_folder(home / "registry.db"), "production")
        await signal.wait(timeout_s=0, generation=None)
        await signal.aclose()

    old = os.umask(0o022)
    try:
        asyncio.run(go())
    finally:
        os.umask(old)
    folder = wakeup_folder(home / "registry.db")
    assert folder.stat().st_mode & 0o777 == 0o750
    assert env_folder(folder, "production").stat().st_mode & 0o777 == 0o750
