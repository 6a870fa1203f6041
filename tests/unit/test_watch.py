"""The watch stepped tick by tick on in-memory fakes and a FixedClock."""

from __future__ import annotations

import pytest

from lastgood.domain.baselines import FORMAT
from lastgood.domain.decisions import DecisionKind
from lastgood.domain.health import Mode, Verdict
from lastgood.domain.measurements import RateCounts, Summary
from lastgood.services.watch import WatchSettings
from tests.unit.watch_fakes import ENV, MODEL, WatchedFake, traffic


def test_a_healthy_deployment_is_verified_once_its_bake_window_passes() -> None:
    w = WatchedFake()
    w.world.add_version(tag="v1")
    w.world.add_version(tag="v2")
    w.verified_with_baseline(1)
    w.world.deploy(2, verify=False)
    w.source.data[2] = traffic(400, 4)
    early = w.watch.tick(ENV)
    assert early[0].assessment.verdict is Verdict.HEALTHY
    assert early[0].action == ""
    assert w.live() == (2, False)
    w.clock.advance(601)
    w.source.data[2] = traffic(6000, 55)
    late = w.watch.tick(ENV)
    assert late[0].action == "verified"
    assert w.live() == (2, True)
    with w.world.registry() as uow:
        record = uow.deployments.live(MODEL, ENV).verified  # type: ignore[union-attr]
    assert record is not None
    assert record.approver == "lastgood-watch"
    assert record.distribution["format"] == FORMAT
    assert record.distribution["errors"] == {"events": 55, "trials": 6000}
    assert record.baseline["error_rate"] == round(55 / 6000, 6)
    verified = w.events("deployment.verified")
    assert verified[-1]["evidence"]["assessment"]["verdict"] == "HEALTHY"  # type: ignore[index]
    assert any(n.decision == "verified" for n in w.notifier.notices)


def test_degraded_rolls_back_with_the_evidence_in_the_event_and_the_trigger() -> None:
    w = WatchedFake()
    for tag in ("v1", "v2"):
        w.world.add_version(tag=tag)
    w.verified_with_baseline(1)
    w.world.deploy(2, verify=False)
    w.clock.advance(30)
    w.source.data[2] = traffic(300, 60)  # 20 % errors against 1 %
    seen = w.watch.tick(ENV)
    assert seen[0].decision.kind is DecisionKind.ROLLBACK
    assert seen[0].action.startswith("rolled back to v1")
    assert w.live()[0] == 1
    decision = w.events("watch.decision")[-1]
    assert "error rate 20.00%" in str(decision["reason"])
    evidence = decision["evidence"]
    assert isinstance(evidence, dict)
    signals = {s["signal"]: s for s in evidence["assessment"]["signals"]}
    assert signals["error_rate"]["verdict"] in ("DEGRADED", "FAILED")
    assert signals["error_rate"]["samples"] == 300
    assert evidence["baseline_from"].startswith("record of deployment")
    assert evidence["first_evidence_at"] is not None
    op = w.world.services.deployments.operations(model=MODEL, env=ENV)[0]
    assert op.kind == "rollback"
    assert op.reason.startswith("watch: fraud-detector v2")
    assert op.trigger["decision"] == "rollback"
    assert op.trigger["deployment_id"] == 2
    assert [n.severity for n in w.notifier.notices] == ["critical"]


def test_pause_mode_alerts_a_human_and_changes_nothing() -> None:
    w = WatchedFake(mode=Mode.PAUSE)
    for tag in ("v1", "v2"):
        w.world.add_version(tag=tag)
    w.verified_with_baseline(1)
    w.world.deploy(2, verify=False)
    w.source.data[2] = traffic(300, 60)
    first = w.watch.tick(ENV)
    assert first[0].decision.kind is DecisionKind.PAUSE
    assert w.live() == (2, False)
    assert w.world.services.deployments.operations(model=MODEL, env=ENV)[0].kind == "deploy"
    w.clock.advance(5)
    again = w.watch.tick(ENV)
    assert again[0].decision.kind is DecisionKind.RECORD  # already handed to a human
    assert len(w.events("watch.decision")) == 1
    assert [(n.decision, n.severity) for n in w.notifier.notices] == [("pause", "critical")]


