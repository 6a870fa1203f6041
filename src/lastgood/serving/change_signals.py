"""The change signal fired by code: tests, and a single process that writes its own registry.

The registry's own change signals (LISTEN/NOTIFY, the poll) are adapters
(`lastgood.adapters.wakeups.change_signals`), injected by the composition root; serving only
knows the `ChangeSignal` port.
"""

from __future__ import annotations

import asyncio

__all__ = ["ManualSignal"]


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
