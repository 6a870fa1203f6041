"""A bounded sample of each model's recent live requests, kept in memory for replay.

Every door (native, OIP v2, `/invocations`, KServe v1) hands the reservoir a request after its
input passed validation and the live version answered it: the input records and that answer.
Requests the live version failed on are not kept, so they can never be replayed as failures of
a standby. Nothing here leaves the replica: the replay runs on the replica and reports counts,
agreement and one shortened failing example.

The sample is uniform over a sliding window (default: the last hour) and never holds more than
`size` requests. The window is cut into `BUCKETS` time buckets, each counting the requests it
saw; once the reservoir is full a new request is taken with probability size / (requests seen
in the window), in place of a random request of the bucket that holds more than its share.
So every bucket holds its share of the window's traffic, and the sample is uniform across the
window to within one bucket (window / 10). Called on the event loop only: no locks.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BUCKETS", "Kept", "Reservoir", "ReservoirOptions", "Reservoirs"]

BUCKETS = 10


@dataclass(frozen=True, slots=True)
class ReservoirOptions:
    """How many recent requests each model keeps, over how long, and how large one may be."""

    size: int = 1000  # 0: the reservoir and the replay are off
    window_s: float = 3600.0
    max_request_bytes: int = 65_536  # larger bodies are skipped (counted), to bound memory
    # The only way raw requests leave the replica: the failing ones of a deploy's shadow, for
    # the forensic archive of the refused deploy (`serve --replay-archive off`: never).
    archive: bool = True

    @property
    def off(self) -> bool:
        return self.size <= 0


@dataclass(frozen=True, slots=True)
class Kept:
    """One live request: its records, the live version's answer, who answered, and when."""

    records: Sequence[Mapping[str, Any]]
    predictions: Sequence[Any]
    version: int
    at: float  # monotonic seconds


@dataclass(slots=True)
class _Bucket:
    start: int  # index of the bucket: floor(at / bucket width)
    seen: int = 0
    kept: list[Kept] = field(default_factory=list)


class Reservoir:
    """The recent requests of one model."""

    def __init__(self, options: ReservoirOptions, rng: random.Random) -> None:
        self.options, self._rng = options, rng
        self._width = options.window_s / BUCKETS
        self._buckets: deque[_Bucket] = deque()
        self._seen_in_window = 0
        self.kept = 0
        self.seen = 0  # every request offered since start, for the counters
        self.skipped = 0  # offered but over `max_request_bytes`

    def add(self, kept: Kept, *, size_bytes: int) -> bool:
        """Offer one answered request; True when it was taken into the sample."""
        self.seen += 1
        if size_bytes > self.options.max_request_bytes:
            self.skipped += 1
            return False
        self._expire(kept.at)
        bucket = self._bucket(kept.at)
        bucket.seen += 1
        self._seen_in_window += 1
        if self.kept < self.options.size:
            bucket.kept.append(kept)
            self.kept += 1
            return True
        if self._rng.random() * self._seen_in_window >= self.options.size:
            return False
        self._evict(self._most_overrepresented())
        bucket.kept.append(kept)
        return True

    def entries(self, now: float) -> list[Kept]:
        """The sample: requests kept within the window ending at `now`, oldest first."""
        self._expire(now)
        since = now - self.options.window_s
        return sorted((k for b in self._buckets for k in b.kept if k.at >= since),
                      key=lambda k: k.at)

    def _bucket(self, at: float) -> _Bucket:
        start = int(at // self._width)
        if not self._buckets or self._buckets[-1].start < start:
            self._buckets.append(_Bucket(start))
        return self._buckets[-1]

    def _expire(self, now: float) -> None:
        first = int((now - self.options.window_s) // self._width)
        while self._buckets and self._buckets[0].start < first:
            gone = self._buckets.popleft()
            self.kept -= len(gone.kept)
            self._seen_in_window -= gone.seen

    def _most_overrepresented(self) -> _Bucket:
        return max((b for b in self._buckets if b.kept), key=lambda b: len(b.kept) / b.seen)

    def _evict(self, bucket: _Bucket) -> None:
        index = self._rng.randrange(len(bucket.kept))
        bucket.kept[index] = bucket.kept[-1]  # order within a bucket does not matter
        bucket.kept.pop()


class Reservoirs:
    """Every model's reservoir on one replica; off (holding nothing) when `options.size` is 0."""

    def __init__(self, options: ReservoirOptions = ReservoirOptions(), *,
                 seed: int | None = None) -> None:
        self.options = options
        self._rng = random.Random(seed)
        self._by_model: dict[str, Reservoir] = {}

    @property
    def off(self) -> bool:
        return self.options.off

    def offer(self, model: str, kept: Kept, *, size_bytes: int) -> None:
        """Keep (maybe) one request the live version of `model` answered."""
        if self.options.off:
            return
        found = self._by_model.get(model)
        if found is None:
            found = self._by_model[model] = Reservoir(self.options, self._rng)
        found.add(kept, size_bytes=size_bytes)

    def of(self, model: str) -> Reservoir | None:
        """The reservoir of `model`; None before its first request."""
        return self._by_model.get(model)

    def forget(self, keep: set[str]) -> None:
        """Drop the reservoirs of models no longer served."""
        for model in [m for m in self._by_model if m not in keep]:
            del self._by_model[model]
