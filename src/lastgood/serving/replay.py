"""Replaying recorded requests on a version: the one way to ask another version the same
question, and the one budget that keeps it from taking the CPU live traffic needs.

    budget = ReplayBudget(share=0.2)  # kept by the caller across calls
    outcomes = replay_requests(predictor, version, [("req-1", records), ...], budget=budget)
    outcomes = await replay_on_slot(standby, requests, executor=pool, budget=budget)

`replay_requests` runs in the calling thread (never call it on the event loop): requests go to
the predictor `chunk` at a time in one call (a pipeline costs about the same for thirty rows as
for one); a chunk that raises, or whose answers do not come one per record, is asked again one
request at a time. After every call the thread rests as long as `budget` says, measured in this
thread's own CPU time (`time.thread_time`), so replaying takes at most `budget.share` of one
core however busy the live requests keep the interpreter. Requests left once
`budget.max_seconds` of wall time is spent are `Outcome.SKIPPED`. Records that do not fit the
version's input schema are not run (`Outcome.UNFIT`): a version cannot be asked what its schema
does not take.

Two callers share it: the blame of model errors on the way back (`serving.blame`, through
`replay_on_slot`, which holds the slot open for the run) and the replay of today's traffic on
every warm standby (`serving.replay_proof`). Nothing is counted here; each caller decides what
an outcome means.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lastgood.domain.errors import InvalidInput
from lastgood.domain.versions import Version
from lastgood.ports import Predictor
from lastgood.serving.inputs import check_records
from lastgood.serving.loading import plain
from lastgood.serving.slots import Slot, SlotState

__all__ = ["Outcome", "ReplayBudget", "Replayed", "replay_on_slot", "replay_requests"]

Records = Sequence[Mapping[str, Any]]
Request = tuple[str, Records]


class Outcome(StrEnum):
    """What became of one replayed request."""

    ANSWERED = "answered"  # the model answered
    RAISED = "raised"  # the model raised (its own input check included)
    UNFIT = "unfit"  # the records do not fit the version's input schema: not run
    SKIPPED = "skipped"  # not run: the slot is not warm, or the budget was spent


@dataclass(frozen=True, slots=True)
class Replayed:
    """One request's outcome on the replayed version."""

    request_id: str
    outcome: Outcome
    predictions: Any = None  # the model's outputs when it answered (a list, one per record,
    #                          when they come that way)
    error: str = ""  # `Type: message` when it raised or did not fit
    seconds: float = 0.0


class ReplayBudget:
    """How much replaying may take: `share` of one core's CPU time, as a token bucket (up to
    `burst_s` of work at once, refilled at `share` seconds per second), and at most
    `max_seconds` of wall time per call. Keep one per replayer and pass it to every call: it
    remembers what earlier calls spent. Safe to share between threads."""

    def __init__(self, *, share: float = 0.2, burst_s: float = 0.5, max_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.share, self.burst_s, self.max_seconds = share, burst_s, max_seconds
        self._clock = clock
        self._tokens, self._at = burst_s, clock()
        self._lock = threading.Lock()

    def rest_after(self, spent_s: float) -> float:
        """Seconds to rest after `spent_s` of work, so work stays within the budget."""
        if self.share >= 1:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst_s, self._tokens + (now - self._at) * self.share)
            self._tokens -= spent_s
            self._at = now
            return max(-self._tokens / self.share, 0.0) if self.share > 0 else spent_s


def _error(exc: Exception) -> str:
    message = exc.message if isinstance(exc, InvalidInput) else str(exc)
    return f"{type(exc).__name__}: {message}"[:300]


def _split(outputs: Any, sizes: Sequence[int]) -> list[list[Any]] | None:
    """The outputs of records sent together, cut back into each request's; None when they do
    not come one per record."""
    found = plain(outputs)
    if not isinstance(found, list) or len(found) != sum(sizes):
        return None
    cuts = [0, *itertools.accumulate(sizes)]
    return [found[a:b] for a, b in itertools.pairwise(cuts)]


