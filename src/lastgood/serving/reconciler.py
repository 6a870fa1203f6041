"""The reconciler: one replica following the registry, level-triggered (safety rules 2 and 8).

At start, on a change signal, and every `resync_s` it re-reads the whole desired state of its
environment and converges: switch live to the desired version as soon as a warm slot of it
exists, load what is missing in the background (off the loop, under a timeout), keep the wanted
standby versions warm and retire the others. It reports what it actually serves after every
switch and every `heartbeat_s`, with the readiness evidence of its standbys (re-proven every
`readiness.interval_s` and whenever the standby set changes, by a task of its own so a proof
never delays a switch) and, beside it, the replay of its recent live requests on each standby
(`serving.replay_proof`, on the same schedule). An unreachable registry never touches the
slots: the replica keeps serving and retries with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lastgood.domain.deployments import ReplicaReport, ReplicaState
from lastgood.domain.errors import Conflict
from lastgood.domain.history import COMPACT_LEASE
from lastgood.domain.readiness_evidence import evidence_to_json
from lastgood.domain.replay import REPLAY_ARCHIVE, proof_to_json
from lastgood.domain.versions import Version
from lastgood.ports import ChangeSignal, Clock, UnitOfWorkFactory
from lastgood.services.desired import DesiredModel, DesiredState, load_desired, load_live
from lastgood.serving.history import HistoryOptions, HistoryRecorder, Pending
from lastgood.serving.loading import Loader, LoadOptions, prepare_slot
from lastgood.serving.replay_proof import ReplayOptions, ReplayProver
from lastgood.serving.slots import Slot, SlotState, SlotTable, StandbyLimits
from lastgood.serving.standby_prover import ReadinessOptions, StandbyProver
from lastgood.serving.state import ServingState

__all__ = ["Reconciler", "ReconcilerOptions"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReconcilerOptions:
    """Timing and capacity of one replica's reconciliation."""

    standby: StandbyLimits = field(default_factory=StandbyLimits)
    load: LoadOptions = field(default_factory=LoadOptions)
    readiness: ReadinessOptions = field(default_factory=ReadinessOptions)
    replay: ReplayOptions = field(default_factory=ReplayOptions)
    resync_s: float = 30.0  # full re-read even without any signal
    heartbeat_s: float = 5.0  # report actual state at least this often
    backoff_initial_s: float = 0.5  # first retry after an unreachable registry
    backoff_max_s: float = 30.0
    retry_failed_s: float = 60.0  # a refused version is not loaded again before this
    history: HistoryOptions = field(default_factory=HistoryOptions)  # metric history writes


