"""Replaying recorded requests on a slot: the one way to ask another version the same question.

    budget = ReplayBudget(share=0.2)  # kept by the caller across calls
    outcomes = await replay_on_slot(standby, [("req-1", records), ...], executor=pool,
                                    budget=budget)

Each request's records run on the slot's predictor in `executor` (never on the event loop),
one request at a time, resting whenever the budget is spent, so replaying takes at most
`budget.share` of one thread's time: a replay cannot take the CPU live traffic needs. The slot
is entered for the whole run, so a switch or a trim of the standbys cannot close it underneath
(it closes once the run leaves). Records that do not fit the slot's input schema are not run
(`Outcome.UNFIT`): a version cannot be asked what its schema does not take. Requests left once
`budget.max_seconds` is spent are `Outcome.SKIPPED`. Nothing is counted here; the caller
decides what an outcome means (`serving.blame` judges model errors with it).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lastgood.domain.errors import InvalidInput
from lastgood.serving.inputs import check_records
from lastgood.serving.loading import plain
from lastgood.serving.slots import Slot, SlotState

__all__ = ["Outcome", "ReplayBudget", "Replayed", "replay_on_slot"]

Records = Sequence[Mapping[str, Any]]


class Outcome(StrEnum):
    """What became of one replayed request."""

    ANSWERED = "answered"  # the slot's model answered
    RAISED = "raised"  # the slot's model raised (its own input check included)
    UNFIT = "unfit"  # the records do not fit the slot's input schema: not run
    SKIPPED = "skipped"  # not run: the slot is not warm, or the budget was spent


@dataclass(frozen=True, slots=True)
class Replayed:
    """One request's outcome on the replayed slot."""

    request_id: str
    outcome: Outcome
    predictions: Any = None  # the model's raw outputs when it answered
    error: str = ""  # `Type: message` when it raised or did not fit
    seconds: float = 0.0


class ReplayBudget:
    """How much replaying may take: `share` of one thread's time, as a token bucket (up to
    `burst_s` of work at once, refilled at `share` seconds per second), and at most
    `max_seconds` per call. Keep one per replayer and pass it to every call: it remembers
    what earlier calls spent."""

    def __init__(self, *, share: float = 0.2, burst_s: float = 0.5, max_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.share, self.burst_s, self.max_seconds = share, burst_s, max_seconds
        self._clock = clock
        self._tokens, self._at = burst_s, clock()

    def rest_after(self, spent_s: float) -> float:
        """Seconds to rest after `spent_s` of work, so work stays within the budget."""
        if self.share >= 1:
            return 0.0
        now = self._clock()
        self._tokens = min(self.burst_s, self._tokens + (now - self._at) * self.share)
        self._tokens -= spent_s
        self._at = now
        return max(-self._tokens / self.share, 0.0) if self.share > 0 else spent_s


def _run(slot: Slot, records: Records) -> Any:
    predictor = slot.predictor
    if predictor is None:
        raise RuntimeError(f"{slot.version.ref} holds no predictor")
    return predictor.predict(records)


async def _one(slot: Slot, request_id: str, records: Records, executor: Executor) -> Replayed:
    try:
        check_records(records, slot.version.schema.inputs)
    except InvalidInput as exc:
        return Replayed(request_id, Outcome.UNFIT, error=exc.message)
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    try:
        outputs = await loop.run_in_executor(executor, _run, slot, records)
    except Exception as exc:  # whatever the model raises is its answer to this input
        return Replayed(request_id, Outcome.RAISED, error=f"{type(exc).__name__}: {exc}"[:300],
                        seconds=time.perf_counter() - start)
    return Replayed(request_id, Outcome.ANSWERED, outputs, seconds=time.perf_counter() - start)


def _split(outputs: Any, sizes: Sequence[int]) -> list[list[Any]] | None:
    """The outputs of records sent together, cut back into each request's; None when they do
    not come one per record."""
    found = plain(outputs)
    if not isinstance(found, list) or len(found) != sum(sizes):
        return None
    cuts = [0, *itertools.accumulate(sizes)]
    return [found[a:b] for a, b in itertools.pairwise(cuts)]


async def _together(slot: Slot, requests: Sequence[tuple[str, Records]],
                    executor: Executor, budget: ReplayBudget) -> list[Replayed] | None:
    """Every request in one call, when all fit and the model answers them all (a pipeline
    costs about the same for thirty rows as for one); None when it raised or cannot tell."""
    if len(requests) < 2:
        return None
    try:
        for _, records in requests:
            check_records(records, slot.version.schema.inputs)
    except InvalidInput:
        return None
    rows = [record for _, records in requests for record in records]
    start = time.perf_counter()
    try:
        outputs = await asyncio.get_running_loop().run_in_executor(executor, _run, slot, rows)
    except Exception:  # some request fails there too: find which, one by one
        outputs = None
    spent = time.perf_counter() - start
    await asyncio.sleep(budget.rest_after(spent))
    each = _split(outputs, [len(r) for _, r in requests]) if outputs is not None else None
    if each is None:
        return None
    return [Replayed(rid, Outcome.ANSWERED, predictions, seconds=spent / len(requests))
            for (rid, _), predictions in zip(requests, each, strict=True)]


async def replay_on_slot(slot: Slot, requests: Sequence[tuple[str, Records]], *,
                         executor: Executor, budget: ReplayBudget) -> list[Replayed]:
    """Run each `(request_id, records)` on `slot` off the event loop, under `budget`; one
    `Replayed` per request, in order (see the module doc). Call it on the event loop.

    The requests are first tried together in one call; when that raises, one by one."""
    if slot.state is not SlotState.WARM:
        return [Replayed(rid, Outcome.SKIPPED, error=f"{slot.version.ref} is {slot.state}")
                for rid, _ in requests]
    slot.enter()
    started = time.monotonic()
    out: list[Replayed] = []
    try:
        together = await _together(slot, requests, executor, budget)
        if together is not None:
            return together
        for request_id, records in requests:
            if time.monotonic() - started > budget.max_seconds or slot.predictor is None:
                out.append(Replayed(request_id, Outcome.SKIPPED, error="the budget is spent"))
                continue
            done = await _one(slot, request_id, records, executor)
            out.append(done)
            await asyncio.sleep(budget.rest_after(done.seconds))
    finally:
        slot.leave()
    return out
