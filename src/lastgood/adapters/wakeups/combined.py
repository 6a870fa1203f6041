"""A change signal made of several: it wakes when any of them does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from lastgood.ports import ChangeSignal

__all__ = ["AnySignal"]

log = logging.getLogger(__name__)


class AnySignal:
    """Wakes as soon as one of `signals` does; False once all of them timed out.

    A SQLite replica's signal: the announcements (instant) and the poll (which covers an
    announcement that never came). A member that fails is logged and the others still count;
    only when every member failed does the failure reach the reconciler (which backs off).
    """

    def __init__(self, *signals: ChangeSignal) -> None:
        if not signals:
            raise ValueError("AnySignal needs at least one signal")
        self.signals = signals

    async def wait(self, *, timeout_s: float, generation: int | None) -> bool:
        waits = [asyncio.ensure_future(s.wait(timeout_s=timeout_s, generation=generation))
                 for s in self.signals]
        try:
            return await self._first_true(waits)
        finally:
            for task in waits:
                task.cancel()
            for task in waits:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    @staticmethod
    async def _first_true(waits: Sequence[asyncio.Future[bool]]) -> bool:
        pending, errors = set(waits), []
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = task.exception()
                if error is not None:
                    log.warning("a change signal failed, the others go on: %s", error)
                    errors.append(error)
                elif task.result():
                    return True
        if len(errors) == len(waits):
            raise errors[0]
        return False

    async def aclose(self) -> None:
        for signal in self.signals:
            await signal.aclose()


async def woken(event: asyncio.Event, timeout_s: float) -> bool:
    """Whether `event` was set within `timeout_s` (cleared again for the next wait)."""
    try:
        await asyncio.wait_for(event.wait(), max(timeout_s, 0.0))
    except TimeoutError:
        return False
    event.clear()
    return True
