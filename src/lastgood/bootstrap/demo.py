"""The demo's second act: a bad deploy under load, detected, rolled back and verified by the watch.

A serving replica runs in this process on a free loopback port with the watch inside it (what
`lastgood serve --watch` does), reading its own counters. A load generator sends wine samples at
a steady rate and, for each answer, the true label as feedback (a demo shortcut: real labels
come late and sparse). The watch records the live version's baseline and verifies it; then a
version built by a training job with a label-mapping bug is deployed: it passes preflight (its
golden examples are its own answers), and only live accuracy shows the damage. The watch rolls
back to the last verified version and the rollback verifies it against its own pre-failure
baseline. The timeline is read back from the audit trail (`lastgood.services.timelines`).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn

from lastgood.adapters.wakeups.change_signals import PollingSignal
from lastgood.bootstrap.demo_models import Sample, wine_samples
from lastgood.bootstrap.watch import attach_watch
from lastgood.domain.baselines import headline
from lastgood.domain.errors import PreconditionFailed
from lastgood.domain.measurements import Summary
from lastgood.domain.watching import recorded_baseline
from lastgood.services.container import Services
from lastgood.services.timelines import (
    Timeline,
    decision_recorded,
    live_verified,
    read_timeline,
    rollback_finished,
)
from lastgood.services.watch_setup import WatchOptions
from lastgood.serving.loaders import ArtifactLoader
from lastgood.serving.reconciler import ReconcilerOptions
from lastgood.serving.server import ServingOptions, bind_socket, create_serving_app

__all__ = ["Load", "replica_with_watch", "run_auto_rollback", "wait_until"]

POLICY = """\
# the demo's health policy (lastgood policy check {path})
model: {model}
env: {env}
mode: auto
bake_window: {bake}s
cooldown: 10m
alpha: 0.1
signals:
  error_rate: {{weight: 3}}
  latency_p99: {{}}
  accuracy: {{}}
  drift: {{}}
