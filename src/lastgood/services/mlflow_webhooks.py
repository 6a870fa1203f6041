"""MLflow webhooks on `lastgood server`: a signed `model_version_alias.created` delivery makes
follow mode look at that alias at once instead of at the next poll.

A delivery is accepted only with a valid signature, a timestamp within the tolerance and a
delivery id not seen before; every refusal is audited. Seen ids are kept for the tolerance
window (a replay older than that is refused as stale).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lastgood.domain.audit import EventDraft
from lastgood.domain.errors import AlreadyExists, InvalidInput, NotFound, Unauthorized
from lastgood.ports import Clock, UnitOfWorkFactory
from lastgood.services.mlflow_follow import FollowOutcome, MlflowFollow

Signer = Callable[[str, str, str, str], str]
"""(secret, delivery id, timestamp, payload) -> the signature MLflow would send."""
TOLERANCE_S = 300.0
SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_HEADER = "X-MLflow-Delivery-Id"
"""The headers a delivery's signature, timestamp and id arrive in."""


def unsigned_webhook(secret: str, delivery_id: str, timestamp: str, payload: str) -> str:
    """The signer of a registry without the MLflow adapter: matches no signature."""
    return ""

ACTOR = "mlflow-webhook"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook request as it arrived."""

    signature: str
    timestamp: str
    delivery_id: str
    body: bytes


@dataclass
class MlflowWebhooks:
    """Verify, audit and act on MLflow webhook deliveries."""

    uow: UnitOfWorkFactory
    follow: MlflowFollow
    clock: Clock
    sign: Signer
    secret: str = ""
    tolerance_s: float = TOLERANCE_S
    _seen: dict[str, float] = field(default_factory=dict)

    def receive(self, d: Delivery) -> list[FollowOutcome]:
        """Act on a delivery; raises Unauthorized (bad or stale signature) or AlreadyExists
        (replayed id), each audited."""
        if not self.secret:
            raise NotFound("MLflow webhooks are not enabled on this server",
                           fix="set LASTGOOD_MLFLOW_WEBHOOK_SECRET to the webhook's secret")
        payload = self._verified(d)
        raw = payload.get("data")
        data: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        kind = f"{payload.get('entity')}.{payload.get('action')}"
        self._audit("mlflow.webhook", d, f"{kind} {data.get('name')}@{data.get('alias')} → "
                                         f"v{data.get('version')}", outcome="ok")
        if kind != "model_version_alias.created":
            return []
        name, alias = str(data.get("name", "")), str(data.get("alias", ""))
        return [found for model, env in self.follow.followed_for(name, alias)
                if (found := self.follow.check(model, env, name, via="webhook")) is not None]

    def _verified(self, d: Delivery) -> Mapping[str, Any]:
        expected = self.sign(self.secret, d.delivery_id, d.timestamp,
                             d.body.decode("utf-8", "replace"))
        if not d.signature or not hmac.compare_digest(expected, d.signature):
            raise self._refuse(d, Unauthorized("MLflow webhook signature does not match",
                                               fix="give lastgood the secret the webhook was "
                                                   "created with"))
        now = self.clock.now().timestamp()
        try:
            sent = float(d.timestamp)
        except ValueError:
            sent = 0.0
        if abs(now - sent) > self.tolerance_s:
            raise self._refuse(d, Unauthorized(
                f"MLflow webhook timestamp {d.timestamp!r} is stale (more than "
                f"{self.tolerance_s:.0f}s from now)", fix="check both clocks; stale deliveries "
                                                          "are refused to stop replays"))
        self._seen = {k: t for k, t in self._seen.items() if now - t <= self.tolerance_s}
        if d.delivery_id in self._seen:
            raise self._refuse(d, AlreadyExists(
                f"MLflow webhook delivery {d.delivery_id!r} was already received",
                fix="nothing to do: each delivery is acted on once"))
        self._seen[d.delivery_id] = now
        try:
            found = json.loads(d.body)
        except ValueError as exc:
            raise InvalidInput("MLflow webhook body is not JSON", fix="send MLflow's payload") \
                from exc
        return found if isinstance(found, Mapping) else {}

    def _refuse(self, d: Delivery, exc: Unauthorized | AlreadyExists) -> Exception:
        self._audit("mlflow.webhook_refused", d, exc.message, outcome="refused")
        return exc

    def _audit(self, action: str, d: Delivery, reason: str, *, outcome: str) -> None:
        with self.uow() as uow:
            uow.events.append(EventDraft(
                action=action, actor=ACTOR, subject=d.delivery_id[:64], reason=reason,
                outcome=outcome, evidence={"timestamp": d.timestamp[:32]}), at=self.clock.now())
            uow.commit()
