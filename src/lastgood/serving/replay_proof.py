"""Replay on every warm standby: answer the reservoir of recent live requests, compare, report.

On the readiness schedule (the reconciler calls `replay` right after each readiness proof), each
warm standby answers the requests its model's reservoir holds, in a thread of its own (never on
the event loop), with the runner every replay shares (`serving.replay.replay_requests`) under a
CPU budget: after every chunk of requests the thread rests long enough that its CPU time stays
under `budget` of one core (default 0.05). The replay shares the
replica's interpreter (the GIL) with the event loop, so while it runs live requests lose at
most about that share; at the default schedule (one replay a minute) far less on average
(benchmarks/replay.py measures both). A request the standby cannot answer (its
input check refuses it, or predict raises) is a failure, the first one kept as the example; the
others are compared with the live version's answers (`domain.replay`). The proofs go out in
the replica's reports beside the readiness evidence.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lastgood.domain.replay import OutputAgreement, ReplayProof, ReplayState
from lastgood.domain.versions import Version
from lastgood.ports import Clock, Predictor
from lastgood.serving.loading import LoadTimeout, run_off_loop
from lastgood.serving.replay import Outcome, ReplayBudget, Replayed, replay_requests
from lastgood.serving.reservoir import Kept, Reservoirs
from lastgood.serving.slots import Slot, SlotState, SlotTable

__all__ = ["ReplayCollector", "ReplayOptions", "ReplayProver", "compare_answers"]

log = logging.getLogger(__name__)

SCORE_EQUAL = 1e-6  # two scores closer than this count as agreeing


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """The CPU a replay may take, how many requests go to the model per call, and how long."""

    budget: float = 0.05  # share of one core the replay may use (serving.replay.ReplayBudget)
    burst_s: float = 0.0  # of replaying at once before the share applies
    chunk: int = 64  # requests per predict call (one at a time again when a chunk fails)
    timeout_s: float = 300.0  # requests still left then are not replayed (nor counted)


@dataclass(slots=True)
class _Run:
    """What the replay found for one standby."""

    replayed: int = 0
    failed: int = 0
    example: str = ""
    error: str = ""
    answers: list[tuple[Any, Any]] = field(default_factory=list)  # (standby, live) per record
    cpu_s: float = 0.0
    failing: list[dict[str, Any]] = field(default_factory=list)  # the first raw ones, kept here


KEEP_FAILING = 20  # raw failing requests a standby's replay keeps in the replica's memory


def _example(records: Sequence[Mapping[str, Any]], error: str) -> str:
    """The failing request, shortened: the field the error names, else the first record."""
    first = records[0] if records else {}
    named = [f"{k}={v!r}" for k, v in first.items() if isinstance(v, str | int | float)
             and len(str(v)) >= 2 and str(v) in error]
    shown = ", ".join(named) or ", ".join(f"{k}={v!r}" for k, v in list(first.items())[:4])
    return shown[:160]


def _fail(run: _Run, kept: Kept, error: str) -> None:
    run.failed += 1
    if len(run.failing) < KEEP_FAILING:
        run.failing.append({"records": [dict(r) for r in kept.records],
                            "live_answer": kept.predictions, "error": error[:240]})
    if not run.example:
        run.error = error[:240]
        run.example = _example(kept.records, run.error)


def _judge(kept: Sequence[Kept], outcomes: Sequence[Replayed], cpu_s: float) -> _Run:
    """What the standby's outcomes say: failures (the first kept as the example) and the
    (standby, live) answers of every record it answered."""
    run = _Run(cpu_s=cpu_s)
    for entry, done in zip(kept, outcomes, strict=True):
        if done.outcome is Outcome.SKIPPED:
            continue
        run.replayed += 1
        if done.outcome is not Outcome.ANSWERED:
            _fail(run, entry, done.error)
        elif not isinstance(done.predictions, list) \
                or len(done.predictions) != len(entry.records):
            got = len(done.predictions) if isinstance(done.predictions, list) else 1
            _fail(run, entry, f"ValueError: {len(entry.records)} records gave {got} "
                              "predictions")
        else:
            run.answers.extend(zip(done.predictions, entry.predictions, strict=True))
    return run


def _run_records(predictor: Predictor, version: Version, kept: Sequence[Kept],
                 options: ReplayOptions, budget: ReplayBudget) -> _Run:
    """Answer `kept` on `predictor` with the shared runner (`serving.replay`), in this thread,
    under `budget`; time.thread_time() is this thread's CPU time only, so it is what the
    replay spent, not what the live requests spent meanwhile."""
    start = time.thread_time()
    outcomes = replay_requests(predictor, version,
                               [(str(i), k.records) for i, k in enumerate(kept)],
                               budget=budget, chunk=options.chunk)
    return _judge(kept, outcomes, time.thread_time() - start)


def _leaves(standby: Any, live: Any, name: str) -> list[tuple[str, Any, Any]]:
    if isinstance(live, Mapping) and isinstance(standby, Mapping):
        return [(f"{k}", standby.get(k), v) for k, v in live.items()]
    return [(name, standby, live)]


def _diff(standby: Any, live: Any) -> float | None:
    """|standby - live| for numbers or equal-length lists of numbers; None otherwise."""
    if isinstance(live, list) and isinstance(standby, list) and len(live) == len(standby):
        parts = [_diff(s, v) for s, v in zip(standby, live, strict=True)]
        return max((p for p in parts if p is not None), default=None) \
            if all(p is not None for p in parts) else None
    numbers = (int, float)
    if isinstance(live, numbers) and isinstance(standby, numbers) \
            and not isinstance(live, bool) and not isinstance(standby, bool):
        return abs(float(standby) - float(live))
    return None


def _is_score(live: Any) -> bool:
    if isinstance(live, list):
        return bool(live) and all(isinstance(v, float) for v in live)
    return isinstance(live, float)


def compare_answers(pairs: Sequence[tuple[Any, Any]]) -> tuple[OutputAgreement, ...]:
    """Agreement per output of (standby, live) answers: labels by equality, scores by the
    distribution of absolute differences (a dict answer is one output per key)."""
    labels: dict[str, list[int]] = {}
    scores: dict[str, list[float]] = {}
    for standby, live in pairs:
        for name, got, want in _leaves(standby, live, "prediction"):
            diff = _diff(got, want) if _is_score(want) else None
            if diff is not None:
                scores.setdefault(name, []).append(diff)
            else:
                labels.setdefault(name, []).append(int(got == want))
    out = [OutputAgreement(n, "label", len(v), sum(v)) for n, v in sorted(labels.items())]
    for name, diffs in sorted(scores.items()):
        diffs.sort()
        out.append(OutputAgreement(name, "score", len(diffs),
                                   sum(d <= SCORE_EQUAL for d in diffs),
                                   diffs[len(diffs) // 2], diffs[int(0.9 * (len(diffs) - 1))],
                                   diffs[-1]))
    return tuple(out)


class ReplayProver:
    """Keeps the last replay proof of every standby slot of one replica."""

    def __init__(self, *, clock: Clock, reservoirs: Reservoirs,
                 options: ReplayOptions = ReplayOptions()) -> None:
        self._clock, self.reservoirs, self.options = clock, reservoirs, options
        # One budget for every replay of this replica, remembered across them.
        self.budget = ReplayBudget(share=options.budget, burst_s=options.burst_s,
                                   max_seconds=options.timeout_s)
        self._proofs: dict[tuple[str, int], tuple[Slot, ReplayProof]] = {}
        self._failing: dict[tuple[str, int], list[dict[str, Any]]] = {}

    async def replay(self, tables: Mapping[str, SlotTable]) -> int:
        """Replay every model's reservoir on each of its warm standbys; proofs taken."""
        self.reservoirs.forget(set(tables))
        held = [(m, t, s) for m, t in tables.items() for s in list(t.standby.values())
                if s.state is SlotState.WARM]
        taken = 0
        for model, table, slot in held:
            proof, failing = await self._replay(model, table, slot)
            if slot.state is SlotState.WARM:
                self._proofs[(model, slot.number)] = (slot, proof)
                self._failing[(model, slot.number)] = failing
                taken += 1
        wanted = {(m, s.number) for m, _, s in held}
        for key in [k for k in self._proofs if k not in wanted]:
            del self._proofs[key]
            self._failing.pop(key, None)
        return taken

    def failing_requests(self, table: SlotTable, shadow: Iterable[int]) -> list[dict[str, Any]]:
        """The raw failing requests of `table`'s standbys that are a deploy's shadow (each
        with its version), for the forensic archive of the deploy if it is refused; none when
        the reservoir's `archive` is off. Every other standby's stay in this replica."""
        if not self.reservoirs.options.archive:
            return []
        wanted = set(shadow)
        return [{"version": slot.number, **failure}
                for slot in table.standby.values() if slot.number in wanted
                for failure in self._failing.get((table.model, slot.number), ())]

    def proofs(self, table: SlotTable) -> list[ReplayProof]:
        """The last proof of each of `table`'s current standbys."""
        out = []
        for slot in table.standby.values():
            found = self._proofs.get((table.model, slot.number))
            if found is not None and found[0] is slot:
                out.append(found[1])
        return out

    def _base(self, table: SlotTable, slot: Slot, state: ReplayState) -> ReplayProof:
        reservoir = self.reservoirs.of(table.model)
        return ReplayProof(version=slot.number,
                           live_version=table.live.number if table.live else None, state=state,
                           window_s=self.reservoirs.options.window_s,
                           skipped=reservoir.skipped if reservoir else 0, at=self._clock.now())

    async def _replay(self, model: str, table: SlotTable,
                      slot: Slot) -> tuple[ReplayProof, list[dict[str, Any]]]:
        if self.reservoirs.off:
            return self._base(table, slot, ReplayState.OFF), []
        reservoir, now = self.reservoirs.of(model), time.monotonic()
        live = table.live.number if table.live else None
        # Only the current live version's answers: after a switch, older answers compare the
        # standby with a version that no longer serves.
        kept = [k for k in (reservoir.entries(now) if reservoir else []) if k.version == live]
        predictor = slot.predictor
        if not kept or predictor is None:
            return self._base(table, slot, ReplayState.NO_DATA), []
        start = time.perf_counter()
        slot.enter()  # a switch or a trim cannot close it while it answers
        try:
            run = await run_off_loop(
                lambda: _run_records(predictor, slot.version, kept, self.options, self.budget),
                timeout_s=self.options.timeout_s * 2,  # the runner stops itself at timeout_s
                name=f"lastgood-replay-{model}-{slot.number}")
        except LoadTimeout as exc:
            run = _Run(replayed=len(kept), failed=len(kept), example="(every request)",
                       error=f"the replay {exc}")
        finally:
            slot.leave()
        base = self._base(table, slot, ReplayState.REPLAYED)
        return ReplayProof(
            version=base.version, live_version=base.live_version, state=base.state,
            replayed=run.replayed, failed=run.failed, example=run.example, error=run.error,
            outputs=compare_answers(run.answers), oldest_s=now - kept[0].at,
            window_s=base.window_s, skipped=base.skipped,
            duration_ms=(time.perf_counter() - start) * 1000, cpu_ms=run.cpu_s * 1000,
            at=base.at), run.failing


