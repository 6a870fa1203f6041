"""Change signals: what wakes a serving replica when its environment's desired state moved.

`change_signals`: the replica's side, chosen by the registry's URL (PostgreSQL LISTEN/NOTIFY, else a
generation poll, for a SQLite file stat-gated and woken by datagrams); `datagram`: for SQLite,
the committing process sends one datagram to every replica of the environment it changed, over
unix sockets in a folder beside the database (the DB-API adapter announces after its commit);
`combined`: a replica's signal made of several (the datagram socket, and the poll that covers a
lost datagram).
"""

from lastgood.adapters.wakeups.datagram import (
    MAX_SOCKET_PATH,
    DatagramAnnouncer,
    DatagramSignal,
    announcer_for_url,
    env_folder,
    sqlite_file,
    wakeup_folder,
)

__all__ = ["MAX_SOCKET_PATH", "AnySignal", "DatagramAnnouncer", "DatagramSignal",
           "announcer_for_url", "env_folder", "sqlite_file", "wakeup_folder"]


def __getattr__(name: str) -> object:
    """`AnySignal` on first use: it needs asyncio, which a command that only announces (status,
    rollback) never imports."""
    if name == "AnySignal":
        from lastgood.adapters.wakeups.combined import AnySignal

        return AnySignal
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
