"""The reservoir of recent live requests: its bound, its window, its uniformity, its skips."""

from __future__ import annotations

import random
from collections import Counter

from lastgood.serving.reservoir import Kept, Reservoir, ReservoirOptions, Reservoirs

HOUR = 3600.0


def _kept(at: float, n: int = 0) -> Kept:
    return Kept(records=[{"x": n}], predictions=[n], version=1, at=at)


def _fill(reservoir: Reservoir, *, start: float, seconds: float, per_s: float) -> None:
    step = 1.0 / per_s
    for i in range(int(seconds * per_s)):
        reservoir.add(_kept(start + i * step, i), size_bytes=10)


def test_never_holds_more_than_its_size() -> None:
    reservoir = Reservoir(ReservoirOptions(size=100, window_s=HOUR), random.Random(1))
    for i in range(5000):
        reservoir.add(_kept(i * 0.5, i), size_bytes=10)
        assert reservoir.kept <= 100
    assert len(reservoir.entries(5000 * 0.5)) == 100
    assert reservoir.seen == 5000


def test_keeps_nothing_older_than_the_window() -> None:
    reservoir = Reservoir(ReservoirOptions(size=200, window_s=HOUR), random.Random(2))
    _fill(reservoir, start=0.0, seconds=3 * HOUR, per_s=1.0)
    now = 3 * HOUR
    entries = reservoir.entries(now)
    assert entries
    assert all(now - k.at <= HOUR for k in entries)
    # an hour and a half of silence later, only the last half hour of traffic is left
    assert all(k.at >= now + 0.5 * HOUR - HOUR for k in reservoir.entries(now + 0.5 * HOUR))
    assert reservoir.entries(now + 2 * HOUR) == []


def test_sample_is_uniform_over_the_window() -> None:
    """Steady traffic for three hours: each tenth of the last hour holds about a tenth."""
    reservoir = Reservoir(ReservoirOptions(size=1000, window_s=HOUR), random.Random(3))
    _fill(reservoir, start=0.0, seconds=3 * HOUR, per_s=5.0)
    now = 3 * HOUR
    entries = reservoir.entries(now)
    assert len(entries) >= 900
    tenths = Counter(min(int((now - k.at) / (HOUR / 10)), 9) for k in entries)
    for tenth in range(10):
        share = tenths[tenth] / len(entries)
        assert 0.06 <= share <= 0.14, (tenth, share, sorted(tenths.items()))


def test_a_burst_does_not_crowd_out_the_rest_of_the_window() -> None:
    """Quiet traffic, then a burst ten times as dense: the burst gets its share, no more."""
    reservoir = Reservoir(ReservoirOptions(size=500, window_s=HOUR), random.Random(4))
    _fill(reservoir, start=0.0, seconds=0.9 * HOUR, per_s=1.0)  # 3,240 quiet requests
    _fill(reservoir, start=0.9 * HOUR, seconds=0.1 * HOUR, per_s=10.0)  # 3,600 in the burst
    entries = reservoir.entries(HOUR)
    burst = sum(k.at >= 0.9 * HOUR for k in entries) / len(entries)
    assert 0.40 <= burst <= 0.65, burst  # 3,600 / 6,840 = 0.53 of the window's requests


def test_requests_over_the_size_limit_are_skipped_and_counted() -> None:
    reservoir = Reservoir(ReservoirOptions(size=10, max_request_bytes=100), random.Random(5))
    assert reservoir.add(_kept(1.0), size_bytes=101) is False
    assert reservoir.add(_kept(2.0), size_bytes=100) is True
    assert (reservoir.skipped, reservoir.kept, reservoir.seen) == (1, 1, 2)


def test_size_zero_keeps_nothing() -> None:
    reservoirs = Reservoirs(ReservoirOptions(size=0))
    reservoirs.offer("iris", _kept(1.0), size_bytes=10)
    assert reservoirs.off
    assert reservoirs.of("iris") is None


def test_models_have_their_own_reservoirs_and_gone_ones_are_forgotten() -> None:
    reservoirs = Reservoirs(ReservoirOptions(size=5), seed=6)
    for i in range(20):
        reservoirs.offer("a" if i % 2 else "b", _kept(float(i), i), size_bytes=1)
    a, b = reservoirs.of("a"), reservoirs.of("b")
    assert a is not None
    assert b is not None
    assert a.kept == b.kept == 5
    assert all(k.predictions[0] % 2 == 1 for k in a.entries(20.0))
    reservoirs.forget({"a"})
    assert reservoirs.of("b") is None
    assert reservoirs.of("a") is a
