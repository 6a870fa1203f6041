"""The watch tells a real, signature-checking receiver when rollback readiness is lost (a
standby whose outputs changed) and when it comes back (the standby reproduces again)."""

from __future__ import annotations

import json

from lastgood.adapters.notify import WebhookNotifier
from lastgood.services.rollback_readiness import ReadinessWatch
from tests.integration.test_notify_webhook import SECRET, receiver
from tests.unit.fake_lastgood import FakeLastgood
from tests.unit.test_readiness_rollback import ENV, MODEL, Replica
from tests.unit.test_readiness_rollback import world as world


def look(watch: ReadinessWatch, world: FakeLastgood) -> str | None:
    status = world.services.deployments.status(MODEL, env=ENV)
    return watch.observe(MODEL, ENV, 3, status.readiness)


def test_readiness_lost_and_regained_are_signed_webhooks(world: FakeLastgood) -> None:
    replica = Replica(world, "r1")
    with receiver() as got:
        hook = WebhookNotifier(got.url, secret=SECRET, sleep=lambda s: None)
        watch = ReadinessWatch(uow=world.registry, notifier=hook, clock=world.clock,
                               actor="lastgood-watch")
        assert look(watch, world) is None  # no replica has proven anything yet: nothing lost
        replica.settle()
        assert look(watch, world) is None  # ready from the first look: nothing to tell
        replica.loader.predictors[2].answer = 7  # the fault
        replica.settle()
        assert look(watch, world) == "readiness.lost"
        assert look(watch, world) is None  # told once, not every tick
        replica.loader.predictors[2].answer = 0
        replica.settle()
        assert look(watch, world) == "readiness.regained"
        hook.close()
    bodies = [json.loads(body) for body, _, _ in got.received]
    assert all(valid for _, _, valid in got.received)
    assert [b["kind"] for b in bodies] == ["readiness.lost", "readiness.regained"]
    assert "stopped reproducing its golden examples" in bodies[0]["summary"]
    assert bodies[1]["summary"] == "rollback ready: v2, proven 0 s ago on 1/1 replicas"
    with world.registry() as uow:
        actions = [e.action for e in uow.events.list() if e.action.startswith("readiness.")]
    assert actions == ["readiness.lost", "readiness.regained"]