def test_a_pause_survives_a_restart_of_the_watch() -> None:
    w = WatchedFake(mode=Mode.PAUSE)
    for tag in ("v1", "v2"):
        w.world.add_version(tag=tag)
    w.verified_with_baseline(1)
    w.world.deploy(2, verify=False)
    w.source.data[2] = traffic(300, 60)
    w.watch.tick(ENV)
    fresh = WatchedFake.__new__(WatchedFake)
    fresh.__dict__.update(w.__dict__)
    fresh.__post_init__()  # a new WatchService over the same registry
    w.clock.advance(5)
    assert fresh.watch.tick(ENV)[0].decision.kind is DecisionKind.RECORD


def test_observe_mode_records_once_and_never_acts() -> None:
    w = WatchedFake(mode=Mode.OBSERVE)
    for tag in ("v1", "v2"):
        w.world.add_version(tag=tag)
    w.verified_with_baseline(1)
    w.world.deploy(2, verify=False)
    w.source.data[2] = traffic(300, 60)
    for _ in range(3):
        seen = w.watch.tick(ENV)
        w.clock.advance(5)
    assert seen[0].decision.kind is DecisionKind.RECORD
    assert seen[0].decision.verdict in (Verdict.DEGRADED, Verdict.FAILED)
    assert w.live() == (2, False)
    assert len(w.events("watch.decision")) == 1
    assert w.notifier.notices[0].decision == "record"


def test_a_source_that_is_down_is_inconclusive_never_a_rollback() -> None:
    w = WatchedFake()
    for tag in ("v1", "v2"):
        w.world.add_version(tag=tag)
    w.verified_with_baseline(1)
    w.world.deploy(2, verify=False)
    w.source.down = "connection refused"
    seen = w.watch.tick(ENV)
    assert seen[0].assessment.verdict is Verdict.INCONCLUSIVE
    assert "metric source: connection refused" in seen[0].assessment.reason
    assert w.events("watch.decision") == []  # quiet while it may be a blip
    w.clock.advance(61)
    seen = w.watch.tick(ENV)
    assert seen[0].decision.kind is DecisionKind.RECORD
    assert len(w.events("watch.decision")) == 1
    assert w.live() == (2, False)


def test_garbage_from_the_source_is_inconclusive() -> None:
    w = WatchedFake()
    for tag in ("v1", "v2"):
        w.world.add_version(tag=tag)
    w.verified_with_baseline(1)
    w.world.deploy(2, verify=False)
    w.source.data[2] = Summary(errors=RateCounts(500, 20))  # more errors than requests
    seen = w.watch.tick(ENV)
    assert seen[0].assessment.verdict is Verdict.INCONCLUSIVE
    assert "garbage" in seen[0].assessment.reason
    assert w.live()[0] == 2


def test_a_source_that_raises_is_logged_and_the_watch_goes_on() -> None:
    w = WatchedFake()
    for tag in ("v1", "v2"):
        w.world.add_version(tag=tag)
    w.verified_with_baseline(1)
    w.world.deploy(2, verify=False)
    w.source.raises = True
    assert w.watch.tick(ENV) == []
    assert w.live()[0] == 2
    w.source.raises = False
    w.source.data[2] = traffic(50)
    assert w.watch.tick(ENV)[0].assessment.verdict is Verdict.INCONCLUSIVE  # 50 < 100 samples


def test_no_ping_pong_after_a_rollback() -> None:
    w = WatchedFake()
    for tag in ("v1", "v2"):
        w.world.add_version(tag=tag)
    w.verified_with_baseline(1)
    w.world.deploy(2, verify=False)
    w.source.data[2] = traffic(300, 60)
    w.watch.tick(ENV)
    assert w.live()[0] == 1
    w.clock.advance(30)
    w.source.data[1] = traffic(300, 60)  # the restored version looks bad too
    seen = w.watch.tick(ENV)
    assert seen[0].decision.kind is DecisionKind.PAUSE
    assert "a rollback already ran" in seen[0].decision.reason
    assert w.live()[0] == 1
    kinds = [op.kind for op in w.world.services.deployments.operations(model=MODEL, env=ENV)]
    assert kinds.count("rollback") == 1


