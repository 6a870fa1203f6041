"""Model errors judged against the way back (safety rule 12): is it the version, or the input?

When the live version raises on a request that passed every input check, the request is kept
(bounded: the `max_pending` most recent per model, at most `max_records` records in all) and
replayed off the event loop, under a CPU budget (`serving.replay`), on the model's rollback
target: its first warm standby. A failure the way back reproduces is the input's
(`errors_input` in the version's stats); one it answers is the version's. Until its replay is
done a failure is `errors_pending`; one never replayed (no standby, the bound, a request the
standby's schema does not take) stays a plain error, blamed on the version as before. The
metric source the watch reads judges only the errors the way back does not reproduce.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from lastgood.serving.replay import ReplayBudget, replay_on_slot
from lastgood.serving.slots import Slot, SlotState
from lastgood.serving.state import ServingState

__all__ = ["Blame", "BlameOptions"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BlameOptions:
    """How many failing requests a replica keeps for replay, and what replaying may cost."""

    max_pending: int = 64  # failing requests kept per model, the most recent (0: no replay)
    max_records: int = 4096  # records kept in all, per model
    share: float = 0.2  # of one thread's time replaying may take (serving.replay.ReplayBudget)
    burst_s: float = 0.5  # of replaying at once before the share applies


@dataclass(frozen=True, slots=True)
class _Failure:
    request_id: str
    version: int
    records: Sequence[Mapping[str, Any]]


class Blame:
    """The failing requests of one replica and the task that replays them (on the loop)."""

    def __init__(self, state: ServingState, options: BlameOptions | None = None) -> None:
        self.state, self.options = state, options or BlameOptions()
        self._pending: dict[str, deque[_Failure]] = {}
        self._executor: ThreadPoolExecutor | None = None  # one thread, made on first use
        self._task: asyncio.Task[None] | None = None
        self._budget = ReplayBudget(share=self.options.share, burst_s=self.options.burst_s)

    def failed(self, model: str, slot: Slot, request_id: str,
               records: Sequence[Mapping[str, Any]]) -> None:
        """A model error of `slot` on valid input: keep it for a replay on the way back, when
        the slot is live and a warm standby is held. Called on the event loop, never awaits."""
        table = self.state.tables.get(model)
        if table is None or table.live is not slot or not table.standby \
                or self.options.max_pending <= 0 or len(records) > self.options.max_records:
            return
        queue = self._pending.setdefault(model, deque())
        while queue and (len(queue) >= self.options.max_pending or sum(
                len(f.records) for f in queue) + len(records) > self.options.max_records):
            dropped = queue.popleft()  # the oldest gives way: it stays the version's error
            self.state.recorder.replay_settled(model, dropped.version, None, on=None)
        queue.append(_Failure(request_id, slot.number, records))
        self.state.recorder.replay_pending(model, slot.number)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(),
                                                                name="lastgood-blame")

    async def _drain(self) -> None:
        while any(self._pending.values()):
            for model, queue in list(self._pending.items()):
                batch = list(queue)
                queue.clear()
                if batch:
                    await self._replay(model, batch)

    async def _replay(self, model: str, batch: list[_Failure]) -> None:
        table = self.state.tables.get(model)
        target = next(iter(table.standby.values()), None) if table is not None else None
        if target is None or target.state is not SlotState.WARM:
            for failure in batch:
                self.state.recorder.replay_settled(model, failure.version, None, on=None)
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="lastgood-replay")
        try:
            outcomes = await replay_on_slot(target, [(f.request_id, f.records) for f in batch],
                                            executor=self._executor,
                                            budget=self._budget)
        except Exception:  # never let judging errors break serving
            log.exception("replaying %d failing requests of %s failed", len(batch), model)
            outcomes = []
        for i, failure in enumerate(batch):
            outcome = outcomes[i].outcome if i < len(outcomes) else None
            self.state.recorder.replay_settled(model, failure.version, outcome,
                                               on=target.number)

    async def stop(self) -> None:
        """Stop replaying (the replica is shutting down)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=False)

