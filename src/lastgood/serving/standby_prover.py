"""Rollback readiness on one replica: re-prove every warm standby on the slot already in memory.

On a schedule (`interval_s`, default 60 s) and whenever the set of standby slots changes (a
deploy, a switch, a restart), the prover replays each standby version's golden examples on its
predictor, off the event loop, and keeps the last proof per slot. The reconciler puts the proofs
in its reports (`ReplicaReport.evidence`). Proving needs no registry: when the registry is down
the proofs still run and go out with the first report that gets through (safety rule 8).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lastgood.domain.compatibility import normal_name
from lastgood.domain.readiness_evidence import (
    ReadinessEvidence,
    ReadinessVerdict,
    ReplicaEvidence,
    StandbyProof,
    judge_readiness,
    package_fingerprint,
)
from lastgood.domain.versions import Version
from lastgood.ports import Clock, Predictor
from lastgood.serving.loading import LoadTimeout, golden_mismatches, run_off_loop
from lastgood.serving.slots import Slot, SlotState, SlotTable

__all__ = ["ReadinessCollector", "ReadinessOptions", "StandbyProver", "host_fingerprint"]

log = logging.getLogger(__name__)


@cache
def host_fingerprint() -> str:
    """This process's package fingerprint, computed once, from `importlib.metadata` (slow: it
    parses every METADATA file; `lastgood serve` passes the host adapter's faster one)."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:  # the first on sys.path wins, as in import
            found.setdefault(normal_name(name), dist.version)
    return package_fingerprint(found)


@dataclass(frozen=True, slots=True)
class ReadinessOptions:
    """How often standbys are re-proven, and how long one replay may take."""

    interval_s: float = 60.0
    timeout_s: float = 30.0
    fingerprint: Callable[[], str] = host_fingerprint


class StandbyProver:
    """Keeps the last proof of every standby slot of one replica."""

    def __init__(self, *, clock: Clock, options: ReadinessOptions = ReadinessOptions()) -> None:
        self._clock, self.options = clock, options
        self._proofs: dict[tuple[str, int], tuple[Slot, StandbyProof]] = {}
        self._packages = ""  # the fingerprint, once computed off the loop by the first proof

    def now(self) -> datetime:
        return self._clock.now()

    def unproven(self, tables: Mapping[str, SlotTable]) -> bool:
        """Whether some standby slot (with golden examples) has no proof of its own yet."""
        return any(self._held(model, slot) is None for model, slot in _standbys(tables))

    async def prove(self, tables: Mapping[str, SlotTable]) -> int:
        """Replay every standby's golden examples once; the number of proofs taken."""
        taken = 0
        held = list(_standbys(tables))
        # Off the loop: the first computation lists every installed distribution.
        self._packages = await asyncio.to_thread(self.options.fingerprint)
        for model, slot in held:
            proof = await self._prove(slot)
            if proof is not None and slot.state is SlotState.WARM:
                self._proofs[(model, slot.number)] = (slot, proof)
                taken += 1
        wanted = {(m, s.number) for m, s in held}
        for key in [k for k in self._proofs if k not in wanted]:
            del self._proofs[key]  # retired or gone live: no longer a way back
        return taken

    def evidence(self, table: SlotTable) -> ReadinessEvidence:
        """The evidence of `table`'s current standbys, for its report."""
        proofs = tuple(held for slot in table.standby.values()
                       if (held := self._held(table.model, slot)) is not None)
        return ReadinessEvidence(packages=self._packages,
                                 interval_s=self.options.interval_s, standbys=proofs)

    def verdict(self, table: SlotTable, *, replica_id: str) -> ReadinessVerdict | None:
        """This replica's judgement of its preferred way back (the first standby)."""
        first = next(iter(table.standby.values()), None)
        if first is None:
            return None
        return judge_readiness(version=first.number, digest=first.version.digest,
                               replicas=[ReplicaEvidence(replica_id, self.evidence(table))],
                               now=self._clock.now())

    def _held(self, model: str, slot: Slot) -> StandbyProof | None:
        found = self._proofs.get((model, slot.number))
        return found[1] if found is not None and found[0] is slot else None

    async def _prove(self, slot: Slot) -> StandbyProof | None:
        predictor, version = slot.predictor, slot.version
        if predictor is None or slot.state is not SlotState.WARM:
            return None
        packages, start = self._packages, time.perf_counter()
        try:
            problems = await run_off_loop(lambda: _replay(predictor, version),
                                          timeout_s=self.options.timeout_s,
                                          name=f"lastgood-ready-{version.model}-{version.number}")
        except LoadTimeout as exc:
            problems = [f"the replay {exc}"]
        total = len(version.golden)
        return StandbyProof(version=version.number, digest=version.digest, packages=packages,
                            reproduced=_reproduced(total, problems), total=total,
                            duration_ms=(time.perf_counter() - start) * 1000,
                            at=self._clock.now(), problems=tuple(p[:300] for p in problems[:5]))


class ReadinessCollector(Collector):
    """`lastgood_rollback_ready{model,env}` (1/0) and the proof's age, read at scrape time."""

    def __init__(self, *, env: str, replica_id: str, tables: Mapping[str, SlotTable],
                 prover: StandbyProver) -> None:
        self._env, self._replica, self._tables, self._prover = env, replica_id, tables, prover

    def collect(self) -> Any:
        ready = GaugeMetricFamily("lastgood_rollback_ready", "1 when the first warm standby "
                                  "reproduced its golden examples within two intervals",
                                  labels=("model", "env", "version"))
        age = GaugeMetricFamily("lastgood_rollback_evidence_age_seconds",
                                "Age of the first standby's last readiness proof",
                                labels=("model", "env", "version"))
        for model, table in list(self._tables.items()):
            verdict = self._prover.verdict(table, replica_id=self._replica)
            labels = (model, self._env, str(verdict.version if verdict else ""))
            ready.add_metric(labels, 1.0 if verdict is not None and verdict.ready else 0.0)
            first = next(iter(table.standby.values()), None)
            proof = self._prover.evidence(table).proof(first.number) if first else None
            if proof is not None:
                age.add_metric(labels, max((self._prover.now() - proof.at).total_seconds(), 0))
        yield ready
        yield age


def _standbys(tables: Mapping[str, SlotTable]) -> list[tuple[str, Slot]]:
    return [(model, slot) for model, table in tables.items() for slot in table.standby.values()
            if slot.state is SlotState.WARM and slot.version.golden]


def _replay(predictor: Predictor, version: Version) -> list[str]:
    try:
        return golden_mismatches(predictor, version.golden, version.schema.params)
    except Exception as exc:  # a standby that raises reproduces nothing
        return [f"predict raised {type(exc).__name__}: {exc}"]


def _reproduced(total: int, problems: list[str]) -> int:
    """Examples reproduced: those no problem names (a problem per output that differs)."""
    named = [re.match(r"golden example (\d+)", p) for p in problems]
    if not all(named):
        return 0
    return max(total - len({m.group(1) for m in named if m}), 0)