def test_the_restored_version_is_judged_against_its_own_pre_failure_baseline() -> None:
    w = WatchedFake()
    for tag in ("v1", "v2"):
        w.world.add_version(tag=tag)
    w.verified_with_baseline(1, traffic(6000, 0, latency_s=0.02))
    w.world.deploy(2, verify=False)
    w.source.data[2] = traffic(300, 60)
    w.watch.tick(ENV)
    w.clock.advance(5)
    w.source.data[1] = traffic(300, 0, latency_s=0.02)
    seen = w.watch.tick(ENV)
    # deployment 1's record, or the same evidence carried onto the restored deployment 3 by a
    # rollback whose live verification passed
    assert seen[0].baseline_from in ("record of deployment 1 (v1)",
                                     "own record of deployment 3 (v1)")
    with w.world.registry() as uow:
        restored = uow.deployments.live(MODEL, ENV)
        first = uow.deployments.get(1)
    assert restored is not None
    assert restored.verified is not None
    assert first.verified is not None
    assert restored.verified.distribution == first.verified.distribution
    assert seen[0].assessment.verdict is Verdict.HEALTHY


def test_a_rollback_without_a_target_is_handed_to_a_human_once() -> None:
    w = WatchedFake()
    for tag in ("v1", "v2"):
        w.world.add_version(tag=tag)
    w.verified_with_baseline(1)
    w.world.deploy(2, verify=False)
    w.world.services.registry.retire(MODEL, 1, reason="licence expired", actor="alice")
    w.source.data[2] = traffic(300, 60)
    seen = w.watch.tick(ENV)
    assert seen[0].action.startswith("rollback refused")
    failed = w.events("watch.decision")
    assert failed[-1]["outcome"] == "failed"
    assert failed[-1]["after"]["decision"] == "pause"  # type: ignore[index]
    w.clock.advance(5)
    w.watch.tick(ENV)
    assert len(w.events("rollback.refused")) + len(w.events("operation.refused")) <= 2
    assert len(w.events("watch.decision")) == 1


def test_a_failed_verification_of_the_rollback_escalates() -> None:
    w = WatchedFake()
    for tag in ("v1", "v2"):
        w.world.add_version(tag=tag)
    w.verified_with_baseline(1)
    w.world.deploy(2, verify=False)
    w.world.verifier.verdict = "FAILED"
    w.source.data[2] = traffic(300, 60)
    seen = w.watch.tick(ENV)
    assert seen[0].action.startswith("rollback escalated")
    assert w.live()[0] == 1
    assert w.notifier.notices[-1].severity == "critical"


def test_the_watch_looks_sooner_while_the_evidence_leans_toward_a_regression() -> None:
    w = WatchedFake()
    for tag in ("v1", "v2"):
        w.world.add_version(tag=tag)
    w.verified_with_baseline(1)
    w.world.deploy(2, verify=False)
    w.watch.settings = WatchSettings()  # the defaults: 1 s, a fifth of it while leaning
    assert w.watch.pace([]) == 1.0  # nothing seen (a failed tick): the usual interval
    w.clock.advance(4)
    w.source.data[2] = traffic(40)  # no errors: the evidence sits below 1
    calm = w.watch.tick(ENV)
    assert w.watch.pace(calm) == 1.0
    w.source.data[2] = traffic(40, 2)  # 5 % against 1 %: leaning, far from 1/alpha
    lean = w.watch.tick(ENV)
    assert lean[0].decision.kind is not DecisionKind.ROLLBACK
    assert w.watch.pace(lean) == pytest.approx(0.2)
    w.source.data[2] = traffic(300, 60)
    rolled = w.watch.tick(ENV)
    assert rolled[0].action.startswith("rolled back")
    assert w.watch.pace(rolled) == 1.0  # decided: nothing left to look for


@pytest.mark.parametrize(("interval", "quick"), [(1.0, 0.2), (5.0, 1.0), (0.3, 0.1), (0.05, 0.05),
                                                 (0.0, 0.0)])
def test_the_quick_interval_is_a_fifth_never_under_a_tenth_of_a_second(interval: float,
                                                                      quick: float) -> None:
    assert WatchSettings(interval_s=interval).quick_interval_s == pytest.approx(quick)
