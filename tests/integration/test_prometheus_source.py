"""The PromQL source against a REAL Prometheus (Debian's /usr/bin/prometheus) scraping a running
lastgood gateway on loopback every second: it must read the counts the gateway itself reports."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from lastgood.adapters.metrics import PrometheusSource, http_source
from lastgood.adapters.system.clock import SystemClock
from lastgood.adapters.wakeups.change_signals import PollingSignal
from lastgood.domain.measurements import RateCounts
from lastgood.serving.server import create_serving_app
from lastgood.testing import MemoryRegistry
from tests.integration.test_serving_server import ENV, deploy, seed
from tests.net import free_port, running, wait_for
from tests.unit.test_serving_support import MODEL, POISON, RECORD, FakeLoader

pytestmark = pytest.mark.slow
PROMETHEUS = Path(os.environ.get("LASTGOOD_TEST_PROMETHEUS", "/usr/bin/prometheus"))




def slow_wait_for(predicate: Callable[[], bool], *, timeout_s: float = 30.0) -> bool:
    """Prometheus scrapes every second: look every 0.2 s, and a failed query means not yet."""
    return wait_for(predicate, timeout_s=timeout_s, poll_s=0.2, retry_on=httpx.HTTPError)


@contextmanager
def prometheus(tmp_path: Path, target: str) -> Iterator[str]:
    """A private Prometheus on a free loopback port scraping `target` every second."""
    if not PROMETHEUS.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{PROMETHEUS} is missing under CI: apt-get install prometheus")
        pytest.skip(f"{PROMETHEUS} is missing (apt-get install prometheus)")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: lastgood
    metrics_path: /metrics
    static_configs:
      - targets: ["{target}"]
""", encoding="utf-8")
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen([str(PROMETHEUS), f"--config.file={config}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        ready = slow_wait_for(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200)
        assert ready, (tmp_path / "prometheus.log").read_text()
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def scraped(url: str, metric: str) -> float:
    query = f'sum({metric}{{model="{MODEL}",version="1"}})'
    result = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5).json()
    found = result["data"]["result"]
    return float(found[0]["value"][1]) if found else -1.0


def traffic(http: httpx.Client, requests: int, poison_every: int) -> None:
    for i in range(requests):
        record = dict(RECORD, n=POISON) if i % poison_every == 0 else RECORD
        http.post(f"/v1/models/{MODEL}/predict", json={"records": [record]})


def gateway_counts(http: httpx.Client) -> RateCounts:
    stats = http.get(f"/v1/models/{MODEL}/stats").json()
    v1 = next(v for v in stats["versions"] if v["version"] == 1)
    return RateCounts(v1["errors"], v1["requests"])


def test_promql_reads_the_counts_the_gateway_reports(tmp_path: Path) -> None:
    registry = MemoryRegistry()
    seed(registry)
    deploy(registry, 1)
    app = create_serving_app(env=ENV, uow_factory=registry, loader=FakeLoader(),
                             replica_id="prom-1", signal=PollingSignal(registry, ENV,
                                                                       interval_s=0.05),
                             clock=SystemClock())
    clock = SystemClock()
    start = datetime.now(UTC)
    with running(app) as base, httpx.Client(base_url=base, timeout=10) as http, \
            prometheus(tmp_path, base.removeprefix("http://")) as prom:
        assert slow_wait_for(lambda: http.get("/readyz").status_code == 200)
        source = PrometheusSource(prom, clock=clock)
        traffic(http, 60, poison_every=10)
        first = gateway_counts(http)
        assert first == RateCounts(6, 60)
        assert slow_wait_for(lambda: scraped(prom, "lastgood_requests_total") == first.trials)
        window = source.window(MODEL, ENV, 1, since=start)
        assert window.problems == {}
        assert window.summary.errors == first
        assert window.summary.latency is not None
        assert window.summary.latency.total == first.trials
        assert window.summary.predictions is not None
        assert window.summary.predictions.counts[1] == first.trials - first.events

        time.sleep(1.5)  # one more scrape holds the first batch's totals
        middle = datetime.now(UTC)
        traffic(http, 30, poison_every=3)
        total = gateway_counts(http)
        assert slow_wait_for(lambda: scraped(prom, "lastgood_requests_total") == total.trials)
        later = source.window(MODEL, ENV, 1, since=middle)
        assert later.summary.errors == RateCounts(total.events - first.events,
                                                  total.trials - first.trials)
        assert (datetime.now(UTC) - later.observed_at).total_seconds() < 10
        gateway = http_source([base], clock=clock)
        own = gateway.window(MODEL, ENV, 1, since=start)
        gateway.close()
        assert own.summary.errors == source.window(MODEL, ENV, 1, since=start).summary.errors
        source.close()
