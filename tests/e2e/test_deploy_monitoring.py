"""The Prometheus alert rules and the Grafana dashboard that ship in deploy/: the rules pass
`promtool check rules` and their own `promtool test rules` (series that fire and that must not),
and every metric the dashboard and the rules query is one a real `lastgood serve --watch`
exposes on /metrics."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lastgood.sdk import Lastgood
from tests.e2e.cli import Cli
from tests.e2e.test_cli_rollback import fill_history
from tests.e2e.test_cli_serve import wait_ready
from tests.e2e.test_cli_watch_first_look import labelled_traffic
from tests.helpers_models import iris_records, three_iris_skops
from tests.net import free_port, wait_for

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULES_TEST = DEPLOY / "prometheus" / "alerts_test.yml"
GRAFANA = DEPLOY / "grafana" / "lastgood.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed "
                                    "(Debian: apt-get install prometheus)")
METRIC = re.compile(r"\blastgood_[a-z_]+\b")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60,
                          check=False)


@needs_promtool
def test_the_alert_rules_are_valid() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout


@needs_promtool
def test_the_alert_rules_fire_on_their_series_and_only_then() -> None:
    tested = promtool("test", "rules", str(RULES_TEST))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = set(re.findall(r"alert: (\w+)", RULES.read_text(encoding="utf-8")))
    exercised = set(re.findall(r"alertname: (\w+)", RULES_TEST.read_text(encoding="utf-8")))
    assert alerts == exercised == {"LastgoodRollbackNotReady", "LastgoodRegression",
                                   "LastgoodReplicaBehindDesired", "LastgoodWatchNotActing",
                                   "LastgoodWatchAbsent"}


@needs_promtool
def test_a_rule_that_never_fires_fails_its_test(tmp_path: Path) -> None:
    """The rule test can fail: the same expectations against a rule that never fires."""
    broken = tmp_path / "alerts.yml"
    broken.write_text(RULES.read_text(encoding="utf-8").replace(
        "expr: lastgood_rollback_ready == 0", "expr: lastgood_rollback_ready == 7"),
        encoding="utf-8")
    (tmp_path / "alerts_test.yml").write_text(RULES_TEST.read_text(encoding="utf-8"),
                                              encoding="utf-8")
    tested = promtool("test", "rules", str(tmp_path / "alerts_test.yml"))
    assert tested.returncode != 0
    assert "LastgoodRollbackNotReady" in tested.stdout + tested.stderr


def queried() -> set[str]:
    """Every metric name the Grafana dashboard and the alert rules query."""
    dashboard = json.loads(GRAFANA.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    names = {m for e in exprs for m in METRIC.findall(e)}
    return names | set(METRIC.findall(RULES.read_text(encoding="utf-8")))


def exposed(url: str) -> set[str]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_dashboard_has_the_panels_of_lastgoods_own() -> None:
    titles = [p["title"] for p in json.loads(GRAFANA.read_text(encoding="utf-8"))["panels"]]
    for word in ("Latency", "Error rate", "Accuracy", "desired against live",
                 "Rollback readiness", "Watch verdict"):
        assert any(word in t for t in titles), (word, titles)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_queried_metric_is_exposed_by_a_real_replica(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LASTGOOD_SMOKE_TEST", "off")  # for the setup through the SDK too
    cli = Cli(home=tmp_path / "home", extra_env={"LASTGOOD_SMOKE_TEST": "off"})
    with Lastgood(home=cli.home, actor="setup") as lg:
        # v3 live, v2 verified with golden examples: a warm standby with readiness proofs
        fill_history(lg, three_iris_skops(tmp_path / "models"), verify_second=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = cli.start("serve", "--env", "production", "--port", str(port), "--watch",
                       "--readiness-interval", "1")
    try:
        wait_ready(url)
        labelled_traffic(url, 3)
        answer = httpx.post(f"{url}/v1/models/iris/predict", timeout=10,
                            json={"records": iris_records(1)}).json()
        httpx.post(f"{url}/v1/models/iris/feedback", timeout=10,
                   json={"request_id": answer["request_id"], "metrics": {"revenue": 2.5}})
        refused = httpx.post(f"{url}/v1/models/iris/predict", timeout=10, json={"rows": []})
        assert refused.status_code in (400, 422)
        wanted = queried()
        assert {"lastgood_request_latency_seconds_bucket", "lastgood_errors_total",
                "lastgood_watch_verdict", "lastgood_live_version"} <= wanted
        assert wait_for(lambda: wanted <= exposed(url), timeout_s=60), \
            sorted(wanted - exposed(url))
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=120)
    assert "Traceback" not in err
