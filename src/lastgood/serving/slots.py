"""Slots: loaded, warmed model versions, and the per-model table that serves one of them live.

Safety rule 7: a switch is one reference assignment of an already warmed slot. The table is
confined to the event loop's thread: `acquire`, `switch` and `leave` never await, so a request
that took `live` keeps that slot object to the end even if a switch happens meanwhile, and the
old slot closes only once its in-flight count drops to zero.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from lastgood.domain.versions import Version
from lastgood.ports import Predictor

__all__ = ["Slot", "SlotState", "SlotTable", "StandbyLimits", "estimated_bytes"]

log = logging.getLogger(__name__)

MIB = 1024 * 1024


class SlotState(StrEnum):
    """Where a slot is in its life."""

    LOADING = "loading"  # being loaded and warmed off the event loop
    WARM = "warm"  # loaded and its golden examples passed: may serve
    DRAINING = "draining"  # replaced; finishing the requests that started on it
    CLOSED = "closed"  # released; holds no predictor
    FAILED = "failed"  # refused: the loader raised, hung or crashed, or a golden example failed


def estimated_bytes(version: Version) -> int:
    """Memory a loaded version is expected to take, for the standby memory cap.

    The declared `runtime.resources.memory_mb` wins; without it the artifact size is the estimate
    (a measured RSS delta would be noisy while other slots load in parallel threads).
    """
    declared = version.runtime.resources.memory_mb
    return declared * MIB if declared > 0 else version.manifest.total_size


class Slot:
    """One version of a model, its predictor and the bookkeeping a switch needs."""

    __slots__ = ("_on_close", "in_flight", "load_ms", "loaded_at", "per_record_ms",
                 "predictor", "reason", "size_bytes", "state", "version", "warmup_ms")

    def __init__(self, version: Version) -> None:
        self.version = version
        self.predictor: Predictor | None = None
        self.state = SlotState.LOADING
        self.in_flight = 0
        self.loaded_at: datetime | None = None
        self.load_ms = 0.0
        self.warmup_ms: tuple[float, ...] = ()
        self.per_record_ms: float | None = None  # from warm-up; None when it could not be timed
        self.reason = ""
        self.size_bytes = estimated_bytes(version)

    @property
    def number(self) -> int:
        return self.version.number

    def warmed(self, predictor: Predictor, *, at: datetime, load_ms: float,
               warmup_ms: Sequence[float], per_record_ms: float | None) -> Slot:
        """Mark the slot ready to serve with what loading and warming it measured."""
        self.predictor, self.loaded_at, self.load_ms = predictor, at, load_ms
        self.warmup_ms, self.per_record_ms = tuple(warmup_ms), per_record_ms
        self.state = SlotState.WARM
        return self

    def failed(self, reason: str, *, at: datetime) -> Slot:
        """Mark the slot refused with the reason; it never serves."""
        self.state, self.reason, self.loaded_at = SlotState.FAILED, reason, at
        self._release()
        return self

    def enter(self) -> None:
        """A request starts on this slot (called on the loop, without awaiting)."""
        self.in_flight += 1

    def leave(self) -> None:
        """A request finished; a draining slot closes once the last one leaves."""
        self.in_flight -= 1
        if self.in_flight <= 0 and self.state is SlotState.DRAINING:
            self._close()

    def retire(self) -> None:
        """Stop offering this slot; it closes now if idle, else when its last request leaves."""
        if self.state in (SlotState.CLOSED, SlotState.FAILED):
            return
        self.state = SlotState.DRAINING
        if self.in_flight <= 0:
            self._close()

    def _close(self) -> None:
        self.state = SlotState.CLOSED
        self._release()

    def _release(self) -> None:
        predictor, self.predictor = self.predictor, None
        close = getattr(predictor, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # a predictor that fails to close must not stop serving
                log.exception("closing %s failed", self.version.ref)

    def describe(self) -> dict[str, Any]:
        """The slot as JSON-ready facts for the status endpoints."""
        return {
            "version": self.version.number, "tag": self.version.tag, "state": str(self.state),
            "in_flight": self.in_flight,
            "loaded_at": self.loaded_at.isoformat() if self.loaded_at else None,
            "load_ms": round(self.load_ms, 3),
            "warmup_ms": [round(t, 3) for t in self.warmup_ms],
            "size_bytes": self.size_bytes, "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class StandbyLimits:
    """How many warm standby slots a model keeps, and how much memory they may take."""

    count: int = 1
    memory_bytes: int | None = None  # None: no cap beyond `count`

    def fit(self, versions: Iterable[Version]) -> list[Version]:
        """The preferred versions, in order, that fit the count and the memory cap."""
        chosen: list[Version] = []
        used = 0
        for version in versions:
            size = estimated_bytes(version)
            if len(chosen) >= self.count:
                break
            if self.memory_bytes is not None and used + size > self.memory_bytes:
                continue  # a smaller, less recent version may still fit
            chosen.append(version)
            used += size
        return chosen


class SlotTable:
    """The live slot of one model plus its warm standby slots and its recent refusals."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.live: Slot | None = None
        self.live_since: datetime | None = None
        self.standby: OrderedDict[int, Slot] = OrderedDict()
        self.loading: dict[int, Slot] = {}
        self.failures: dict[int, Slot] = {}

    def acquire(self) -> Slot | None:
        """The live slot, entered: the request keeps this object until it calls `leave`."""
        slot = self.live
        if slot is not None:
            slot.enter()
        return slot

    def warm(self, number: int) -> Slot | None:
        """A warm slot of version `number`, live or standby, if there is one."""
        if self.live is not None and self.live.number == number:
            return self.live
        return self.standby.get(number)

    def switch(self, slot: Slot, *, at: datetime) -> Slot | None:
        """Make a warm slot live in one assignment; return the slot it replaced.

        The caller decides what becomes of the old slot (`keep_standby` parks or retires it).
        """
        if slot.state is not SlotState.WARM:
            raise ValueError(f"{slot.version.ref} is {slot.state}, only a warm slot can go live")
        if slot is self.live:
            return None
        self.standby.pop(slot.number, None)
        self.failures.pop(slot.number, None)
        old, self.live = self.live, slot  # the switch: requests from here on take the new slot
        self.live_since = at
        return old

    def keep_standby(self, numbers: Sequence[int], *, offered: Iterable[Slot] = ()) -> None:
        """Hold exactly the warm slots of `numbers` (in that order) as standby; retire the rest.

        `offered` are warm slots that may join (a just-loaded standby, a just-replaced live one).
        """
        pool: dict[int, Slot] = dict(self.standby)
        for slot in offered:
            if slot.state is SlotState.WARM and slot is not self.live:
                pool.setdefault(slot.number, slot)
        kept: OrderedDict[int, Slot] = OrderedDict()
        for number in numbers:
            found = pool.pop(number) if number in pool else None
            if found is not None and (self.live is None or number != self.live.number):
                kept[number] = found
        self.standby = kept
        for slot in pool.values():
            if slot is not self.live:
                slot.retire()

    def retire_all(self) -> None:
        """The environment stopped serving this model: drain and close every slot."""
        for slot in [*self.standby.values(), *([self.live] if self.live else [])]:
            slot.retire()
        self.standby.clear()
        self.live = None

    def describe(self) -> dict[str, Any]:
        """Live, standby, loading and refused slots as JSON-ready facts."""
        return {
            "model": self.model,
            "live": self.live.describe() if self.live else None,
            "live_since": self.live_since.isoformat() if self.live_since else None,
            "standby": [s.describe() for s in self.standby.values()],
            "loading": [s.describe() for s in self.loading.values()],
            "failed": [s.describe() for s in self.failures.values()],
        }
