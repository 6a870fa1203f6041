"""The liveness a service assumes when none is injected: holders are named, never judged dead.

The composition root injects `adapters.system.processes.LocalProcesses` (which can tell that a
holder's process on this host is gone); without it a crashed holder's lease is only taken over
once it expires, the safe reading.
"""

from __future__ import annotations

import uuid


class UntoldProcesses:
    """Holders named by a nonce; `is_dead` is never a guess, so it is always False."""

    def holder(self) -> str:
        return f"lastgood:{uuid.uuid4().hex[:12]}"

    def is_dead(self, holder: str) -> bool:
        return False


UNTOLD = UntoldProcesses()
