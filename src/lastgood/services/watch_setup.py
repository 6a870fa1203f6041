"""What a watch is built from and what building one gives (the composition root builds it)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lastgood.ports import Notifier
from lastgood.services.container import Services
from lastgood.services.watch import DEFAULT_INTERVAL_S, WatchService


@dataclass(frozen=True, slots=True)
class WatchOptions:
    """Everything `lastgood watch` (and `serve --watch`) can be told."""

    env: str
    policy_file: Path | None = None
    interval_s: float = DEFAULT_INTERVAL_S
    webhook_url: str = ""
    webhook_secret: str = ""
    verify_wait_s: float = 60.0


@dataclass(frozen=True, slots=True)
class BuiltWatch:
    """A watch ready to run, and what to close after."""

    watch: WatchService
    services: Services  # wired with the live verifier
    notifier: Notifier
    closers: tuple[Callable[[], None], ...]

    def close(self) -> None:
        for closer in self.closers:
            with contextlib.suppress(Exception):
                closer()
