"""One round of keeping lastgood and MLflow together: import what is new, follow aliases a
person moved, then mirror what lastgood serves. `sync mlflow --every` and `server --sync-mlflow`
run it in a loop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lastgood.domain.errors import LastGoodError
from lastgood.services.mlflow_follow import FollowOutcome, MlflowFollow
from lastgood.services.mlflow_mirror import MirrorState, MlflowMirror
from lastgood.services.mlflow_sync import MlflowSync, SyncReport, SyncStep

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
    pending = sync.pending(models)
    on_pending(len(pending))
    report = sync.sync(pending, actor=actor, allow_pickle=allow_pickle, on_step=on_step)
    followed = tuple(follow.poll(actor=actor))
    return Round(report, followed, tuple(mirror.catch_up()))


def start_background(sync: MlflowSync, follow: MlflowFollow, mirror: MlflowMirror, *,
                     every_s: float, actor: str) -> threading.Thread:
    """Run rounds every `every_s` seconds on a daemon thread (for `lastgood server`)."""

    def loop() -> None:
        stop = threading.Event()
        while not stop.wait(every_s):
            try:
                done = one_round(sync, follow, mirror, actor=actor)
            except LastGoodError as exc:
                log.warning("MLflow sync skipped this round: %s", exc.one_line())
                continue
            if done.sync.imported or done.followed:
                log.info("MLflow: %d imported, %d alias moves acted on", done.sync.imported,
                         len(done.followed))

    thread = threading.Thread(target=loop, name="lastgood-mlflow-sync", daemon=True)
    thread.start()
    return thread
