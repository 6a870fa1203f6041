"""The dashboard in Chromium against the real control plane: an operator sees the degraded v3,
rolls back from the page after reading the dry-run plan, and watches the page update without a
reload; a viewer cannot roll back, and the refusal is shown and audited."""

from __future__ import annotations

import re
import tarfile
from datetime import timedelta

import pytest

from tests.browser.conftest import Site, Visit
from tests.browser.story import ENV, MLFLOW_UI, MODEL

pytestmark = pytest.mark.slow


def sign_in(visit: Visit, token: str) -> None:
    page = visit.page
    page.get_by_test_id("token-input").fill(token)
    page.get_by_test_id("sign-in").click()
    page.get_by_test_id("live-version").wait_for()


def live_version(world: Site) -> int | None:
    status = world.services.deployments.status(MODEL, env=ENV)
    return status.live.version if status.live else None


def text(visit: Visit, testid: str) -> str:
    return str(visit.page.get_by_test_id(testid).inner_text())


def test_a_bad_token_is_refused_and_sign_out_forgets_the_token(visit: Visit,
                                                                world: Site) -> None:
    page = visit.page
    page.get_by_test_id("token-input").fill("lgt_not_a_token")
    page.get_by_test_id("sign-in").click()
    page.get_by_test_id("signin-error").wait_for()
    assert "refused" in text(visit, "signin-error")
    assert page.get_by_test_id("serving-panel").is_hidden()
    sign_in(visit, world.viewer)
    assert page.evaluate("sessionStorage.getItem('lastgood.token')") == world.viewer
    page.get_by_test_id("sign-out").click()
    page.get_by_test_id("token-input").wait_for()
    assert page.evaluate("sessionStorage.getItem('lastgood.token')") is None
    assert page.get_by_test_id("serving-panel").is_hidden()
    assert visit.foreign == []
    assert visit.errors == []


def test_a_viewer_sees_everything_but_cannot_roll_back(visit: Visit, world: Site) -> None:
    page, before = visit.page, live_version(world)
    page.route("**/api/v1/stream*", lambda route: route.abort())  # updates must come by polling
    sign_in(visit, world.viewer)
    page.get_by_test_id("feed").filter(has_text="polling every 2 s").wait_for()
    assert "watcher" in text(visit, "whoami")
    assert "viewer" in text(visit, "whoami")
    button = page.get_by_test_id("rollback-button")
    assert button.is_disabled()
    assert "needs the operator role" in text(visit, "rollback-note")
    visit.shot("viewer")
    # Even with the button forced on, the control plane refuses and the page says why.
    page.evaluate("document.getElementById('rollback').disabled = false")
    button.click()
    page.get_by_test_id("plan-target").wait_for()  # a dry run is allowed to viewers
    page.get_by_test_id("rollback-reason").fill("trying without the role")
    page.evaluate("document.getElementById('plan-confirm').disabled = false")
    page.get_by_test_id("rollback-confirm").click()
    error = page.get_by_test_id("rollback-error")
    error.wait_for()
    assert re.search(r"Forbidden: watcher has the viewer role; rollback needs operator",
                     error.inner_text())
    assert "ask an admin" in error.inner_text()
    visit.shot("viewer-refused")
    page.get_by_test_id("rollback-cancel").click()
    refused = page.locator("[data-testid=event-row][data-action='rollback.refused']")
    refused.first.wait_for()  # the denial is audited, and the poll brings it in
    assert live_version(world) == before
    assert [f for f in visit.failed if "/rollback" in f] == [
        f"403 POST /api/v1/models/{MODEL}/rollback"]
    assert visit.foreign == []
    assert visit.errors == []


