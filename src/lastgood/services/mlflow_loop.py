"""One round of keeping lastgood and MLflow together: import what is new, follow aliases a
person moved, then mirror what lastgood serves. `sync mlflow --every`, `server --sync-mlflow`
and `watch --sync-mlflow` run it in a loop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from lastgood.domain.errors import LastGoodError
from lastgood.services.mlflow_follow import FollowOutcome, MlflowFollow
from lastgood.services.mlflow_mirror import MirrorState, MlflowMirror
from lastgood.services.mlflow_sync import MlflowSync, SyncReport, SyncStep

if TYPE_CHECKING:
    from lastgood.services.container import Services

log = logging.getLogger("lastgood.mlflow")


@dataclass(frozen=True, slots=True)
class Round:
    """What one round did."""

    sync: SyncReport
    followed: tuple[FollowOutcome, ...]
    mirror: tuple[MirrorState, ...]


def one_round(sync: MlflowSync, follow: MlflowFollow, mirror: MlflowMirror, *, actor: str,
              models: Sequence[str] = (), allow_pickle: bool = False,
              on_pending: Callable[[int], None] = lambda n: None,
              on_step: Callable[[SyncStep], None] = lambda s: None) -> Round:
    """Sync, then follow (an alias a person moved is read before the mirror rewrites it), then
    catch the mirror up. Raises when MLflow cannot even be listed."""
    pending, skipped = sync.plan(models)
    on_pending(len(pending))
    report = replace(sync.sync(pending, actor=actor, allow_pickle=allow_pickle,
                               on_step=on_step), skipped=skipped)
    followed = tuple(follow.poll(actor=actor))
    return Round(report, followed, tuple(mirror.catch_up()))


def keep_running(services: Services, *, every_s: float | None, actor: str
                 ) -> threading.Thread | None:
    """`--sync-mlflow SECONDS` (`lastgood watch`): a first round now, then one every
    `every_s` seconds, on a daemon thread; nothing when `every_s` is None."""
    if every_s is None:
        return None
    return start_background(services.mlflow_sync, services.mlflow_follow,
                            services.mlflow_mirror, every_s=every_s, actor=actor, first_s=0.0)


def start_background(sync: MlflowSync, follow: MlflowFollow, mirror: MlflowMirror, *,
                     every_s: float, actor: str, first_s: float | None = None
                     ) -> threading.Thread:
    """Run rounds every `every_s` seconds on a daemon thread (for `lastgood server`), the
    first after `first_s` (default: `every_s`)."""

    def loop() -> None:
        stop = threading.Event()
        warned: set[str] = set()  # a model skipped every round is told once
        wait = every_s if first_s is None else first_s
        while not stop.wait(wait):
            wait = every_s
            try:
                done = one_round(sync, follow, mirror, actor=actor)
            except LastGoodError as exc:
                log.warning("MLflow sync skipped this round: %s", exc.one_line())
                continue
            for line in set(done.sync.skipped) - warned:
                log.warning(line)
                warned.add(line)
            if done.sync.imported or done.followed:
                log.info("MLflow: %d imported, %d alias moves acted on", done.sync.imported,
                         len(done.followed))

    thread = threading.Thread(target=loop, name="lastgood-mlflow-sync", daemon=True)
    thread.start()
    return thread
