"""Replica discovery from the registry's reports, and the lease that lets one watch act."""

from __future__ import annotations

import socket
from datetime import timedelta

from lastgood.adapters.metrics.discovery import RegistryReplicas, registry_source
from lastgood.domain.deployments import ReplicaReport
from lastgood.domain.health import HealthPolicy, Verdict, assess, default_signal
from lastgood.domain.measurements import RateCounts, Summary
from lastgood.services.watch_lease import WatchLease
from lastgood.testing import EPOCH, FixedClock
from lastgood.testing.memory import MemoryRegistry
from tests.net import free_port
from tests.unit.test_watch_sources import Canned, entry

MODEL, ENV = "m", "production"


def report(registry: MemoryRegistry, clock: FixedClock, replica: str, url: str, *,
           state: str = "serving") -> None:
    now = clock.now()
    with registry() as uow:
        uow.replicas.report(ReplicaReport(replica_id=replica, model=MODEL, env=ENV, version=1,
                                          since=now, seen_at=now, state=state, url=url))
        uow.commit()


def test_fresh_replicas_are_read_stale_and_stopped_ones_dropped_late_ones_picked_up() -> None:
    registry, clock = MemoryRegistry(), FixedClock()
    found = RegistryReplicas(registry, clock=clock, stale_after_s=15)
    report(registry, clock, "a", "http://10.0.0.1:9000")
    report(registry, clock, "workers", "")  # several workers behind one port: no URL
    assert [r.name for r in found.readers(MODEL, ENV)[0]] == ["http://10.0.0.1:9000"]
    clock.advance(10)
    report(registry, clock, "b", "http://10.0.0.2:9000")  # started later
    assert [r.name for r in found.readers(MODEL, ENV)[0]] == ["http://10.0.0.1:9000",
                                                               "http://10.0.0.2:9000"]
    clock.advance(6)  # a missed three heartbeats: killed without a word
    assert [r.name for r in found.readers(MODEL, ENV)[0]] == ["http://10.0.0.2:9000"]
    report(registry, clock, "b", "http://10.0.0.2:9000", state="stopped")
    readers, why = found.readers(MODEL, ENV)
    assert readers == []
    assert "no replica of m in production has reported a URL" in why
    assert "--gateway" in why
    found.close()


def test_a_replica_that_does_not_answer_is_inconclusive_for_itself_only() -> None:
    registry, clock = MemoryRegistry(), FixedClock()
    own, dead = Canned(), f"http://127.0.0.1:{free_port()}"
    own.doc = {"env": ENV, "versions": [entry(1, 200, 2, since=(EPOCH + timedelta(
        seconds=1)).isoformat())]}
    report(registry, clock, "me", "http://127.0.0.1:1")
    report(registry, clock, "gone", dead)
    source = registry_source(registry, clock=clock, own=("http://127.0.0.1:1", own))
    clock.advance(5)
    window = source.window(MODEL, ENV, 1, since=EPOCH)
    assert window.summary.errors == RateCounts(2, 200)  # the replica that answers counts
    assert list(window.problems) == [f"replica {dead}"]
    assert window.problems[f"replica {dead}"].startswith("INCONCLUSIVE: cannot reach")
    policy = HealthPolicy(MODEL, ENV, (default_signal("error_rate"),), alpha=0.1)
    judged = assess(policy, Summary(errors=RateCounts(60, 6000)), window, now=clock.now())
    assert judged.verdict is Verdict.HEALTHY
    assert f"replica {dead}: INCONCLUSIVE: cannot reach" in judged.reason
    source.close()


def test_one_watch_acts_and_another_takes_over_when_its_lease_lapses() -> None:
    registry, clock = MemoryRegistry(), FixedClock()
    first = WatchLease(uow=registry, clock=clock, env=ENV, holder="host-a:1:x", ttl_s=10)
    second = WatchLease(uow=registry, clock=clock, env=ENV, holder="host-b:2:y", ttl_s=10)
    assert first.hold().acting
    standing = second.hold()
    assert not standing.acting
    assert standing.holder == "host-a:1:x"
    clock.advance(5)
    assert first.hold().acting  # renewed at every look
    clock.advance(9)
    assert not second.hold().acting
    clock.advance(2)  # the first stopped renewing (crashed on another host)
    assert second.hold().acting
    assert not first.hold().acting
    second.release()  # a clean stop hands over at the next look
    assert first.hold().acting


def test_a_dead_watch_on_this_host_is_taken_over_at_once() -> None:
    registry, clock = MemoryRegistry(), FixedClock()
    dead = WatchLease(uow=registry, clock=clock, env=ENV,
                      holder=f"{socket.gethostname()}:999999999:x", ttl_s=60)
    assert dead.hold().acting
    alive = WatchLease(uow=registry, clock=clock, env=ENV, ttl_s=60)
    assert alive.hold().acting
