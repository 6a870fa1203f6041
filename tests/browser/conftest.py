"""The real control plane on loopback, a real serving replica under traffic, and Debian's
chromium driven by Playwright (never a downloaded browser).

Without /usr/bin/chromium the browser tests are skipped with the reason, except under CI
(CI=true), where a missing browser is a failure: `.ci/run` installs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).parent / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}  # a laptop screen


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing under CI: .ci/run installs it with apt-get")
    pytest.skip(f"{CHROMIUM} is missing: `apt-get install chromium` to run the browser tests")


@dataclass(frozen=True)
class Site:
    """Where everything runs, and the tokens to sign in with."""

    base: str  # the control plane, e.g. http://127.0.0.1:PORT
    operator: str
    viewer: str
    services: Any  # lastgood.services.container.Services of the control plane


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """iris v1 and v2 verified, v3 live and degraded, served by a replica under traffic."""
    require_chromium()
    from lastgood.bootstrap import build_control_plane, open_services
    from lastgood.config import load_settings
    from lastgood.dashboard import serving_stats
    from lastgood.domain.access import Role
    from lastgood.sdk import Lastgood
    from tests.browser.story import ENV, MODEL, Traffic, replica_app, seed, train_story
    from tests.net import running, wait_for

    root = tmp_path_factory.mktemp("dashboard")
    settings = load_settings({"LASTGOOD_HOME": str(root / "home"), "LASTGOOD_ACTOR": "release-bot"})
    # Seeding skips the smoke test to stay quick; the control plane runs it for real.
    with Lastgood(services=open_services(replace(settings, smoke_test=False)),
                  actor="release-bot") as lg:
        seed(lg, train_story(root / "models"))
    services = open_services(settings)
    issued = [services.access.create_token(owner, role=role, actor="admin")
              for owner, role in (("oncall", Role.OPERATOR), ("watcher", Role.VIEWER))]
    replica = replica_app(services, root / "cache")
    # The control plane as `lastgood server --with-serving` builds it: API, dashboard, and the
    # charts fed by the replica's own counters.
    app = build_control_plane(services, settings, live_stats=serving_stats(
        replica.state.serving, name="replica-1"))
    with Lastgood(services=services), running(replica) as replica_url, running(app) as base:
        def serving_v3() -> bool:
            status = services.deployments.status(MODEL, env=ENV)
            return [r.version for r in status.replicas] == [3]

        assert wait_for(serving_v3), "the replica did not start serving v3"
        with Traffic(replica_url):
            yield Site(base, issued[0].secret, issued[1].secret, services)


@pytest.fixture(scope="module")
def browser(world: Site) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Visit:
    """One browser tab on the dashboard, recording what would betray a broken page."""

    page: Any
    errors: list[str]  # uncaught exceptions and console errors of the page's own script
    foreign: list[str]  # requests that left the control plane (a CDN, a font): must stay empty
    failed: list[str]  # "STATUS METHOD PATH" of every response >= 400

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path


@pytest.fixture
def visit(browser: Any, world: Site) -> Iterator[Visit]:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    found = Visit(page, [], [], [])
    page.on("pageerror", lambda exc: found.errors.append(str(exc)))
    page.on("console", lambda msg: found.errors.append(msg.text)
            if msg.type == "error" and "Failed to load resource" not in msg.text else None)
    page.on("response", lambda res: found.failed.append(
        f"{res.status} {res.request.method} {res.url.removeprefix(world.base)}")
        if res.status >= 400 else None)
    page.on("request", lambda req: None if req.url.startswith((world.base, "data:", "blob:"))
            else found.foreign.append(req.url))
    page.goto(f"{world.base}/dashboard/")
    try:
        yield found
    finally:
        context.close()
