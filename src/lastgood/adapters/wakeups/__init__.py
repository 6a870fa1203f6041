"""Wake-ups for replicas of a registry that cannot notify by itself (SQLite).

`datagram`: the committing process sends one datagram to every replica of the environment it
changed, over unix sockets in a folder beside the database; `announcing`: the unit-of-work
decorator that announces after each commit that moved a desired state; `combined`: a replica's
signal made of several (the datagram socket, and the poll that covers a lost datagram).
"""

from lastgood.adapters.wakeups.announcing import AnnouncingRegistry, AnnouncingUnitOfWork
from lastgood.adapters.wakeups.datagram import (
    MAX_SOCKET_PATH,
    DatagramAnnouncer,
    DatagramSignal,
    announcer_for_url,
    env_folder,
    sqlite_file,
    wakeup_folder,
)

__all__ = ["MAX_SOCKET_PATH", "AnnouncingRegistry", "AnnouncingUnitOfWork", "AnySignal",
           "DatagramAnnouncer", "DatagramSignal", "announcer_for_url", "env_folder",
           "sqlite_file", "wakeup_folder"]


def __getattr__(name: str) -> object:
    """`AnySignal` on first use: it needs asyncio, which a command that only announces (status,
    rollback) never imports."""
    if name == "AnySignal":
        from lastgood.adapters.wakeups.combined import AnySignal

        return AnySignal
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
