"""The watch judges a bad version whose traffic came only through the Open Inference Protocol
(tritonclient) and MLflow's `/invocations`, and rolls it back: the protocols feed the same
per-version counters and request ids (for feedback labels) as the native route."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from lastgood.bootstrap.demo import Load, run_auto_rollback
from lastgood.bootstrap.demo_models import Sample
from lastgood.domain.versions import VersionStatus
from tests.integration.wine_registry import ENV, MODEL, good_live_bad_registered


@dataclass
class ProtocolLoad(Load):
    """Steady traffic alternating tritonclient /v2 infer and /invocations; labels as feedback
    for the request id each protocol answered with."""

    by_protocol: Counter[str] = field(default_factory=Counter)
    _turn: int = 0
    _triton: Any = None

    def _oip(self, sample: Sample) -> tuple[str, str]:
        import tritonclient.http as tc

        if self._triton is None:
            self._triton = tc.InferenceServerClient(self.base_url.removeprefix("http://"),
                                                    network_timeout=10)
        names = list(sample.record)
        tensor = tc.InferInput("features", [1, len(names)], "FP64")
        tensor.set_data_from_numpy(np.array([[sample.record[n] for n in names]]))
        response = self._triton.infer(self.model, [tensor]).get_response()
        return response["model_version"], response["id"]

    def _invocations(self, http: httpx.Client, sample: Sample) -> tuple[str, str]:
        r = http.post("/invocations", json={"dataframe_records": [sample.record]})
        r.raise_for_status()
        return r.headers["X-Model-Version"], r.headers["X-Request-Id"]

    def _one(self, http: httpx.Client, sample: Sample) -> None:
        from tritonclient.utils import InferenceServerException

        self._turn += 1
        protocol = "oip" if self._turn % 2 else "invocations"
        try:
            version, request_id = (self._oip(sample) if protocol == "oip"
                                   else self._invocations(http, sample))
            self.answered[version] += 1
            self.by_protocol[protocol] += 1
            told = http.post(f"/v1/models/{self.model}/feedback",
                             json={"request_id": request_id, "label": sample.label})
            if told.status_code != 200:
                self.failures[f"feedback HTTP {told.status_code}"] += 1
        except (httpx.HTTPError, InferenceServerException) as exc:
            self.failures[f"{protocol} {type(exc).__name__}"] += 1


@pytest.mark.slow
def test_the_watch_rolls_back_a_bad_version_seen_only_through_v2_and_invocations(
        tmp_path: Path) -> None:
    services = good_live_bad_registered(tmp_path)
    loads: list[ProtocolLoad] = []

    def load_type(*args: Any, **kwargs: Any) -> ProtocolLoad:  # keeps the load to inspect
        loads.append(ProtocolLoad(*args, **kwargs))
        return loads[-1]

    said: list[str] = []
    timeline = run_auto_rollback(services, model=MODEL, env=ENV, bad=2, home=tmp_path,
                                 actor="tester", say=said.append, rps=40, bake_s=4,
                                 load_type=load_type)
    print("\n".join(said), *(f"{step}: {at}" for step, at in timeline.rows()), sep="\n")
    [load] = loads
    assert load.by_protocol["oip"] > 50
    assert load.by_protocol["invocations"] > 50
    assert sum(load.failures.values()) == 0, load.failures
    assert {"1", "2"} <= set(load.answered)
    assert timeline.outcome == "succeeded"
    live = services.deployments.status(MODEL, env=ENV).live
    assert live is not None
    assert live.version == 1
    assert services.registry.show(MODEL, 2).status is VersionStatus.QUARANTINED
    rollback = services.deployments.operations(model=MODEL, env=ENV)[0]
    assert rollback.actor == "lastgood-watch"
    assert rollback.trigger["verdict"] in ("DEGRADED", "FAILED")
