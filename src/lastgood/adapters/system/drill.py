"""The crash drill (`LASTGOOD_HALT_AFTER`): stop this process after an operation commits a phase.

The engine knows nothing of drills; the composition root passes `crash_drill(...)` as its
`after_phase` hook. The hook then waits, still holding the deployment's lease, until the drill
kills the process (`kill -9`), so `lastgood resume` can be shown to finish the operation.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lastgood.domain.errors import InvalidInput
from lastgood.domain.operations import Operation, Phase


def crash_drill(phase: str, *, sleep: Callable[[float], None] = time.sleep
                ) -> Callable[[Operation], None] | None:
    """The hook that halts after `phase` is committed; None when no drill is asked for."""
    if not phase:
        return None
    try:
        halt_after = Phase(phase)
    except ValueError:
        raise InvalidInput(f"LASTGOOD_HALT_AFTER {phase!r} is not a phase",
                           fix="use one of " + ", ".join(p.value for p in Phase)) from None

    def halt(op: Operation) -> None:
        while op.phase is halt_after:
            sleep(3600)

    return halt