class _Run:
    """One call of `replay_requests`: the predictor, the budget, and the clock it runs on."""

    def __init__(self, predictor: Predictor, version: Version, budget: ReplayBudget) -> None:
        self.predictor, self.version, self.budget = predictor, version, budget
        self.deadline = time.monotonic() + budget.max_seconds

    def predict(self, records: Records) -> tuple[Any, float]:
        """The model's outputs, and the wall time they took; then rest as the budget says."""
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return self.predictor.predict(records), time.perf_counter() - start
        finally:
            time.sleep(self.budget.rest_after(time.thread_time() - cpu))

    def together(self, chunk: Sequence[Request]) -> list[Replayed] | None:
        """Every request of `chunk` in one call when all fit and the model answers them all,
        one per record; None when it cannot tell which (then one by one)."""
        try:
            for _, records in chunk:
                check_records(records, self.version.schema.inputs)
            outputs, spent = self.predict([r for _, records in chunk for r in records])
        except Exception:  # some request does not fit or fails: find which, one by one
            return None
        each = _split(outputs, [len(r) for _, r in chunk])
        if each is None:
            return None
        return [Replayed(rid, Outcome.ANSWERED, predictions, seconds=spent / len(chunk))
                for (rid, _), predictions in zip(chunk, each, strict=True)]

    def one(self, request_id: str, records: Records) -> Replayed:
        try:
            check_records(records, self.version.schema.inputs)
        except InvalidInput as exc:
            return Replayed(request_id, Outcome.UNFIT, error=_error(exc))
        start = time.perf_counter()
        try:
            outputs, spent = self.predict(records)
        except Exception as exc:  # whatever the model raises is its answer to this input
            return Replayed(request_id, Outcome.RAISED, error=_error(exc),
                            seconds=time.perf_counter() - start)
        found = plain(outputs)
        return Replayed(request_id, Outcome.ANSWERED, found, seconds=spent)


def replay_requests(predictor: Predictor, version: Version, requests: Sequence[Request], *,
                    budget: ReplayBudget, chunk: int = 64) -> list[Replayed]:
    """Run each `(request_id, records)` on `predictor` (the model of `version`) in this
    thread, `chunk` requests per call, under `budget`; one `Replayed` per request, in order
    (see the module doc)."""
    run, out = _Run(predictor, version, budget), []
    size = max(chunk, 1)
    for i in range(0, len(requests), size):
        part = requests[i:i + size]
        if time.monotonic() > run.deadline:
            out += [Replayed(rid, Outcome.SKIPPED, error="the budget is spent")
                    for rid, _ in part]
            continue
        together = run.together(part) if len(part) > 1 else None
        if together is not None:
            out += together
            continue
        for request_id, records in part:
            if time.monotonic() > run.deadline:
                out.append(Replayed(request_id, Outcome.SKIPPED, error="the budget is spent"))
            else:
                out.append(run.one(request_id, records))
    return out


async def replay_on_slot(slot: Slot, requests: Sequence[Request], *,
                         executor: Executor, budget: ReplayBudget) -> list[Replayed]:
    """`replay_requests` on `slot`'s model in `executor`, all requests tried in one call
    first; call it on the event loop. The slot is entered for the whole run, so a switch or a
    trim of the standbys cannot close it underneath (it closes once the run leaves)."""
    predictor = slot.predictor
    if slot.state is not SlotState.WARM or predictor is None:
        return [Replayed(rid, Outcome.SKIPPED, error=f"{slot.version.ref} is {slot.state}")
                for rid, _ in requests]
    slot.enter()
    try:
        return await asyncio.get_running_loop().run_in_executor(
            executor, lambda: replay_requests(predictor, slot.version, requests, budget=budget,
                                              chunk=len(requests)))
    finally:
        slot.leave()