class Reconciler:
    """Drives a ServingState toward the registry's desired state for one environment."""

    def __init__(self, *, env: str, uow_factory: UnitOfWorkFactory, loader: Loader, clock: Clock,
                 replica_id: str, state: ServingState, signal: ChangeSignal,
                 options: ReconcilerOptions = ReconcilerOptions(), url: str = "") -> None:
        self.env, self.replica_id, self.state = env, replica_id, state
        self.url = url  # where this replica answers; in every report, so watches find it
        self._uow_factory, self._loader, self._clock = uow_factory, loader, clock
        self._signal, self.options = signal, options
        self._generation: int | None = None
        self._wake = asyncio.Event()
        self._passed = asyncio.Event()  # set after each pass: the pump waits for it
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._gone: set[str] = set()  # undeployed models still to report once
        # One report write at a time, so the final "stopped" can never be overwritten by a
        # report that was already on its way when stop() was called.
        self._reporting = asyncio.Lock()
        self.prover = StandbyProver(clock=clock, options=options.readiness)
        self.replayer = ReplayProver(clock=clock, reservoirs=state.reservoirs,
                                     options=options.replay)
        self._prove_now = asyncio.Event()
        self.history = HistoryRecorder(env=env, replica_id=replica_id, options=options.history)

    # -- one pass ------------------------------------------------------------------------

    async def reconcile(self) -> bool:
        """Read the desired state and converge once; False when the registry was unreachable.

        A rollback to a warm standby should not wait for the whole desired state to be read:
        a first small read of each model's live version switches at once when that version is
        already warm; the full read follows and settles everything else.
        """
        await self._fast_switch()
        try:
            desired = await asyncio.to_thread(load_desired, self._uow_factory, self.env,
                                              standby=self.options.standby.count)
        except Exception as exc:  # any registry failure: keep every slot as it is (rule 8)
            self.state.sync_error = f"{type(exc).__name__}: {exc}"
            log.warning("reading the desired state of %s failed; still serving: %s",
                        self.env, exc)
            return False
        self.apply(desired)
        return True

    async def _fast_switch(self) -> None:
        held = [m for m, t in self.state.tables.items() if t.standby]
        if not held:
            return
        try:
            lives = await asyncio.to_thread(load_live, self._uow_factory, self.env, held)
        except Exception:  # the full read right after reports and retries
            return
        for model, number in lives.items():
            table = self.state.tables.get(model)
            if table is None or number is None or (table.live and table.live.number == number):
                continue
            ready = table.standby.get(number)
            if ready is not None and ready.state is SlotState.WARM:
                old = table.switch(ready, at=self._clock.now())
                if old is not None:  # parked; the full pass right after trims standby
                    table.standby[old.number] = old

    def apply(self, desired: DesiredState) -> None:
        """Converge the slot tables toward `desired` without awaiting (loads start detached)."""
        self.state.deployed = frozenset(m.model for m in desired.models)
        self.state.synced_at, self.state.sync_error = self._clock.now(), ""
        self.state.desired = {m.model: m.live.number for m in desired.models}
        self.state.shadow = {m.model: frozenset(v.number for v in m.shadow)
                             for m in desired.models if m.shadow}
        for model in [m for m in self.state.tables if m not in self.state.deployed]:
            self.state.tables.pop(model).retire_all()
            self._gone.add(model)
        for wanted in desired.models:
            self._converge(self.state.table(wanted.model), wanted)
        self._generation = desired.generation

    def _converge(self, table: SlotTable, wanted: DesiredModel) -> None:
        replaced: list[Slot] = []
        if table.live is None or table.live.number != wanted.live.number:
            ready = table.warm(wanted.live.number)
            if ready is not None:
                old = table.switch(ready, at=self._clock.now())
                replaced = [old] if old is not None else []
                log.info("%s now serves %s", self.replica_id, wanted.live.ref)
            else:
                # Until the desired version is live, keep every standby slot: if it never
                # loads, the versions that are warm now are still the way back.
                self._ensure_loading(table, wanted.live)
                return
        standby = self.options.standby.fit(wanted.standby)
        # A deploy's shadow is warmed beside the standbys, beyond their count: the deploy
        # waits for its replay, then switches to it without loading anything.
        standby += [v for v in wanted.shadow if v.number not in {s.number for s in standby}]
        table.keep_standby([v.number for v in standby], offered=replaced)
        for version in standby:  # only once live is settled: it has the CPU first
            if table.warm(version.number) is None:
                self._ensure_loading(table, version)

    def _ensure_loading(self, table: SlotTable, version: Version) -> None:
        if version.number in table.loading:
            return
        failed = table.failures.get(version.number)
        if failed is not None and failed.loaded_at is not None and (
                self._clock.now() - failed.loaded_at).total_seconds() < self.options.retry_failed_s:
            return
        placeholder = Slot(version)
        table.loading[version.number] = placeholder
        task = asyncio.create_task(self._load(table, version, placeholder))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _load(self, table: SlotTable, version: Version, placeholder: Slot) -> None:
        slot = await prepare_slot(version, self._loader, clock=self._clock,
                                  options=self.options.load)
        if table.loading.get(version.number) is placeholder:
            del table.loading[version.number]
        if self.state.tables.get(table.model) is not table or self._stopping:
            slot.retire()  # the model was undeployed while this loaded
        elif slot.state is SlotState.WARM:
            table.failures.pop(version.number, None)
            # Parked as standby; the next pass switches to it if it is the desired live one.
            table.standby[version.number] = slot
        else:
            log.warning("%s refused %s: %s", self.replica_id, version.ref, slot.reason)
            table.failures[version.number] = slot
        self._wake.set()

    # -- reporting -----------------------------------------------------------------------

    def reports(self) -> list[ReplicaReport]:
        """What this replica actually serves, one report per model (and one per undeployed)."""
        now = self._clock.now()
        found = [self._report(table, now) for table in self.state.tables.values()]
        found += [ReplicaReport(replica_id=self.replica_id, model=model, env=self.env,
                                version=None, since=now, seen_at=now, detail="undeployed",
                                url=self.url)
                  for model in sorted(self._gone)]
        return found

    def _report(self, table: SlotTable, now: datetime) -> ReplicaReport:
        live = table.live
        status, detail = ReplicaState.SERVING, ""
        if table.loading:
            status = ReplicaState.LOADING
            detail = "loading " + ", ".join(f"@{n}" for n in sorted(table.loading))
        if live is None and table.failures:
            status = ReplicaState.FAILED
        if table.failures:  # each named by its version: never read as the live one's
            detail = "; ".join(f"v{n} refused: {s.reason}" for n, s in table.failures.items())
        return ReplicaReport(replica_id=self.replica_id, model=table.model, env=self.env,
                             version=live.number if live else None,
                             since=table.live_since or now, seen_at=now, state=status,
                             detail=detail[:2000], url=self.url,
                             evidence=self._evidence(table))

    def _evidence(self, table: SlotTable) -> dict[str, Any]:
        """The readiness evidence of `table`'s standbys, with their replay proofs beside it."""
        evidence = evidence_to_json(self.prover.evidence(table))
        evidence["replay"] = [proof_to_json(p) for p in self.replayer.proofs(table)]
        kept = self.replayer.failing_requests(table, self.state.shadow.get(table.model, ()))
        if kept:
            evidence[REPLAY_ARCHIVE] = kept
        return evidence

    def _write_reports(self, reports: list[ReplicaReport]) -> None:
        with self._uow_factory() as uow:
            for report in reports:
                uow.replicas.report(report)
            uow.commit()

    async def report(self) -> bool:
        """Write the replica's reports; False (logged) when the registry is unreachable."""
        async with self._reporting:
            if self._stopping:  # stop() writes the last word
                return True
            reports = self.reports()
            try:
                await asyncio.to_thread(self._write_reports, reports)
            except Exception as exc:
                log.warning("reporting to the registry failed; still serving: %s", exc)
                return False
            await self.write_history()
        self._gone.clear()
        return True

    async def write_history(self, *, force: bool = False) -> bool:
        """Write the metric history points due (each bucket's counters per version), and now
        and then one bounded compaction pass; False (logged) when that failed."""
        now = self._clock.now()
        if not (force or self.history.due(now)):
            return True
        served = [(model, stats) for model in sorted(self.state.tables)
                  for stats in self.state.recorder.versions(model)]
        pending = self.history.collect(served, now=now)  # read on the loop that counts
        compact = self.history.compaction_due(self._clock.monotonic())
        try:
            await asyncio.to_thread(self._write_history, pending, compact, now)
        except Exception as exc:  # the history must never get in the way of serving (rule 8)
            log.warning("writing the metric history failed; still serving: %s", exc)
            return False
        self.history.committed(pending, now=now)
        return True

    def _write_history(self, pending: Pending, compact: bool, now: datetime) -> None:
        with self._uow_factory() as uow:
            if pending.points:
                uow.history.add(pending.points)
                uow.commit()
        if compact:
            self._compact_history(now)

    def _compact_history(self, now: datetime) -> None:
        """One bounded compaction pass, by whichever replica holds the lease this minute."""
        options = self.options.history
        with self._uow_factory() as uow:
            try:
                uow.leases.acquire(COMPACT_LEASE, holder=self.replica_id, now=now,
                                   ttl_s=2 * options.compact_every_s)
                uow.commit()
            except Conflict:
                return  # another replica compacts
            uow.history.compact(options.retention, now_s=int(now.timestamp()),
                                batch=options.compact_batch)
            uow.commit()

    # -- the loop ------------------------------------------------------------------------

    async def _pump(self) -> None:
        while not self._stopping:
            try:
                changed = await self._signal.wait(timeout_s=self.options.heartbeat_s,
                                                  generation=self._generation)
                if self._stopping:
                    return
                if changed:
                    # Wait for the pass this wakes before asking again: until it has read the
                    # new generation, the signal would keep firing and spin on the registry.
                    self._passed.clear()
                    self._wake.set()
                    await self._passed.wait()
            except Exception as exc:  # a broken signal must not stop serving: resync covers
                log.warning("change signal failed: %s", exc)
                await asyncio.sleep(self.options.backoff_initial_s)

    async def prove_readiness(self) -> int:
        """Re-prove every standby now; the number of proofs taken (logged, never raised)."""
        try:
            return await self.prover.prove(self.state.tables)
        except Exception:  # readiness must never stop serving
            log.exception("proving the standbys of %s failed", self.replica_id)
            return 0

    async def replay(self) -> int:
        """Replay the recent live requests on every standby now; proofs taken (logged, never
        raised)."""
        try:
            return await self.replayer.replay(self.state.tables)
        except Exception:  # replay must never stop serving
            log.exception("replaying recent requests on %s failed", self.replica_id)
            return 0

    async def _readiness(self) -> None:
        while not self._stopping:
            proven = await self.prove_readiness()
            if await self.replay() + proven:
                # At once, not at the next heartbeat: a proof must reach the registry well
                # within the two intervals it counts for.
                await self.report()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._prove_now.wait(),
                                       self.options.readiness.interval_s)
            self._prove_now.clear()

    async def run(self) -> None:
        """Reconcile at start, on every signal and periodically, until `stop()`."""
        pump = asyncio.create_task(self._pump())
        readiness = asyncio.create_task(self._readiness())
        backoff = self.options.backoff_initial_s
        next_pass = next_report = self._clock.monotonic()
        try:
            while not self._stopping:
                now = self._clock.monotonic()
                if now >= next_pass or self._wake.is_set():
                    self._wake.clear()
                    before, shadow_before = self._serving(), self.state.shadow
                    if await self.reconcile():
                        backoff = self.options.backoff_initial_s
                        next_pass = now + self.options.resync_s
                    else:
                        next_pass = now + backoff
                        backoff = min(backoff * 2, self.options.backoff_max_s)
                    self._passed.set()
                    if self.prover.unproven(self.state.tables) or \
                            _new_shadow(shadow_before, self.state.shadow):
                        # a new standby, a switch, a restart, or a deploy's shadow to replay
                        # now (it may be a standby already, with a proof from before)
                        self._prove_now.set()
                    if self._serving() != before:
                        next_report = now  # a switch is reported at once: operations wait on it
                if self._clock.monotonic() >= next_report:
                    await self.report()
                    next_report = self._clock.monotonic() + self.options.heartbeat_s
                timeout = min(next_pass, next_report) - self._clock.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(timeout, 0.0))
        finally:
            # Python 3.11's wait_for can swallow a cancel that races a result, so the pump is
            # also released and told to stop, not only cancelled.
            self._stopping = True
            self._passed.set()
            self._prove_now.set()
            for task in (pump, readiness):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _serving(self) -> dict[str, tuple[int | None, str]]:
        return {m: (t.live.number if t.live else None, ",".join(map(str, t.failures)))
                for m, t in self.state.tables.items()}

    async def stop(self, *, timeout_s: float = 2.0) -> None:
        """Stop following the registry, release every slot, and report that nothing is served
        any more, so an operation never waits on a replica that is gone."""
        self._stopping = True
        self._wake.set()
        await self._signal.aclose()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout_s):
                async with self._reporting:
                    await self.write_history(force=True)  # the last counts before they go
        now = self._clock.now()
        final = [ReplicaReport(replica_id=self.replica_id, model=model, env=self.env,
                               version=None, since=now, seen_at=now, state=ReplicaState.STOPPED)
                 for model in sorted(self.state.tables)]
        for table in self.state.tables.values():
            table.retire_all()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout_s):
                async with self._reporting:  # after any report already on its way
                    await asyncio.to_thread(self._write_reports, final)


def _new_shadow(before: Mapping[str, frozenset[int]], after: Mapping[str, frozenset[int]]) -> bool:
    """A version is a deploy's shadow in `after` that was not in `before`."""
    return any(after[m] - before.get(m, frozenset()) for m in after)
