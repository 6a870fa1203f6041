"""Change signals: what wakes a reconciler early when the desired state may have changed.

A signal only says "look again": the reconciler always re-reads the whole desired state (level
triggered), so a lost or duplicated notification costs at most one resync period or one read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable
from typing import Protocol

from lastgood.ports import UnitOfWorkFactory

__all__ = ["CHANNEL", "ChangeSignal", "ManualSignal", "PollingSignal", "PostgresListenSignal",
           "file_fingerprint"]

log = logging.getLogger(__name__)

CHANNEL = "lastgood_desired"
"""The PostgreSQL channel the registry notifies with the environment's name as payload."""


class ChangeSignal(Protocol):
    async def wait(self, *, timeout_s: float, generation: int | None) -> bool:
        """Return True as soon as the desired state may differ from `generation` (the one the
        reconciler last acted on), False when `timeout_s` passes without a sign of change."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads."""
        ...


class ManualSignal:
    """A signal fired by code: tests, and a single process that writes its own registry."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake the waiting reconciler (call on the loop's thread)."""
        self._event.set()

    async def wait(self, *, timeout_s: float, generation: int | None) -> bool:
        try:
            await asyncio.wait_for(self._event.wait(), max(timeout_s, 0.0))
        except TimeoutError:
            return False
        self._event.clear()
        return True

    async def aclose(self) -> None:
        self._event.set()


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
    """LISTEN on `lastgood_desired` in a thread; a notification whose payload is our env wakes.

    A dropped connection is re-opened with backoff, and a reconnect counts as a change, since
    notifications sent while disconnected are lost. Imports psycopg only when started.
    """

    def __init__(self, dsn: str, env: str, *, channel: str = CHANNEL,
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
        event = self._start()
        try:
            await asyncio.wait_for(event.wait(), max(timeout_s, 0.0))
        except TimeoutError:
            return False
        event.clear()
        return True

    async def aclose(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)
