"""How registration runs ahead of the smoke process: items are taken while it works on the
oldest run, within a bound of items and of bytes, and come out in order."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from lastgood.domain.operations import SmokeOutcome
from lastgood.domain.versions import ArtifactFile, Manifest, Version
from lastgood.services import golden_record
from lastgood.services.golden_record import LOOKAHEAD, run_in_turn
from lastgood.testing import EPOCH, InlineSession


class SlowSession(InlineSession):
    """Outcomes that come in only once `ready_at` items have been taken (or when asked)."""

    def __init__(self, taken: list[int], ready_at: int) -> None:
        super().__init__(lambda v: SmokeOutcome(True, "ran", outputs=(v.model,)))
        self.taken, self.ready_at = taken, ready_at

    def ready(self) -> bool:
        return super().ready() and len(self.taken) >= self.ready_at


def items(taken: list[int], count: int) -> Iterator[int]:
    for n in range(count):
        taken.append(n)
        yield n


def probe(size: int = 1, *, runs: Callable[[int], bool] = lambda n: True
          ) -> Callable[[int], Version | None]:
    def of(n: int) -> Version | None:
        if not runs(n):
            return None
        manifest = Manifest((ArtifactFile("model.bin", size, "0" * 64),))
        return Version(model=f"m{n}", number=0, manifest=manifest, digest="0" * 64,
                       flavor="sklearn", created_at=EPOCH, created_by="t")
    return of


def first_yield(count: int, session: SlowSession, of: Callable[[int], Version | None],
                taken: list[int]) -> tuple[int, list[tuple[int, SmokeOutcome | None]]]:
    """How many items were taken when the first one came out, and every item with its
    outcome."""
    stream = run_in_turn(items(taken, count), of, session)
    first = next(stream)
    seen = len(taken)
    return seen, [first, *stream]


def test_items_are_taken_while_the_smoke_process_works_and_come_out_in_order() -> None:
    taken: list[int] = []
    seen, out = first_yield(10, SlowSession(taken, ready_at=5), probe(), taken)
    assert seen == 5
    assert [(n, o.outputs if o else None) for n, o in out] == [
        (n, (f"m{n}",)) for n in range(10)]


def test_the_look_ahead_is_bounded_by_count_and_by_bytes() -> None:
    taken: list[int] = []
    seen, _ = first_yield(LOOKAHEAD * 3, SlowSession(taken, ready_at=10**6), probe(), taken)
    assert seen == LOOKAHEAD
    taken = []
    big = golden_record.LOOKAHEAD_BYTES // 2 + 1
    seen, _ = first_yield(10, SlowSession(taken, ready_at=10**6), probe(big), taken)
    assert seen == 2, "two big versions are over the byte bound"


def test_an_item_without_a_run_does_not_wait_for_later_ones() -> None:
    taken: list[int] = []
    of = probe(runs=lambda n: n != 0)
    seen, out = first_yield(5, SlowSession(taken, ready_at=10**6), of, taken)
    assert seen == 1
    assert out[0] == (0, None)
    assert [n for n, o in out if o is not None] == [1, 2, 3, 4]


@pytest.mark.parametrize("count", [0, 1])
def test_a_short_stream_ends(count: int) -> None:
    taken: list[int] = []
    assert len(list(run_in_turn(items(taken, count), probe(), SlowSession(taken, 0)))) == count
