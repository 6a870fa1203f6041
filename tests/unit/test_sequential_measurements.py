"""The measured shapes: histograms, counts and moments merge exactly and name their defects."""

from __future__ import annotations

import statistics

import pytest

from lastgood.domain.errors import InvalidInput
from lastgood.domain.measurements import (
    LATENCY_BOUNDS,
    Histogram,
    Moments,
    RateCounts,
    geometric_bounds,
)

BOUNDS = (0.1, 0.2, 0.5, 1.0)


def test_histogram_bins_like_prometheus_le_buckets() -> None:
    hist = Histogram.of([0.05, 0.1, 0.15, 0.5, 0.7, 3.0], BOUNDS)
    assert hist.counts == (2, 1, 1, 1, 1)  # 0.1 is in the "le 0.1" bucket; 3.0 overflows
    assert hist.total == hist.samples == 6


def test_histogram_quantile_interpolates_inside_the_bucket() -> None:
    hist = Histogram(BOUNDS, (0, 10, 0, 0, 0))
    assert hist.quantile(0.5) == pytest.approx(0.15)
    assert Histogram(BOUNDS, (0, 0, 0, 0, 5)).quantile(0.5) == 1.0  # overflow: its lower bound


def test_histogram_counts_above_the_first_edge_at_or_over_a_limit() -> None:
    hist = Histogram(BOUNDS, (1, 2, 3, 4, 5))
    assert hist.above(0.15) == (0.2, 12)
    assert hist.above(0.2) == (0.2, 12)
    assert hist.above(1.5) is None


def test_histogram_deltas_from_cumulative_counters() -> None:
    earlier, later = Histogram(BOUNDS, (1, 1, 0, 0, 0)), Histogram(BOUNDS, (3, 2, 1, 0, 0))
    assert later.minus(earlier) == Histogram(BOUNDS, (2, 1, 1, 0, 0))
    assert earlier.plus(later).total == 8


@pytest.mark.parametrize(("hist", "words"), [
    (Histogram(BOUNDS, (1, 2, 3)), "counts for"),
    (Histogram((0.2, 0.1), (1, 1, 1)), "increasing"),
    (Histogram(BOUNDS, (1, -2, 0, 0, 0)), "negative"),
    (Histogram((0.1, float("nan")), (0, 0, 0)), "finite"),
])
def test_histogram_names_its_defects(hist: Histogram, words: str) -> None:
    assert words in hist.defect()


def test_rate_counts_defects() -> None:
    assert RateCounts(1, 10).defect() == ""
    assert "among only" in RateCounts(11, 10).defect()
    assert "negative" in RateCounts(5, 10).minus(RateCounts(0, 20)).defect()


def test_moments_merge_exactly() -> None:
    left, right = [1.0, 2.0, 4.0], [8.0, 16.0]
    merged = Moments.of(left).plus(Moments.of(right))
    assert merged.count == 5
    assert merged.mean == pytest.approx(statistics.fmean(left + right))
    assert merged.variance == pytest.approx(statistics.variance(left + right))
    assert Moments(1, 3.0, 0.0).variance == 0.0
    assert "non-finite" in Moments(2, float("inf"), 0.0).defect()


def test_geometric_bounds_cover_the_range() -> None:
    assert LATENCY_BOUNDS[0] == 0.001
    assert LATENCY_BOUNDS[-1] >= 120.0
    assert geometric_bounds(1.0, 4.0, per_doubling=1) == (1.0, 2.0, 4.0)
    with pytest.raises(InvalidInput):
        geometric_bounds(2.0, 1.0)


def test_the_one_latency_quantile_is_the_nearest_rank_in_ms() -> None:
    from lastgood.domain.measurements import quantile_ms

    seconds = [0.001 * n for n in range(1, 101)]  # 1 .. 100 ms
    assert quantile_ms(seconds, 0.95) == 96.0
    assert quantile_ms(seconds, 0.5) == 51.0
    assert quantile_ms(seconds, 1.0) == 100.0
    assert quantile_ms([], 0.95) is None
