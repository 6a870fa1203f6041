"""Reading the metric history: the last hour, day or week of (model, env), bounded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from lastgood.domain.errors import InvalidInput
from lastgood.domain.history import (
    DEFAULT_RETENTION,
    MAX_BUCKETS,
    MAX_ROWS,
    MAX_SPAN,
    MIN_SPAN,
    StoredPoint,
    Tier,
    bucket_of,
    epoch_s,
    resolution_for,
    tier_for,
)
from lastgood.domain.history_view import HistoryView, build_view
from lastgood.ports import Clock, UnitOfWork, UnitOfWorkFactory


def read_view(uow: UnitOfWork, model: str, env: str, *, since: datetime, until: datetime,
              buckets: int = MAX_BUCKETS) -> HistoryView:
    """The view of [since, until) inside an open unit of work (the archive reads it there).

    Unknown model or env raise NotFound; a span outside 1 minute..30 days InvalidInput, so no
    request reads more than MAX_ROWS rows."""
    uow.models.get(model)
    uow.environments.get(env)
    return read_unchecked(uow, model, env, since=since, until=until, buckets=buckets)


def read_unchecked(uow: UnitOfWork, model: str, env: str, *, since: datetime,
                   until: datetime, buckets: int = MAX_BUCKETS) -> HistoryView:
    """The view of [since, until) without checking the names (callers that hold them already);
    the span must be 1 minute..30 days."""
    span = until - since
    if not MIN_SPAN <= span <= MAX_SPAN:
        raise InvalidInput(f"a history of {span} is outside 1m..30d",
                           fix="history is kept for 30 days: ask for 1m to 30d")
    resolution = resolution_for(span, buckets=buckets)
    points = read_tiers(uow, model, env, tier=tier_for(span),
                        since_s=bucket_of(epoch_s(since), resolution), until_s=epoch_s(until) + 1)
    history = uow.deployments.history(model, env)
    return build_view(model, env, points=points[:MAX_ROWS], history=history, since=since,
                      until=until, resolution_s=resolution, truncated=len(points) > MAX_ROWS)


def read_tiers(uow: UnitOfWork, model: str, env: str, *, tier: int, since_s: int,
               until_s: int, retention: Sequence[Tier] = DEFAULT_RETENTION) -> list[StoredPoint]:
    """The points of [since_s, until_s) from `tier`, then from each finer tier only after the
    coarser one's newest bucket (what is not rolled up yet); MAX_ROWS + 1 at most."""
    found: list[StoredPoint] = []
    start = since_s
    for index in range(tier, -1, -1):
        resolution = retention[index].resolution_s
        rows = uow.history.read(model, env, resolution_s=resolution, since_s=start,
                                until_s=until_s, limit=MAX_ROWS + 1 - len(found))
        found += rows
        if rows:
            start = max(start, rows[-1].at_s + resolution)
        if len(found) > MAX_ROWS:
            break
    return found


class HistoryService:
    """The metric history the replicas wrote, as a person reads it."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow, self._clock = uow, clock

    def view(self, model: str, *, env: str, span: timedelta,
             buckets: int = MAX_BUCKETS) -> HistoryView:
        """The last `span` (1 minute to 30 days) of (model, env), up to now, in at most
        `buckets` buckets per version."""
        until = self._clock.now()
        with self._uow() as uow:
            return read_view(uow, model, env, since=until - span, until=until, buckets=buckets)
