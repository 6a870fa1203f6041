"""Requests that arrive while a slot's predictor is busy ride together in its next call.

A scikit-learn pipeline costs about the same for one row as for thirty (its per-call overhead
dominates), so under concurrent load a replica answers many requests with one `predict`. Each
request still gets exactly its own outputs, in order, and keeps its own latency and counters.
If a combined call fails, its requests are run again one by one, so only a request that fails
alone fails: one bad record never takes its neighbours down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from lastgood.ports import Predictor

Records = Sequence[Mapping[str, Any]]
MAX_RECORDS = 256  # the most records one combined call carries


@dataclass
class Batcher:
    """One predictor's queue: at most one call in flight, the rest wait and go together."""

    predictor: Predictor
    pool: Executor
    settle: Callable[[Any, int], list[Any]]  # the outputs as a plain list of `count`
    _waiting: list[tuple[Records, asyncio.Future[list[Any]]]] = field(default_factory=list)
    _busy: bool = False
    _task: asyncio.Task[None] | None = None  # held: the loop keeps only weak references

    async def predict(self, records: Records) -> list[Any]:
        """This request's outputs, computed alone or together with others waiting."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((records, future))
        if not self._busy:
            self._busy = True
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._take()
                await self._run(batch)
        finally:
            self._busy = False

    def _take(self) -> list[tuple[Records, asyncio.Future[list[Any]]]]:
        taken, count = 0, 0
        for records, _ in self._waiting:
            if taken and count + len(records) > MAX_RECORDS:
                break
            taken, count = taken + 1, count + len(records)
        batch, self._waiting = self._waiting[:taken], self._waiting[taken:]
        return batch

    async def _run(self, batch: list[tuple[Records, asyncio.Future[list[Any]]]]) -> None:
        loop = asyncio.get_running_loop()
        flat = [r for records, _ in batch for r in records]
        try:
            outputs = self.settle(await loop.run_in_executor(self.pool, self.predictor.predict,
                                                             flat), len(flat))
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            for records, future in batch:  # alone, so only the request at fault fails
                await self._run([(records, future)])
            return
        start = 0
        for records, future in batch:
            if not future.done():
                future.set_result(outputs[start:start + len(records)])
            start += len(records)