"""


@dataclass
class Load:
    """Steady traffic with feedback, counted by the version that answered."""

    base_url: str
    model: str
    samples: Sequence[Sample]
    rps: float = 25.0
    answered: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        period = 1.0 / self.rps
        with httpx.Client(base_url=self.base_url, timeout=10) as http:
            next_at = time.monotonic()
            for sample in itertools.cycle(self.samples):
                if self.stop.is_set():
                    return
                self._one(http, sample)
                next_at += period
                time.sleep(max(next_at - time.monotonic(), 0.0))

    def _one(self, http: httpx.Client, sample: Sample) -> None:
        try:
            r = http.post(f"/v1/models/{self.model}/predict", json={"records": [sample.record]})
            if r.status_code != 200:
                self.failures[f"HTTP {r.status_code}"] += 1
                return
            self.answered[r.headers.get("X-Model-Version", "?")] += 1
            told = http.post(f"/v1/models/{self.model}/feedback",
                             json={"request_id": r.headers["X-Request-Id"], "label": sample.label})
            if told.status_code != 200:
                self.failures[f"feedback HTTP {told.status_code}"] += 1
        except httpx.HTTPError as exc:
            self.failures[type(exc).__name__] += 1


def wait_until(predicate: Callable[[], bool], *, timeout_s: float, poll_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return False


@contextmanager
def steady_load(load: Load) -> Iterator[Load]:
    thread = threading.Thread(target=load.run, daemon=True, name="demo-load")
    thread.start()
    try:
        yield load
    finally:
        load.stop.set()
        thread.join(15)


@contextmanager
def replica_with_watch(services: Services, *, env: str, cache_dir: Path,
                       options: WatchOptions) -> Iterator[str]:
    """A serving replica with the watch inside, on a free loopback port; yields its URL."""
    ports = services.ports
    app = create_serving_app(
        env=env, uow_factory=ports.uow, replica_id="demo-replica",
        loader=ArtifactLoader(store=ports.store, formats=ports.formats, cache_dir=cache_dir),
        signal=PollingSignal(ports.uow, env, interval_s=0.05), clock=ports.clock,
        options=ServingOptions(reconciler=ReconcilerOptions(heartbeat_s=1.0)))
    attach_watch(app, services, options)
    sock = bind_socket("127.0.0.1", 0, reuse_port=False)
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="on", ws="none"))
    # As `lastgood serve` does: the watch and the rollback's archive share the GIL with the
    # event loop; a short switch interval keeps requests prompt while they work.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(ServingOptions().gil_switch_interval_s or previous)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                              daemon=True, name="demo-replica")
    thread.start()
    try:
        wait_until(lambda: server.started, timeout_s=30)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()
        sys.setswitchinterval(previous)


def write_policy(folder: Path, *, model: str, env: str, bake_s: float) -> Path:
    path = folder / "policy.yaml"
    path.write_text(POLICY.format(path=path, model=model, env=env, bake=f"{bake_s:g}"),
                    encoding="utf-8")
    return path


def status_line(load: Load) -> str:
    served = ", ".join(f"v{v}: {n}" for v, n in sorted(load.answered.items()))
    failed = ", ".join(f"{why}: {n}" for why, n in load.failures.most_common()) or "none"
    return f"{sum(load.answered.values())} requests answered ({served}); failed: {failed}"


def run_auto_rollback(services: Services, *, model: str, env: str, bad: int, home: Path,
                      actor: str, say: Callable[[str], None], rps: float = 25.0,
                      bake_s: float = 8.0, timeout_s: float = 120.0,
                      load_type: type[Load] = Load) -> Timeline:
    """Serve with the watch (`replica_with_watch`), verify the live version, deploy `bad`, wait
    for the rollback.

    `load_type` sends the traffic (a subclass may speak another protocol than the native one).
    """
    policy = write_policy(home, model=model, env=env, bake_s=bake_s)
    options = WatchOptions(env=env, policy_file=policy, interval_s=1.0, verify_wait_s=30.0)
    with replica_with_watch(services, env=env, cache_dir=home / "cache", options=options) as url:
        if not wait_until(lambda: _ready(url), timeout_s=timeout_s):
            raise PreconditionFailed("the replica did not get ready", fix=f"GET {url}/readyz")
        with steady_load(load_type(url, model, wine_samples(), rps=rps)) as load:
            return _story(services, model=model, env=env, bad=bad, url=url, actor=actor,
                          say=say, load=load, policy=policy, bake_s=bake_s,
                          timeout_s=timeout_s)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _story(services: Services, *, model: str, env: str, bad: int, url: str, actor: str,
           say: Callable[[str], None], load: Load, policy: Path, bake_s: float,
           timeout_s: float) -> Timeline:
    say(f"serving {model} at {url}, the watch inside (policy {policy.name}, bake "
        f"{bake_s:g} s); load: {load.rps:g} requests/s with feedback labels")
    if not wait_until(lambda: live_verified(services, model, env), timeout_s=timeout_s):
        raise PreconditionFailed("the watch did not verify the live version in time",
                                 fix=f"read `lastgood events --model {model}`")
    with services.ports.uow() as uow:
        live = uow.deployments.live(model, env)
    assert live is not None
    measured = headline(recorded_baseline(live) or Summary())
    say(f"the watch verified v{live.version} with its measured baseline: "
        + ", ".join(f"{k} {v:.3g}" for k, v in measured.items()))
    after_seq = max((e.seq for e in services.registry.events(model=model, env=env)), default=0)
    started = services.ports.clock.now()
    services.deployments.deploy(model, bad, env=env, reason=f"release v{bad}", actor=actor)
    say(f"deployed v{bad}: preflight passed, it serves now")
    # The watch writes its decision once the rollback it asked for has returned: wait for both.
    done = wait_until(lambda: rollback_finished(services, model, env, started)
                      and decision_recorded(services, model, env, after_seq),
                      timeout_s=timeout_s)
    say(status_line(load) + ("" if done else "; no rollback finished in time"))
    return read_timeline(services, model, env, deployed_version=bad, after_seq=after_seq)
