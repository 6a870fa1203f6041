"""A smoke session without a process, for fakes of the SmokeRunner port."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from lastgood.domain.operations import SmokeOutcome
from lastgood.domain.versions import Version


class InlineSession:
    """SmokeSession that runs `smoke` on each version as it is handed over: every outcome
    is in at once (`ready`), in the order handed."""

    def __init__(self, smoke: Callable[[Version], SmokeOutcome]) -> None:
        self._smoke = smoke
        self._outcomes: deque[SmokeOutcome] = deque()

    def hand(self, version: Version) -> None:
        self._outcomes.append(self._smoke(version))

    def ready(self) -> bool:
        return bool(self._outcomes)

    def outcome(self) -> SmokeOutcome:
        return self._outcomes.popleft()
