"""End to end: a bad deploy under load, on a real uvicorn with the watch inside, is detected,
rolled back and the rollback verified, with nobody typing a command (the demo's second act)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lastgood.bootstrap.demo import run_auto_rollback
from lastgood.domain.versions import VersionStatus
from tests.integration.wine_registry import ENV, MODEL, good_live_bad_registered


@pytest.mark.slow
def test_a_bad_deploy_is_rolled_back_and_verified_automatically(tmp_path: Path) -> None:
    services = good_live_bad_registered(tmp_path)
    said: list[str] = []
    timeline = run_auto_rollback(services, model=MODEL, env=ENV, bad=2, home=tmp_path,
                                 actor="tester", say=said.append, rps=40, bake_s=4)
    print("\n".join(said), *(f"{step}: {at}" for step, at in timeline.rows()), sep="\n")
    assert timeline.outcome == "succeeded"
    # v2 answers wrongly (accuracy), but on a loaded machine its latency can cross the policy's
    # tolerance first: either way the reason must name a watched signal and its evidence.
    assert any(f"{signal}:" in timeline.evidence
               for signal in ("accuracy", "latency_p99", "error_rate", "drift")), timeline.evidence
    assert "evidence" in timeline.evidence, timeline.evidence
    assert "needs" in timeline.evidence, timeline.evidence
    assert timeline.verification.startswith("HEALTHY against v1's own baseline")
    status = services.deployments.status(MODEL, env=ENV)
    assert status.live is not None
    assert status.live.version == 1
    assert services.registry.show(MODEL, 2).status is VersionStatus.QUARANTINED
    rollback = services.deployments.operations(model=MODEL, env=ENV)[0]
    assert rollback.actor == "lastgood-watch"
    assert rollback.trigger["verdict"] in ("DEGRADED", "FAILED")
    steps = dict(timeline.rows())
    assert all(at != "—" for at in steps.values()), steps
