"""The operation's phase table as data: every phase has a row, every path ends, and the rows
keep the safety rules (FAILED only while the live pointer is the old version)."""

from __future__ import annotations

from itertools import pairwise

import pytest

from lastgood.domain.errors import IllegalTransition
from lastgood.domain.operations import TERMINAL, TRANSITIONS, Phase, check_transition
from lastgood.testing import FixedClock, make_operation

BEFORE_THE_MOVE = {Phase.PLANNED, Phase.CHECKING, Phase.SWITCHING}


def reachable(start: Phase) -> set[Phase]:
    seen, todo = set(), [start]
    while todo:
        phase = todo.pop()
        for nxt in TRANSITIONS[phase] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_every_phase_has_a_row_and_only_terminal_phases_have_no_way_out() -> None:
    assert set(TRANSITIONS) == set(Phase)
    assert {p for p, moves in TRANSITIONS.items() if not moves} == TERMINAL
    assert all(p.is_terminal == (p in TERMINAL) for p in Phase)


def test_every_phase_reaches_an_end_and_no_phase_comes_back() -> None:
    for phase in set(Phase) - TERMINAL:
        ahead = reachable(phase)
        assert ahead & TERMINAL, phase
        assert phase not in ahead, f"{phase} can come back to itself"


def test_the_happy_path_of_a_rollback_is_a_walk_through_the_table() -> None:
    path = [Phase.PLANNED, Phase.CHECKING, Phase.SWITCHING, Phase.CONFIRMING, Phase.ARCHIVING,
            Phase.VERIFYING, Phase.SUCCEEDED]
    for current, nxt in pairwise(path):
        check_transition(current, nxt)


def test_failed_is_reachable_only_before_the_pointer_moves() -> None:
    """FAILED promises "live unchanged": once CONFIRMING is committed the pointer has moved,
    so every later trouble escalates instead."""
    assert {p for p, moves in TRANSITIONS.items() if Phase.FAILED in moves} == BEFORE_THE_MOVE
    assert Phase.FAILED not in reachable(Phase.CONFIRMING)
    assert {p for p, moves in TRANSITIONS.items() if Phase.CONFIRMING in moves} == {
        Phase.SWITCHING}


def test_a_dry_run_ends_after_its_checks_and_only_there() -> None:
    """CHECKED promises "nothing moved": only the checks lead to it."""
    assert {p for p, moves in TRANSITIONS.items() if Phase.CHECKED in moves} == {Phase.CHECKING}
    assert Phase.CHECKED.is_terminal


def test_a_deploy_skips_archiving_and_a_rollback_may_not_skip_verifying() -> None:
    assert TRANSITIONS[Phase.CONFIRMING] >= {Phase.ARCHIVING, Phase.VERIFYING}
    assert TRANSITIONS[Phase.ARCHIVING] == {Phase.VERIFYING}


@pytest.mark.parametrize(("current", "new", "allowed"), [
    (Phase.SUCCEEDED, Phase.PLANNED, "none (terminal)"),
    (Phase.CONFIRMING, Phase.FAILED, "archiving, escalated, verifying"),
    (Phase.CHECKING, Phase.CONFIRMING, "checked, failed, switching"),
])
def test_an_illegal_move_is_refused_with_the_allowed_ones(current: Phase, new: Phase,
                                                          allowed: str) -> None:
    with pytest.raises(IllegalTransition) as raised:
        check_transition(current, new)
    assert raised.value.message == f"an operation cannot move from {current} to {new}"
    assert raised.value.fix == f"allowed next phases: {allowed}"


def test_advance_moves_the_phase_and_its_time_or_refuses() -> None:
    clock = FixedClock()
    op = make_operation(phase=Phase.SWITCHING)
    later = clock.advance(5)
    moved = op.advance(Phase.CONFIRMING, at=later, target_version=2)
    assert (moved.phase, moved.updated_at, moved.target_version) == (
        Phase.CONFIRMING, later, 2)
    with pytest.raises(IllegalTransition):
        op.advance(Phase.VERIFYING, at=later)
