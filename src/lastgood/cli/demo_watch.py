"""The demo's second act: a bad deploy under load, detected, rolled back and verified by the watch.

A serving replica runs in this process on a free loopback port with the watch inside it (what
`lastgood serve --watch` does), reading its own counters; the composition root builds it
(`lastgood.bootstrap.demo`) and this module tells the story over it. A load generator sends wine
samples at a steady rate and, for each answer, the true label as feedback (a demo shortcut: real
labels come late and sparse). The watch records the live version's baseline and verifies it;
then v4, built by a training job with a label-mapping bug, is deployed: it passes preflight (its
golden examples are its own answers), and only live accuracy shows the damage. The watch rolls
back to the last verified version and the rollback verifies it against its own pre-failure
baseline. The timeline is read back from the audit trail.
"""

from __future__ import annotations

import itertools
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from lastgood.cli.app import CliContext
from lastgood.cli.render import table
from lastgood.domain.audit import Event
from lastgood.domain.baselines import headline
from lastgood.domain.errors import PreconditionFailed
from lastgood.domain.measurements import Summary
from lastgood.domain.operations import OperationKind
from lastgood.domain.versions import Column, GoldenExample, Schema
from lastgood.domain.watching import recorded_baseline
from lastgood.services.container import Services
from lastgood.services.registry import RegisterRequest
from lastgood.services.watch_setup import WatchOptions

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


class Replica(Protocol):
    """Runs a serving replica with the watch inside while open; yields its URL."""

    def __call__(self, services: Services, *, env: str, cache_dir: Path,
                 options: WatchOptions) -> AbstractContextManager[str]: ...


@dataclass(frozen=True, slots=True)
class Sample:
    """One request the load generator sends, with the label it reports as feedback."""

    record: dict[str, float]
    label: int


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


@dataclass(frozen=True, slots=True)
class Timeline:
    """When each step of the automatic rollback happened (UTC), read from the audit trail."""

    deployed: datetime
    first_seen: datetime | None  # the watch read the bad version's first answers
    first_evidence: datetime | None
    decision: datetime | None
    switched: datetime | None
    verified: datetime | None
    outcome: str
    evidence: str  # the decision's one line
    first: str  # what the first evidence was
    verification: str

    def rows(self) -> list[tuple[str, str]]:
        def at(value: datetime | None) -> str:
            return "—" if value is None else f"+{(value - self.deployed).total_seconds():5.1f} s"

        return [("deploy (bad version live)", at(self.deployed)),
                ("first answers of it read by the watch", at(self.first_seen)),
                ("first evidence", at(self.first_evidence)),
                ("decision: roll back", at(self.decision)),
                ("switch (last verified version live)", at(self.switched)),
                ("verified against its own baseline", at(self.verified))]

    @property
    def total_s(self) -> float | None:
        end = self.verified
        return None if end is None else (end - self.deployed).total_seconds()


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


def live_verified(services: Services, model: str, env: str) -> bool:
    """The live deployment carries a verified record with a measured distribution."""
    with services.ports.uow() as uow:
        live = uow.deployments.live(model, env)
    return live is not None and live.verified is not None and bool(live.verified.distribution)


def rollback_finished(services: Services, model: str, env: str, after: datetime) -> bool:
    ops = services.deployments.operations(model=model, env=env, limit=5)
    return any(op.kind is OperationKind.ROLLBACK and op.created_at >= after
               and op.phase.is_terminal for op in ops)


def decision_recorded(services: Services, model: str, env: str, after_seq: int) -> bool:
    """The watch has written a decision after `after_seq`."""
    return any(e.action == "watch.decision"
               for e in services.registry.events(model=model, env=env, after_seq=after_seq))


def read_timeline(services: Services, model: str, env: str, *, deployed_version: int,
                  after_seq: int) -> Timeline:
    """The steps of the automatic rollback, from the audit events written after `after_seq`."""
    events = services.registry.events(model=model, env=env, after_seq=after_seq)
    switches = [e for e in events if e.action == "deployment.switched"]
    deployed = next(e for e in switches if (e.draft.after or {}).get("version") ==
                    deployed_version)
    decision = next((e for e in events if e.action == "watch.decision"
                     and str((e.draft.evidence or {}).get("action", "")).startswith("roll")),
                    None)
    evidence = dict(decision.draft.evidence) if decision else {}
    back = next((e for e in switches if e.seq > deployed.seq
                 and (e.draft.after or {}).get("version") != deployed_version), None)
    done = _verification(events, back)
    seen, first = evidence.get("first_seen_at"), evidence.get("first_evidence_at")
    decided = evidence.get("decided_at")
    return Timeline(
        deployed=deployed.at, first_seen=datetime.fromisoformat(seen) if seen else None,
        first_evidence=datetime.fromisoformat(first) if first else None,
        decision=datetime.fromisoformat(decided) if decided else None,
        switched=back.at if back else None,
        verified=done.at if done and done.action == "operation.succeeded" else None,
        outcome=done.action.removeprefix("operation.") if done else "no rollback",
        evidence=decision.draft.reason if decision else "",
        first=str(evidence.get("first_evidence") or ""),
        verification=str((done.draft.evidence or {}).get("summary", "")) if done else "")


