"""What one replica holds: a slot table per model, the evidence recorder, and readiness facts.

The reconciler writes it, the gateway reads it; both run on the same event loop, so nothing
here needs a lock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lastgood.domain.errors import NotFound, TransientError
from lastgood.serving.evidence import Recorder
from lastgood.serving.reservoir import Reservoirs
from lastgood.serving.slots import SlotState, SlotTable

__all__ = ["NotServing", "ServingState"]


class NotServing(TransientError):
    """The model is deployed but this replica has no warm slot for it yet (HTTP 503)."""


class ServingState:
    """The slot tables of every model a replica serves for one environment."""

    def __init__(self, *, env: str, recorder: Recorder | None = None,
                 reservoirs: Reservoirs | None = None) -> None:
        self.env = env
        self.recorder = recorder if recorder is not None else Recorder()
        # Recent live requests per model, for replay on the standbys (in memory only).
        self.reservoirs = reservoirs if reservoirs is not None else Reservoirs()
        self.tables: dict[str, SlotTable] = {}
        self.deployed: frozenset[str] | None = None  # None until the registry was read once
        self.synced_at: datetime | None = None
        self.sync_error = ""
        self.desired: dict[str, int] = {}  # model -> the version the registry wants live
        self.shadow: dict[str, frozenset[int]] = {}  # model -> deploy targets being checked

    def table(self, model: str) -> SlotTable:
        """The table of `model`, created empty on first use."""
        found = self.tables.get(model)
        if found is None:
            found = self.tables[model] = SlotTable(model)
        return found

    def served(self, model: str) -> SlotTable:
        """The table of a model this replica serves; NotFound naming the served ones."""
        found = self.tables.get(model)
        if found is None:
            names = ", ".join(sorted(self.tables)) or "none yet"
            raise NotFound(f"model {model!r} is not served in {self.env!r}",
                           fix=f"deploy it to {self.env!r} first; served models: {names}")
        return found

    def unready(self) -> list[str]:
        """Why the replica is not ready; empty when every deployed model has a warm live slot."""
        if self.deployed is None:
            why = f": {self.sync_error}" if self.sync_error else ""
            return [f"the registry was not read yet{why}"]
        reasons = []
        for model in sorted(self.deployed):
            table = self.tables.get(model)
            live = table.live if table else None
            if live is None or live.state is not SlotState.WARM:
                failed = "; ".join(s.reason for s in table.failures.values()) if table else ""
                why = f" ({failed})" if failed else ""
                reasons.append(f"{model}: no warm live slot yet{why}")
        return reasons

    def live_stats(self, model: str) -> dict[str, Any]:
        """Per-version live counters of `model` on this replica, live version first."""
        table = self.served(model)
        live = table.live.number if table.live else None
        versions = [s.snapshot() for s in self.recorder.versions(model)]
        versions.sort(key=lambda v: v["version"] != live)
        return {"model": model, "env": self.env, "live_version": live, "versions": versions}

    def evidence(self, model: str, version: int) -> dict[str, Any]:
        """The sampled requests, responses, errors and counters of one version (for the archive)."""
        return self.recorder.samples(model, version)

    def describe(self, model: str) -> dict[str, Any]:
        """Live, standby and loading slots of one served model, with KServe v1's `name` and
        `ready` (a warm live slot)."""
        table = self.served(model)
        ready = table.live is not None and table.live.state is SlotState.WARM
        return {"name": model, "ready": ready, **table.describe()}
