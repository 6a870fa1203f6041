"""Who holds a lease, and whether that holder's process is gone: the `Processes` port on this host.

A holder is `host:pid:nonce`. `LocalProcesses` is the one place that reads the host name, the pid
and `os.kill`; the composition root gives it to the engine and the watch lease, which never ask
the operating system themselves.
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