def _verification(events: Sequence[Event], switch: Event | None) -> Event | None:
    if switch is None:
        return None
    op = (switch.draft.evidence or {}).get("operation")
    return next((e for e in events if e.seq > switch.seq and e.action in (
        "operation.succeeded", "operation.escalated")
        and (e.draft.evidence or {}).get("operation") == op), None)


def wine_samples() -> list[Sample]:
    """The held-out wine rows (the same split the demo trains on) with their true labels."""
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    data = load_wine()
    names = [str(n).replace("/", "_") for n in data.feature_names]
    _, x_test, _, y_test = train_test_split(data.data, data.target, test_size=0.3,
                                            random_state=7, stratify=data.target)
    return [Sample(dict(zip(names, map(float, row), strict=True)), int(label))
            for row, label in zip(x_test, y_test, strict=True)]


def write_policy(folder: Path, *, model: str, env: str, bake_s: float) -> Path:
    path = folder / "policy.yaml"
    path.write_text(POLICY.format(path=path, model=model, env=env, bake=f"{bake_s:g}"),
                    encoding="utf-8")
    return path


def status_line(load: Load) -> str:
    served = ", ".join(f"v{v}: {n}" for v, n in sorted(load.answered.items()))
    failed = ", ".join(f"{why}: {n}" for why, n in load.failures.most_common()) or "none"
    return f"{sum(load.answered.values())} requests answered ({served}); failed: {failed}"


def as_dict(timeline: Timeline) -> dict[str, Any]:
    return {"steps": timeline.rows(), "total_s": timeline.total_s,
            "outcome": timeline.outcome, "evidence": timeline.evidence, "first": timeline.first,
            "verification": timeline.verification}


def train_mislabelled(folder: Path) -> dict[str, Any]:
    """v4.0: the same recipe as v2.0, trained after a label-mapping bug shifted every class."""
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split
    from skops.io import dump

    data = load_wine()
    names = [str(n).replace("/", "_") for n in data.feature_names]
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=7, stratify=data.target)
    model = RandomForestClassifier(n_estimators=50, random_state=0).fit(x_train, (y_train + 1) % 3)
    path = folder / "wine-v4.0.skops"
    dump(model, path)
    golden = tuple(GoldenExample(dict(zip(names, map(float, row), strict=True)), int(pred))
                   for row, pred in zip(x_test[:5], model.predict(x_test[:5]), strict=True))
    return {"tag": "v4.0", "path": path, "golden": golden,
            "accuracy": float((model.predict(x_test) == y_test).mean()),
            "schema": Schema(inputs=tuple(Column(n, "float64") for n in names),
                             outputs=(Column("class", "int64"),))}


def run_auto_rollback(services: Services, *, replica: Replica, model: str, env: str, bad: int,
                      home: Path, actor: str, say: Callable[[str], None], rps: float = 25.0,
                      bake_s: float = 8.0, timeout_s: float = 120.0,
                      load_type: type[Load] = Load) -> Timeline:
    """Serve with the watch (in `replica`), verify the live version, deploy `bad`, wait for
    the rollback.

    `load_type` sends the traffic (a subclass may speak another protocol than the native one).
    """
    policy = write_policy(home, model=model, env=env, bake_s=bake_s)
    options = WatchOptions(env=env, policy_file=policy, interval_s=1.0, verify_wait_s=30.0)
    with replica(services, env=env, cache_dir=home / "cache", options=options) as url:
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


def second_act(cli: CliContext, plane: Any, home: Path, model: str, env: str) -> None:
    """Register v4.0 and run the automatic story, printing its timeline."""
    services = cli.world.local(plane)
    if services is None:
        raise PreconditionFailed("the demo's second act serves models in this process",
                                 fix="unset LASTGOOD_URL")
    with tempfile.TemporaryDirectory() as tmp:
        item = train_mislabelled(Path(tmp))
        bad = services.registry.register(RegisterRequest(
            model=model, path=item["path"], tag=item["tag"],
            metrics={"accuracy": round(item["accuracy"], 4)}, schema=item["schema"],
            golden=item["golden"], provenance={"dataset": "sklearn.datasets.load_wine",
                                               "trainer": "lastgood demo (label bug)"}),
            actor=cli.actor)
    cli.out.print(f"registered v{bad.number} ({bad.tag}): trained after a label-mapping bug; "
                  "its golden examples are its own answers, so preflight cannot tell")
    timeline = run_auto_rollback(services, replica=cli.world.demo_replica, model=model,
                                 env=env, bad=bad.number, home=home, actor=cli.actor,
                                 say=cli.out.print)
    cli.out.print(table("Timeline of the automatic rollback", ["step", "at"],
                        timeline.rows()))
    cli.out.print(f"first evidence: {timeline.first or '—'}")
    cli.out.print(f"decision: {timeline.evidence}")
    cli.out.print(f"verification: {timeline.verification or timeline.outcome}")
    total = timeline.total_s
    cli.out.print(f"bad deploy to verified rollback: "
                  f"{'—' if total is None else f'{total:.1f} s'} (target <= 60 s)")
