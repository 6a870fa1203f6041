"""The registry's change signals (the `ChangeSignal` port): PostgreSQL LISTEN/NOTIFY on the
channel the deployment repository notifies, and for anything else a generation poll (for a
SQLite file, gated by a stat of the file: a stat instead of a query). A SQLite file's replicas
also wake on the datagram its committers send (`datagram`), the poll being
the fallback when one is lost.

`signal_for_url(db_url)` picks one from the registry's URL, and `announcer_for_url(db_url)`
the committing side; the composition root hands the first to the serving replicas, which never
see a database URL, and gives the second to the registry of every committing process (the
DB-API adapter announces right after each commit that moved a desired state).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable
from functools import partial

from lastgood.adapters.registry_rules import NOTIFY_CHANNEL
from lastgood.adapters.wakeups.combined import AnySignal, woken
from lastgood.adapters.wakeups.datagram import DatagramSignal, sqlite_file, wakeup_folder
from lastgood.ports import ChangeSignal, UnitOfWorkFactory

__all__ = ["PollingSignal", "PostgresListenSignal", "SignalBuilder", "file_fingerprint",
           "signal_for_url"]

log = logging.getLogger(__name__)

SignalBuilder = Callable[[UnitOfWorkFactory, str], ChangeSignal]
"""Builds a replica's change signal from its unit-of-work factory and environment (picklable:
spawned serving workers call it)."""


def file_fingerprint(*paths: str) -> Callable[[], Hashable]:
    """(mtime_ns, size) of each file: any commit to a SQLite database (or its WAL) changes it."""

    def fingerprint() -> Hashable:
        found: list[tuple[int, int]] = []
        for path in paths:
            try:
                st = os.stat(path)
            except OSError:
                found.append((-1, -1))
            else:
                found.append((st.st_mtime_ns, st.st_size))
        return tuple(found)

    return fingerprint


class PollingSignal:
    """Poll `deployments.generation(env)` every `interval_s` (the SQLite way: a cheap read).

    Reads run in a worker thread; an unreachable registry reads as "no change", because the
    reconciler's own retries already cover it. With a `fingerprint` (for SQLite: the stat of
    the database files, a few microseconds), the registry is only read when the fingerprint
    moved, or every `full_every_s` regardless, so an idle replica costs next to nothing.
    """

    def __init__(self, uow_factory: UnitOfWorkFactory, env: str, *, interval_s: float = 0.02,
                 fingerprint: Callable[[], Hashable] | None = None,
                 full_every_s: float = 1.0) -> None:
        self._uow_factory, self._env, self._interval = uow_factory, env, interval_s
        self._fingerprint, self._full_every = fingerprint, full_every_s
        self._seen: Hashable = None
        self._read_at = 0.0
        self._failing = False

    def _unchanged(self) -> bool:
        """True when the fingerprint says nothing was written since the last real read."""
        if self._fingerprint is None:
            return False
        current = self._fingerprint()
        if current == self._seen and time.monotonic() - self._read_at < self._full_every:
            return True
        self._seen, self._read_at = current, time.monotonic()
        return False

    def _read(self) -> int:
        with self._uow_factory() as uow:
            return uow.deployments.generation(self._env)

    async def _generation(self) -> int | None:
        try:
            value = await asyncio.to_thread(self._read)
        except Exception as exc:
            if not self._failing:
                log.warning("polling the registry failed (will keep trying): %s", exc)
            self._failing = True
            return None
        self._failing = False
        return value

    async def wait(self, *, timeout_s: float, generation: int | None) -> bool:
        deadline = time.monotonic() + max(timeout_s, 0.0)
        while True:
            current = None if self._unchanged() else await self._generation()
            if current is not None and current != generation:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(self._interval, left))

    async def aclose(self) -> None:
        return None


class PostgresListenSignal:
    """LISTEN on NOTIFY_CHANNEL in a thread; a notification whose payload is our env wakes.

    A dropped connection is re-opened with backoff, and a reconnect counts as a change, since
    notifications sent while disconnected are lost. Imports psycopg only when started.
    """

    def __init__(self, dsn: str, env: str, *, channel: str = NOTIFY_CHANNEL,
                 reconnect_max_s: float = 10.0) -> None:
        self._dsn = dsn.replace("postgresql+psycopg://", "postgresql://", 1)
        self._env, self._channel, self._reconnect_max = env, channel, reconnect_max_s
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _fire(self) -> None:
        if self._loop is not None and self._event is not None:
            try:
                self._loop.call_soon_threadsafe(self._event.set)
            except RuntimeError:  # loop closed
                self._stop.set()

    def _listen_once(self) -> None:
        import psycopg  # imported here: only PostgreSQL deployments need it
        from psycopg import sql

        with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self._fire()  # anything may have changed while we were not listening
            while not self._stop.is_set():
                for note in conn.notifies(timeout=0.5):
                    if note.payload in (self._env, ""):
                        self._fire()

    def _run(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            try:
                self._listen_once()
            except Exception as exc:
                log.warning("LISTEN %s failed, retrying in %.1f s: %s", self._channel, delay, exc)
                self._stop.wait(delay)
                delay = min(delay * 2, self._reconnect_max)

    def _start(self) -> asyncio.Event:
        if self._event is None:
            self._loop = asyncio.get_running_loop()
            self._event = asyncio.Event()
            self._thread = threading.Thread(target=self._run, name="lastgood-listen",
                                            daemon=True)
            self._thread.start()
        return self._event

    async def wait(self, *, timeout_s: float, generation: int | None) -> bool:
        return await woken(self._start(), timeout_s)

    async def aclose(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)


def polling_signal(uow_factory: UnitOfWorkFactory, env: str, *, interval_s: float,
                   sqlite_path: str | None = None) -> ChangeSignal:
    """The poll; for a SQLite file, stat-gated and woken at once by the committers' datagrams
    (the poll then only covers a datagram that was lost)."""
    if not sqlite_path:
        return PollingSignal(uow_factory, env, interval_s=interval_s)
    # WAL mode writes the -wal file first; a checkpoint writes the database
    fingerprint = file_fingerprint(sqlite_path, f"{sqlite_path}-wal")
    return AnySignal(DatagramSignal(wakeup_folder(sqlite_path), env),
                     PollingSignal(uow_factory, env, interval_s=interval_s,
                                   fingerprint=fingerprint))


def listen_signal(db_url: str, uow_factory: UnitOfWorkFactory, env: str) -> ChangeSignal:
    return PostgresListenSignal(db_url, env)


def signal_for_url(db_url: str, *, poll_interval_s: float = 0.01) -> SignalBuilder:
    """PostgreSQL LISTEN/NOTIFY for a postgresql URL, a generation poll for anything else
    (for a SQLite file, only when the file changed: a stat instead of a query)."""
    if db_url.startswith(("postgresql", "postgres:")):
        return partial(listen_signal, db_url)
    return partial(polling_signal, interval_s=poll_interval_s, sqlite_path=sqlite_file(db_url))
