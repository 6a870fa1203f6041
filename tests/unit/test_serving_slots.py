"""Slots and slot tables: loading off the loop under a timeout, refusals, switching, draining."""

from __future__ import annotations

import asyncio
import threading

import pytest

from lastgood.domain.versions import GoldenExample
from lastgood.serving.loading import LoadOptions, outputs_match, prepare_slot
from lastgood.serving.slots import Slot, SlotState, SlotTable, StandbyLimits
from lastgood.testing import FixedClock
from tests.unit.test_serving_support import (
    RECORD,
    FakeLoader,
    FakePredictor,
    FineLoader,
    SegfaultLoader,
    make_version,
)

CLOCK = FixedClock()


def warm_slot(number: int, **kw: object) -> Slot:
    return Slot(make_version(number, **kw)).warmed(  # type: ignore[arg-type]
        FakePredictor(number), at=CLOCK.now(), load_ms=1.0, warmup_ms=[0.1], per_record_ms=0.01)


def prepare(number: int, loader: FakeLoader, **options: object) -> Slot:
    return asyncio.run(prepare_slot(make_version(number), loader, clock=CLOCK,
                                    options=LoadOptions(**options)))  # type: ignore[arg-type]


def test_a_good_version_warms_with_timings() -> None:
    slot = prepare(1, FakeLoader())
    assert slot.state is SlotState.WARM
    assert slot.predictor is not None
    assert len(slot.warmup_ms) == 1 + LoadOptions().timing_rounds
    assert slot.per_record_ms is not None


def test_loading_runs_off_the_event_loop() -> None:
    seen: list[str] = []

    class Spy(FakeLoader):
        def __call__(self, version):  # type: ignore[no-untyped-def]
            seen.append(threading.current_thread().name)
            return super().__call__(version)

    async def go() -> str:
        await prepare_slot(make_version(1), Spy(), clock=CLOCK)
        return threading.current_thread().name

    loop_thread = asyncio.run(go())
    assert seen
    assert seen[0] != loop_thread
    assert seen[0].startswith("lastgood-load-")


def test_a_raising_loader_is_refused_with_the_reason() -> None:
    slot = prepare(2, FakeLoader(boom=[2]))
    assert slot.state is SlotState.FAILED
    assert "truncated" in slot.reason
    assert "iris@2" in slot.reason
    assert slot.predictor is None


def test_a_hanging_loader_is_abandoned_after_the_timeout() -> None:
    loader = FakeLoader(hang=[3])
    try:
        slot = prepare(3, loader, timeout_s=0.2)
    finally:
        loader.release.set()
    assert slot.state is SlotState.FAILED
    assert "within 0.2 s" in slot.reason


def test_a_golden_mismatch_is_a_refusal() -> None:
    slot = prepare(4, FakeLoader(wrong=[4]))
    assert slot.state is SlotState.FAILED
    assert "golden example 0: expected 4, got -1" in slot.reason
    assert slot.predictor is None


def test_a_version_without_golden_examples_warms_untimed() -> None:
    slot = asyncio.run(prepare_slot(make_version(5, golden=()), FakeLoader(), clock=CLOCK))
    assert slot.state is SlotState.WARM
    assert slot.per_record_ms is None


def test_outputs_match_within_tolerance_and_by_structure() -> None:
    assert outputs_match(0.5000001, 0.5, 1e-6)
    assert not outputs_match(0.51, 0.5, 1e-6)
    assert outputs_match([1, {"p": 0.25}], [1, {"p": 0.25}], 0.0)
    assert not outputs_match(True, 1, 0.0)
    assert not outputs_match("setosa", "virginica", 0.0)
    assert outputs_match(float("nan"), float("nan"), 0.0)


def test_probe_refuses_a_loader_that_segfaults_without_loading_in_process() -> None:
    # If the parent loaded in-process after the probe, this test process would die of SIGSEGV.
    slot = asyncio.run(prepare_slot(make_version(6), SegfaultLoader(), clock=CLOCK,
                                    options=LoadOptions(probe=True, probe_timeout_s=60)))
    assert slot.state is SlotState.FAILED
    assert "SIGSEGV" in slot.reason


def test_probe_passes_a_loader_that_works() -> None:
    slot = asyncio.run(prepare_slot(make_version(7), FineLoader(), clock=CLOCK,
                                    options=LoadOptions(probe=True, probe_timeout_s=60)))
    assert slot.state is SlotState.WARM


def test_switch_is_one_assignment_and_in_flight_requests_keep_their_slot() -> None:
    table = SlotTable("iris")
    one, two = warm_slot(1), warm_slot(2)
    table.switch(one, at=CLOCK.now())
    held = table.acquire()
    assert held is one
    old = table.switch(two, at=CLOCK.now())
    assert old is one
    assert table.live is two
    table.keep_standby([], offered=[one])
    assert one.state is SlotState.DRAINING  # still serving the request that holds it
    assert held.predictor is not None
    held.leave()
    assert one.state is SlotState.CLOSED
    assert isinstance(one.predictor, type(None))


def test_a_replaced_version_that_is_wanted_stays_warm_as_standby() -> None:
    table = SlotTable("iris")
    one, two = warm_slot(1), warm_slot(2)
    table.switch(one, at=CLOCK.now())
    old = table.switch(two, at=CLOCK.now())
    table.keep_standby([1], offered=[old] if old else [])
    assert list(table.standby) == [1]
    assert one.state is SlotState.WARM
    assert table.warm(1) is one  # a switch back loads nothing


def test_only_a_warm_slot_can_go_live() -> None:
    table = SlotTable("iris")
    refused = Slot(make_version(1)).failed("broken", at=CLOCK.now())
    with pytest.raises(ValueError, match="only a warm slot"):
        table.switch(refused, at=CLOCK.now())
    assert table.live is None


def test_standby_limits_respect_count_and_memory_cap() -> None:
    big, small, other = (make_version(3, memory_mb=300), make_version(2, memory_mb=50),
                         make_version(1, memory_mb=50))
    assert StandbyLimits(count=2).fit([big, small, other]) == [big, small]
    capped = StandbyLimits(count=2, memory_bytes=200 * 1024 * 1024)
    assert capped.fit([big, small, other]) == [small, other]
    assert StandbyLimits(count=0).fit([big]) == []


def test_retire_all_closes_idle_slots_and_empties_the_table() -> None:
    table = SlotTable("iris")
    one, two = warm_slot(1), warm_slot(2)
    table.switch(one, at=CLOCK.now())
    table.keep_standby([2], offered=[two])
    table.retire_all()
    assert table.live is None
    assert not table.standby
    assert one.state is SlotState.CLOSED
    assert two.state is SlotState.CLOSED


def test_golden_examples_with_tolerance_accept_close_floats() -> None:
    golden = (GoldenExample(inputs=dict(RECORD), expected=7.0000001, tolerance=1e-3),)
    slot = asyncio.run(prepare_slot(make_version(7, golden=golden), FakeLoader(), clock=CLOCK))
    assert slot.state is SlotState.WARM