def test_an_operator_rolls_back_the_degraded_version_from_the_page(visit: Visit,
                                                                   world: Site) -> None:
    page = visit.page
    assert live_version(world) == 3
    sign_in(visit, world.operator)
    page.get_by_test_id("feed").filter(has_text="live").wait_for()  # the event stream is open
    assert text(visit, "live-version").startswith("v3")
    assert text(visit, "live-verified") == "not verified"
    page.locator("[data-testid=replica-actual]", has_text="v3").wait_for()
    page.get_by_test_id("metrics-note").filter(has_text="v2's record").wait_for()
    # the way back on today's traffic: the replica's replay of its requests on the v2 standby
    # (or, before its first replay, a plain "no replay data yet", never a pass)
    replay = text(visit, "replay")
    assert replay.startswith(("answers today's traffic v2 answered all ",
                              "no replay data yet no replay data yet:")), replay
    page.locator("[data-testid=chart-accuracy] [data-testid=run-accuracy]").first.wait_for()
    assert page.locator("[data-testid=timeline-deployment][data-version='3']"
                        "[data-verified='no'][data-end='live']").count() == 1
    # the version imported from an MLflow server links to its page there; the others do not
    link = page.locator("[data-testid=timeline-row][data-version='2'] [data-testid=mlflow-link]")
    assert link.get_attribute("href") == f"{MLFLOW_UI}/#/models/Iris%20Model/versions/7"
    assert link.get_attribute("rel") == "noopener noreferrer"
    for other in ("1", "3"):
        assert page.locator(f"[data-testid=timeline-row][data-version='{other}'] "
                            "[data-testid=mlflow-link]").count() == 0
    visit.shot("operator-degraded")
    seen = page.locator("[data-testid=event-row]").count()
    page.evaluate("window.sameDocument = true")  # gone if anything reloads the page

    page.get_by_test_id("rollback-button").click()
    page.get_by_test_id("plan-target").wait_for()
    assert text(visit, "plan-target") == "target v2"
    refused = page.get_by_test_id("plan-candidate").filter(has_text="v3")
    assert "is the live version" in refused.inner_text()
    for check in ("integrity", "runtime", "data_contract", "smoke"):
        assert "pass" in text(visit, f"check-{check}")
    confirm = page.get_by_test_id("rollback-confirm")
    assert confirm.is_disabled()  # no reason typed yet
    page.get_by_test_id("rollback-reason").fill("accuracy fell to a third after the v3.0 release")
    assert confirm.is_enabled()
    visit.shot("operator-plan")
    confirm.click()

    page.get_by_test_id("live-version").filter(has_text="v2").wait_for(timeout=90_000)
    assert "v3 → v2" in text(visit, "notice")
    page.locator("[data-testid=replica-actual]", has_text="v2").wait_for()
    page.locator("[data-testid=timeline-row][data-version='3'][data-status='quarantined']"
                 ).wait_for()
    page.locator("[data-testid=event-row][data-action='operation.succeeded']").first.wait_for()
    assert page.locator("[data-testid=event-row]").count() > seen
    bundle = page.get_by_test_id("archive-row").filter(has_text="v3")
    bundle.wait_for()
    with page.expect_download() as download:
        bundle.get_by_test_id("archive-download").click()
    with tarfile.open(download.value.path()) as tar:
        assert "manifest.json" in tar.getnames()
    assert "intact" in text(visit, "chain-status")
    page.wait_for_timeout(500)  # let the charts draw their rollback marker
    visit.shot("operator-rolled-back")

    status = world.services.deployments.status(MODEL, env=ENV)
    assert status.live is not None
    assert status.live.version == 2
    assert status.live.deployed_by == "oncall"
    assert page.evaluate("window.sameDocument === true")  # updated live, never reloaded
    assert visit.failed == []
    assert visit.foreign == []
    assert visit.errors == []


def quarantine_v3(world: Site) -> None:
    """v3 quarantined, as the operator's rollback from the page leaves it (when run alone)."""
    if world.services.registry.show(MODEL, 3).status != "quarantined":
        world.services.deployments.rollback(MODEL, env=ENV, reason="accuracy fell",
                                            actor="oncall")


def test_a_quarantine_is_lifted_from_the_page_by_an_operator_only(visit: Visit,
                                                                   world: Site) -> None:
    from lastgood.domain.deployments import ReplicaReport

    quarantine_v3(world)
    page = visit.page
    # a replica killed a minute ago left its last report behind: shown stale, not serving
    gone = world.services.ports.clock.now() - timedelta(seconds=60)
    with world.services.ports.uow() as uow:
        uow.replicas.report(ReplicaReport("replica-killed", MODEL, ENV, 2, gone, gone))
        uow.commit()
    sign_in(visit, world.viewer)
    killed = page.locator("[data-testid=replica-row]", has_text="replica-killed")
    killed.wait_for()
    assert killed.get_attribute("data-liveness") == "stale"
    assert "silent since" in killed.inner_text()
    row = page.locator("[data-testid=quarantine-row][data-version='3']")
    row.wait_for()
    assert "cause: model" in row.inner_text()
    assert row.get_by_test_id("lift-button").is_disabled()  # a viewer reads only
    # even with the button forced on, the control plane refuses the viewer and the page says so
    page.evaluate("document.querySelector('[data-testid=lift-button]').disabled = false")
    row.get_by_test_id("lift-button").click()
    page.get_by_test_id("lift-reason").fill("trying without the role")
    page.get_by_test_id("lift-confirm").click()
    page.get_by_test_id("lift-error").wait_for()
    assert "Forbidden" in text(visit, "lift-error")
    page.get_by_test_id("lift-cancel").click()
    assert world.services.registry.show(MODEL, 3).status == "quarantined"

    page.get_by_test_id("sign-out").click()
    sign_in(visit, world.operator)
    row.get_by_test_id("lift-button").click()
    confirm = page.get_by_test_id("lift-confirm")
    assert confirm.is_disabled()  # no reason typed yet
    page.get_by_test_id("lift-reason").fill("the accuracy drop came from a broken feature feed")
    visit.shot("operator-lift")
    confirm.click()
    page.get_by_test_id("quarantine-list").filter(has_text="No quarantined version").wait_for()
    assert "lifted" in text(visit, "notice")
    page.locator("[data-testid=timeline-row][data-version='3'][data-status='active']").wait_for()
    page.locator("[data-testid=event-row][data-action='quarantine.lifted']").first.wait_for()
    assert world.services.registry.show(MODEL, 3).status == "active"
    [lifted] = [e for e in world.services.registry.events(model=MODEL)
                if e.action == "quarantine.lifted"]
    assert (lifted.actor, lifted.draft.reason) == (
        "oncall", "the accuracy drop came from a broken feature feed")
    assert [f for f in visit.failed if "/lift" in f] == [
        f"403 POST /api/v1/models/{MODEL}/versions/3/quarantine/lift"]
    assert visit.foreign == []
    assert visit.errors == []
