"""Wake-ups over unix datagram sockets in a folder beside a SQLite registry.

A SQLite registry cannot notify. Each serving replica binds one datagram socket in its
environment's folder; right after a commit that changed an environment's desired state, the
committing process sends one empty datagram to every socket in that folder, and each replica's
reconciler wakes at once instead of at its next poll:

    <database file>.wake/<first 12 hex of sha256(env)>/<pid>-<8 hex>

Why sockets in a folder and not UDP to the URL each replica reports: a SQLite registry is one
file on one host, so its replicas are on that host too. The folder is created with the
permissions of the database's own directory, so whoever may write the registry may ring its
replicas and nobody else; no port is opened, nothing crosses the network, and the committer
needs no registry read to find the replicas (a directory listing, microseconds).

A socket path longer than a unix socket allows (107 bytes) is reached through the process's
descriptor of its folder instead (`/proc/self/fd/N/name`, Linux), so a deep registry folder
keeps its wake-ups.

A replica that crashed leaves its socket file behind: the first announcement that finds nobody
bound to it removes it. Everything here is best effort, because the replicas keep polling: a lost
datagram (a full queue, a socket path longer than a unix socket allows, a folder this user may
not write) costs latency, never a switch.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import secrets
import socket
from collections.abc import Callable, Collection, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from lastgood.ports import ChangeAnnouncer

if TYPE_CHECKING:  # the replica's side only; a command that announces never imports asyncio
    import asyncio

__all__ = ["MAX_SOCKET_PATH", "DatagramAnnouncer", "DatagramSignal", "announcer_for_url",
           "env_folder", "sqlite_file", "wakeup_folder"]

log = logging.getLogger(__name__)

MAX_SOCKET_PATH = 107
"""Bytes of a unix socket path on Linux (sun_path is 108, with its terminating NUL)."""
_SOCKET_NAME = re.compile(r"^[0-9]+-[0-9a-f]{8}$")  # only names we bind are rung (or removed)


def wakeup_folder(database: str | Path) -> Path:
    """The wake-up folder of the SQLite database file `database`."""
    path = Path(database).expanduser()
    return path.with_name(path.name + ".wake")


def env_folder(folder: Path, env: str) -> Path:
    """One environment's sockets (hashed: any env name makes a short, safe file name)."""
    return folder / hashlib.sha256(env.encode()).hexdigest()[:12]


@contextlib.contextmanager
def _reach(folder: Path) -> Iterator[Callable[[str], str]]:
    """How a unix socket call names the file `name` of `folder`: its path when that fits in a
    socket address, else the same file through this process's descriptor of the folder (open
    for the block). Raises ENAMETOOLONG where neither works."""
    plain = str(folder)
    if len(os.fsencode(plain)) + 17 <= MAX_SOCKET_PATH or not os.path.isdir("/proc/self/fd"):
        yield partial(_fitting, plain)
        return
    fd = os.open(plain, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield partial(_fitting, f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def _fitting(folder: str, name: str) -> str:
    path = f"{folder}/{name}"
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise OSError(errno.ENAMETOOLONG, f"the socket path {path} is longer than "
                      f"{MAX_SOCKET_PATH} bytes (move the registry to a shorter path)")
    return path


def _make_folders(folder: Path, env_dir: Path) -> None:
    """Create the folders with the permissions of the database's directory."""
    mode = folder.parent.stat().st_mode & 0o777
    for path in (folder, env_dir):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=mode)


class DatagramAnnouncer:
    """The committing side (a `ChangeAnnouncer`): one datagram to each replica of each env."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def announce(self, envs: Collection[str]) -> None:
        found = {env: _sockets(env_folder(self.folder, env)) for env in envs}
        if not any(found.values()):
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)  # a replica whose queue is full already has a wake-up due
            for env, names in found.items():
                if names:
                    _ring_all(sock, env_folder(self.folder, env), names)


def _sockets(env_dir: Path) -> list[str]:
    try:
        with os.scandir(env_dir) as found:
            return [e.name for e in found if _SOCKET_NAME.match(e.name)]
    except OSError:  # no replica has bound a socket yet (or we may not look)
        return []


def _ring_all(sock: socket.socket, env_dir: Path, names: list[str]) -> None:
    try:
        with _reach(env_dir) as address:
            for name in names:
                _ring(sock, address, env_dir / name)
    except OSError as exc:  # the folder went away or cannot be reached: the polls cover it
        log.debug("no wake-ups in %s: %s", env_dir, exc)


def _ring(sock: socket.socket, address: Callable[[str], str], path: Path) -> None:
    try:
        sock.sendto(b"", address(path.name))
    except ConnectionRefusedError:  # nobody bound: the socket of a replica that crashed
        with contextlib.suppress(OSError):
            path.unlink()
    except OSError as exc:  # gone, full, not ours to write: its poll covers it
        log.debug("no wake-up for %s: %s", path, exc)


class DatagramSignal:
    """A replica's socket in its environment's folder (a `ChangeSignal`): `wait` is True as
    soon as an announcement arrives. Bound on the first wait, removed by `aclose`.

    Alone it never sees a change nobody announced: a SQLite replica combines it with the poll
    (`AnySignal`). When its socket cannot be bound it says why once and only times out."""

    def __init__(self, folder: Path, env: str) -> None:
        self._folder, self._dir = folder, env_folder(folder, env)
        self._sock: socket.socket | None = None
        self.path: str | None = None  # where it listens, once bound
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _start(self) -> asyncio.Event:
        if self._event is None:
            import asyncio

            self._event, self._loop = asyncio.Event(), asyncio.get_running_loop()
            try:
                self._bind(self._loop)
            except OSError as exc:
                log.warning("no wake-up socket in %s, this replica polls only: %s",
                            self._dir, exc)
        return self._event

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        name = f"{os.getpid()}-{secrets.token_hex(4)}"
        _make_folders(self._folder, self._dir)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            with _reach(self._dir) as address:
                sock.bind(address(name))
            loop.add_reader(sock.fileno(), self._drain)
        except BaseException:
            sock.close()
            raise
        self._sock, self.path = sock, str(self._dir / name)

    def _drain(self) -> None:
        """Read every datagram waiting (one wake-up covers them all) and wake."""
        assert self._sock is not None
        assert self._event is not None
        while True:
            try:
                self._sock.recv(64)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # never spin on a broken socket: the poll goes on
                log.warning("the wake-up socket %s failed, polling only: %s", self.path, exc)
                self._close()
                break
        self._event.set()

    async def wait(self, *, timeout_s: float, generation: int | None) -> bool:
        from lastgood.adapters.wakeups.combined import woken

        return await woken(self._start(), timeout_s)

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(sock.fileno())
        sock.close()
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    async def aclose(self) -> None:
        self._close()


def sqlite_file(db_url: str) -> str | None:
    """The file of a `sqlite:///PATH` URL; None for memory databases and other URLs."""
    if not db_url.startswith("sqlite") or ":///" not in db_url:
        return None
    path = db_url.split(":///", 1)[1].split("?", 1)[0]
    return path if path and path != ":memory:" else None


def announcer_for_url(db_url: str) -> ChangeAnnouncer | None:
    """Who wakes a SQLite file's replicas after a commit (datagrams in the folder beside the
    file); None where the database notifies by itself (PostgreSQL) or no other process can
    share it (a memory database)."""
    path = sqlite_file(db_url)
    return DatagramAnnouncer(wakeup_folder(path)) if path else None
