"""Who holds a lease, and whether that holder's process is gone: the engine's liveness port.

A holder is `host:pid:nonce`. `LocalProcesses` is the one place that reads the host name, the pid
and `os.kill`; the engine and the watch lease are given it (or a fake) instead of asking the
operating system themselves.
"""

from __future__ import annotations

import os
import socket
import uuid


class LocalProcesses:
    """Holders of this process; a holder is dead only if it ran on this host and its pid is gone."""

    def holder(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def is_dead(self, holder: str) -> bool:
        host, _, rest = holder.partition(":")
        pid_text = rest.partition(":")[0]
        if host != socket.gethostname() or not pid_text.isdigit():
            return False
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


LOCAL = LocalProcesses()


def make_holder() -> str:
    """A new holder name for this process (host, pid and a nonce)."""
    return LOCAL.holder()


def holder_is_dead(holder: str) -> bool:
    """True only when the holder ran on this host and its process no longer exists."""
    return LOCAL.is_dead(holder)
