"""Golden outputs at registration: what one smoke run means for a version being registered."""

from __future__ import annotations

from dataclasses import replace

from lastgood.domain.errors import InvalidInput
from lastgood.domain.operations import SmokeOutcome
from lastgood.domain.versions import NewVersion, with_recorded_outputs


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
                            fix="check the golden file against this model, or register the "
                                "model that produced those outputs")
    unchecked = sum(1 for g in new.golden if not g.checked)
    if not unchecked:
        return new, f"golden examples checked: {outcome.summary}"
    if len(outcome.outputs) != len(new.golden):
        return new, "golden outputs not recorded: the smoke runner returned none"
    recorded = with_recorded_outputs(new.golden, outcome.outputs)
    return replace(new, golden=recorded), (
        f"recorded the outputs of {unchecked} golden example(s) by running the version "
        "once; preflight, warm-up and readiness must reproduce them")


def _first_problem(outcome: SmokeOutcome) -> str:
    problems = [str(m.get("problem", m)) for m in outcome.mismatches]
    return f" ({problems[0]})" if problems else ""