class ReplayCollector(Collector):
    """`lastgood_replay_failures`, `lastgood_replay_agreement`, `lastgood_replay_requests`
    per standby; `lastgood_replay_reservoir_requests` and `lastgood_replay_skipped_requests`
    per model; read at scrape time."""

    def __init__(self, *, env: str, tables: Mapping[str, SlotTable], prover: ReplayProver) -> None:
        self._env, self._tables, self._prover = env, tables, prover

    def collect(self) -> Any:
        labels = ("model", "env", "version")
        failures = GaugeMetricFamily("lastgood_replay_failures", "Recent live requests the warm "
                                     "standby could not answer at its last replay", labels=labels)
        agreement = GaugeMetricFamily("lastgood_replay_agreement", "Share of the standby's "
                                      "answers equal to the live version's", labels=labels)
        replayed = GaugeMetricFamily("lastgood_replay_requests", "Requests replayed on the "
                                     "standby at its last replay", labels=labels)
        kept = GaugeMetricFamily("lastgood_replay_reservoir_requests", "Recent live requests "
                                 "held for replay", labels=("model", "env"))
        skipped = GaugeMetricFamily("lastgood_replay_skipped_requests", "Live requests too "
                                    "large to keep for replay, since start",
                                    labels=("model", "env"))
        for model, table in list(self._tables.items()):
            reservoir = self._prover.reservoirs.of(model)
            kept.add_metric((model, self._env), float(reservoir.kept if reservoir else 0))
            skipped.add_metric((model, self._env), float(reservoir.skipped if reservoir else 0))
            for proof in self._prover.proofs(table):
                key = (model, self._env, str(proof.version))
                replayed.add_metric(key, float(proof.replayed))
                if proof.state is ReplayState.REPLAYED:
                    failures.add_metric(key, float(proof.failed))
                if proof.agreement is not None:
                    agreement.add_metric(key, proof.agreement)
        yield from (failures, agreement, replayed, kept, skipped)
