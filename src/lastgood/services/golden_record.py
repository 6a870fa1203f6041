"""Golden outputs at registration: what one smoke run means for a version being registered, and
how the runs of many versions go through one smoke process while the next ones are stored."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import TypeVar

from lastgood.domain.errors import InvalidInput
from lastgood.domain.operations import SmokeOutcome
from lastgood.domain.versions import NewVersion, Version, with_recorded_outputs
from lastgood.ports import SmokeSession

T = TypeVar("T")

LOOKAHEAD = 64
"""Registrations taken ahead of the oldest one waiting for its golden run."""
LOOKAHEAD_BYTES = 1 << 30
"""Bytes of artifacts handed to the smoke process and not answered yet (it loads a copy of
each), beyond the first version."""


def unrun_note(new: NewVersion) -> str:
    """The note of a version whose golden examples are not run (none, or the smoke test off)."""
    if not new.golden:
        return "no golden examples: preflight and warm-up will only load the version"
    return ("golden outputs neither checked nor recorded: the smoke test is off "
            "(LASTGOOD_SMOKE_TEST=off)")


def golden_outcome(new: NewVersion, outcome: SmokeOutcome
                   ) -> tuple[NewVersion, str] | InvalidInput:
    """(the version with missing outputs recorded, the note), or why it is refused: given
    outputs must be reproduced."""
    if not outcome.ok:
        return InvalidInput(f"{new.model}: the golden examples were not reproduced at "
                            f"registration: {outcome.summary}{_first_problem(outcome)}",
                            fix=outcome.reference or "check the golden file against this "
                                "model, or register the model that produced those outputs")
    unchecked = sum(1 for g in new.golden if not g.checked)
    if not unchecked:
        return new, f"golden examples checked: {outcome.summary}"
    if len(outcome.outputs) != len(new.golden):
        return new, "golden outputs not recorded: the smoke runner returned none"
    recorded = with_recorded_outputs(new.golden, outcome.outputs)
    # the reference check may choose the path that serves: it is part of the version's record
    served = replace(new, flavor=outcome.serve_with or new.flavor, golden=recorded,
                     provenance=with_output_form(new.provenance, outcome.output_form))
    note = (f"recorded the outputs of {unchecked} golden example(s) by running the version "
            "once; preflight, warm-up and readiness must reproduce them")
    return served, "; ".join(filter(None, (outcome.reference, note)))


OUTPUT_FORM = "output_form"
"""Provenance key: how the reference answers a batch (see adapters.formats.mlflow_reference);
the MLflow scoring door answers in that shape."""


def with_output_form(provenance: Mapping[str, str], form: str) -> dict[str, str]:
    """The provenance with the reference's output form, when it has one."""
    return {**provenance, OUTPUT_FORM: form} if form else dict(provenance)


def run_in_turn(items: Iterator[T], probe: Callable[[T], Version | None],
                session: SmokeSession) -> Iterator[tuple[T, SmokeOutcome | None]]:
    """Each item in order with the outcome of its golden run (None: `probe` gave it none).

    While the smoke process works on the oldest run, the next items are taken (taking one is
    what stores and inspects it, so that work overlaps the loading), up to LOOKAHEAD items and
    LOOKAHEAD_BYTES handed; an item with no run waits only for the runs before it.
    """
    ahead: deque[tuple[T, Version | None]] = deque()
    handed_bytes, more = 0, True
    while True:
        while more and (not ahead or _room(ahead, handed_bytes, session)):
            item = next(items, None)
            if item is None:
                more = False
                break
            version = probe(item)
            if version is not None:
                session.hand(version)
                handed_bytes += version.manifest.total_size
            ahead.append((item, version))
        if not ahead:
            return
        item, version = ahead.popleft()
        if version is None:
            yield item, None
        else:
            handed_bytes -= version.manifest.total_size
            yield item, session.outcome()


def _room(ahead: deque[tuple[T, Version | None]], handed_bytes: int,
          session: SmokeSession) -> bool:
    """Whether to take another item before yielding the oldest: it waits for a run that is
    not in yet, and the look-ahead has room."""
    return (ahead[0][1] is not None and not session.ready() and len(ahead) < LOOKAHEAD
            and handed_bytes < LOOKAHEAD_BYTES)


def _first_problem(outcome: SmokeOutcome) -> str:
    problems = [str(m.get("problem", m)) for m in outcome.mismatches]
    return f" ({problems[0]})" if problems else ""
