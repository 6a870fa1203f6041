"""The metric history in Chromium: traffic and a rollback happen while no browser is open; a
page opened afterwards (on a control plane started afresh) draws the points of both versions,
the deploy / rollback / verify markers, and after the rollback the baseline of the restored
version, never the one of the version rolled back from. Restarting the control plane keeps it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, require_chromium
from tests.browser.story import ENV, MODEL, Traffic, replica_app, seed, train_story
from tests.net import running, wait_for

pytestmark = pytest.mark.slow

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Story:
    settings: Any
    token: str
    shown_v3: int  # points of v3 the registry held when the traffic stopped
    shown_v2: int


def versions_with_points(services: Any) -> dict[int, int]:
    view = services.history.view(MODEL, env=ENV, span=HOUR)
    counts: dict[int, int] = {}
    for point in view.points:
        counts[point.version] = counts.get(point.version, 0) + 1
    return counts


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    """v1, v2 verified; v3 deployed and verified by hand with a wrong accuracy, served under
    labelled traffic, then rolled back to v2 by the CLI's service: all before any page opens."""
    require_chromium()
    from lastgood.bootstrap import open_services
    from lastgood.config import load_settings
    from lastgood.domain.access import Role
    from lastgood.sdk import Lastgood

    root = tmp_path_factory.mktemp("history")
    settings = load_settings({"LASTGOOD_HOME": str(root / "home"),
                              "LASTGOOD_ACTOR": "release-bot"})
    with Lastgood(services=open_services(replace(settings, smoke_test=False)),
                  actor="release-bot") as lg:
        seed(lg, train_story(root / "models"))
        lg.verify(MODEL, env=ENV, reason="looked fine by hand", baseline={"accuracy": 0.5})
    services = open_services(settings)
    token = services.access.create_token("oncall", role=Role.OPERATOR, actor="admin").secret
    replica = replica_app(services, root / "cache")
    with Lastgood(services=services), running(replica) as replica_url, Traffic(replica_url):
        assert wait_for(lambda: versions_with_points(services).get(3, 0) >= 2, timeout_s=60), \
            "the replica wrote no history for v3"
        services.deployments.rollback(MODEL, env=ENV, reason="accuracy fell after v3.0",
                                      actor="oncall")
        assert wait_for(lambda: versions_with_points(services).get(2, 0) >= 2, timeout_s=60), \
            "the replica wrote no history for v2 after the rollback"
    counts = versions_with_points(services)  # the replica stopped: it wrote its last counts
    return Story(settings, token, counts[3], counts[2])


@pytest.fixture(scope="module")
def browser(story: Story) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def fresh_control_plane(story: Story) -> Any:
    """A control plane started from nothing but the registry on disk (no replica beside it)."""
    from lastgood.bootstrap import build_control_plane, open_services

    return build_control_plane(open_services(story.settings), story.settings)


def open_page(browser: Any, base: str, token: str) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{base}/dashboard/")
    page.get_by_test_id("token-input").fill(token)
    page.get_by_test_id("sign-in").click()
    page.get_by_test_id("live-version").filter(has_text="v2").wait_for()
    return context, page, errors


def runs(page: Any, chart: str, version: int) -> int:
    return int(page.locator(f"[data-testid=chart-{chart}] [data-testid=run-{chart}]"
                            f"[data-version='{version}']").count())


def check_history(page: Any) -> None:
    """Both versions drawn, the markers there, the baselines per span right."""
    page.locator("[data-testid=chart-accuracy] [data-testid=run-accuracy]"
                 "[data-version='2']").first.wait_for()
    assert runs(page, "accuracy", 3) >= 1
    assert runs(page, "latency_p95_ms", 2) >= 1
    chart = page.get_by_test_id("chart-accuracy")
    for kind in ("deploy", "rollback", "verify"):
        assert chart.locator(f"[data-testid=marker-{kind}]").count() >= 1, kind
    rollback = chart.locator("[data-testid=marker-rollback] title").first.text_content()
    assert "rollback v3 -> v2" in rollback
    bases = chart.locator("[data-testid=base-accuracy]")
    judged = {(bases.nth(i).get_attribute("data-version"),
               bases.nth(i).get_attribute("data-reference")) for i in range(bases.count())}
    assert ("3", "3") in judged  # v3 against its own (hand-stated) record
    assert ("2", "2") in judged  # restored v2 against its own record, not v3's
    assert ("2", "3") not in judged
    assert "(v2)" in page.get_by_test_id("baseline-accuracy").inner_text()
    # the feedback's custom metric, kept per version in the history, has its own chart
    custom = page.get_by_test_id("chart-custom-revenue")
    assert custom.locator("[data-testid=run-custom-revenue][data-version='2']").count() >= 1
    assert custom.locator("[data-testid=run-custom-revenue][data-version='3']").count() >= 1
    assert page.get_by_test_id("now-custom-revenue").inner_text() != "—"
    assert "v2's record" in page.get_by_test_id("metrics-note").inner_text()


def test_history_written_while_no_page_was_open_is_drawn_and_survives_a_restart(
        story: Story, browser: Any) -> None:
    shots = Path(__file__).parent / "screenshots"
    shots.mkdir(exist_ok=True)
    with running(fresh_control_plane(story)) as base:
        context, page, errors = open_page(browser, base, story.token)
        check_history(page)
        page.screenshot(path=str(shots / "history-after-rollback.png"))
        page.get_by_test_id("range-1d").click()
        page.get_by_test_id("range-1d").and_(page.locator("[aria-pressed=true]")).wait_for()
        page.locator("[data-testid=chart-accuracy] [data-testid=run-accuracy]").first.wait_for()
        context.close()
        assert errors == []
    with running(fresh_control_plane(story)) as base:  # the control plane restarted
        context, page, errors = open_page(browser, base, story.token)
        check_history(page)
        context.close()
        assert errors == []
    assert story.shown_v3 >= 2
    assert story.shown_v2 >= 2


def test_a_quarantined_live_version_says_so_and_no_target_turns_roll_back_off(
        story: Story, browser: Any) -> None:
    """After the rollback v3 is quarantined; v1 retired and the live v2 quarantined too: the
    card says quarantined (not only "not verified") and the red button is off."""
    from lastgood.bootstrap import open_services
    from lastgood.domain.versions import VersionStatus

    services = open_services(story.settings)
    services.registry.retire(MODEL, 1, reason="superseded long ago", actor="oncall")
    with services.ports.uow() as uow:
        uow.versions.set_status(MODEL, 2, VersionStatus.QUARANTINED)
        uow.commit()
    with running(fresh_control_plane(story)) as base:
        context, page, errors = open_page(browser, base, story.token)
        page.get_by_test_id("rollback-note").filter(
            has_text="no verified version to roll back to").wait_for()
        assert page.get_by_test_id("rollback-button").is_disabled()
        assert page.get_by_test_id("live-quarantined").inner_text() == "quarantined"
        assert "no rollback will pick it" in page.get_by_test_id(
            "live-quarantine-note").inner_text()
        context.close()
        assert errors == []
