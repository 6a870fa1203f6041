"""Preflight: prove a target still fits today's infrastructure before any traffic moves.

Each check is a small object with a name and `run(ctx) -> CheckResult`; the list is data, so teams
add their own (custom checks declared per environment) beside the built-in ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

from lastgood.domain.compatibility import (
    HostFacts,
    diff_schema,
    normal_name,
    python_drift,
    release_parts,
    resource_shortfall,
    runtime_drift,
)
from lastgood.domain.deployments import CustomCheck, Environment, RuntimeDrift, SwitchMode
from lastgood.domain.errors import IntegrityError, LastGoodError
from lastgood.domain.flavors import Flavor, flavor
from lastgood.domain.operations import CheckResult, CheckStatus
from lastgood.domain.readiness_evidence import Readiness, ReadinessVerdict
from lastgood.domain.replay import ReplayOutcome
from lastgood.domain.versions import Column, Version, golden_params, golden_summary
from lastgood.ports import (
    ArtifactStore,
    CommandRunner,
    ReadinessSource,
    ReplaySource,
    Signatures,
    SmokeRunner,
)


@dataclass(frozen=True, slots=True)
class CheckContext:
    """Everything a check may look at: the target, the env, the live version, the host."""

    target: Version
    env: Environment
    live: Version | None
    host: HostFacts
    forward: bool = False  # a deploy's target, not a way back


class Check(Protocol):
    name: str

    def run(self, ctx: CheckContext) -> CheckResult:
        """Judge the target; never raise for a failing target, return FAIL with evidence."""
        ...


def timed(name: str, body: Callable[[], CheckResult]) -> CheckResult:
    """Run a check body, time it, and turn an unexpected lastgood error into a FAIL."""
    start = time.perf_counter()
    try:
        result = body()
    except LastGoodError as exc:
        result = CheckResult(name, CheckStatus.FAIL, exc.one_line(), {"error": type(exc).__name__})
    ms = (time.perf_counter() - start) * 1000
    return CheckResult(result.name, result.status, result.summary, result.evidence, ms)


class IntegrityCheck:
    """Every artifact's bytes still hash to the digest in the manifest."""

    name = "integrity"

    def __init__(self, store: ArtifactStore):
        self._store = store

    def run(self, ctx: CheckContext) -> CheckResult:
        bad: dict[str, str] = {}
        for f in ctx.target.manifest.files:
            try:
                data = self._store.read(f.sha256)
                if len(data) != f.size:
                    bad[f.path] = f"size {len(data)} != {f.size}"
            except LastGoodError as exc:
                bad[f.path] = exc.message
        if bad:
            return CheckResult(self.name, CheckStatus.FAIL,
                               f"{len(bad)} of {len(ctx.target.manifest.files)} artifact(s) "
                               "fail their digest: "
                               + "; ".join(f"{k}: {v}" for k, v in bad.items()),
                               {"bad": bad})
        return CheckResult(self.name, CheckStatus.PASS,
                           f"{len(ctx.target.manifest.files)} artifact(s) match their sha256",
                           {"digest": ctx.target.digest})


class RuntimeCheck:
    """The target's Python and package pins against the serving host, under the env's policy.

    Pins of packages the flavor's loader imports (or that deserialise the artifact) decide; a
    package the loader needs and the host lacks fails with the install command. Pins the model's
    environment declares but lastgood's serving path for that flavor never imports (MLflow pins
    pandas, mlflow, pytest…) are reported as a warning with the evidence, never a refusal.
    """

    name = "runtime"

    def run(self, ctx: CheckContext) -> CheckResult:
        runtime, policy, spec = ctx.target.runtime, ctx.env.runtime_drift, flavor(ctx.target.flavor)
        judged = {k: v for k, v in runtime.packages.items() if spec.judges(normal_name(k))}
        unused = {k: v for k, v in runtime.packages.items() if k not in judged}
        problems = runtime_drift(judged, ctx.host.packages, policy)
        problems.update(missing_requirements(spec, ctx.host.packages))
        py = python_drift(runtime.python, ctx.host.python)
        if py:
            problems["python"] = py
        ignored = runtime_drift(unused, ctx.host.packages, policy)
        evidence = {"policy": str(policy), "flavor": spec.name, "drift": problems,
                    "pins": dict(runtime.packages), "not_imported_by_loader": ignored}
        if problems:
            listed = "; ".join(f"{k}: {v}" for k, v in problems.items())
            status = CheckStatus.WARN if policy is RuntimeDrift.IGNORE else CheckStatus.FAIL
            out = ways_out(problems, judged, ctx.host.packages, ctx.env.name)
            return CheckResult(self.name, status, f"runtime drift: {listed}{out}", evidence)
        fit = f"{len(judged)} pin(s) the {spec.name} loader uses fit the host ({policy} policy)"
        if ignored:
            listed = "; ".join(f"{k}: {v}" for k, v in ignored.items())
            return CheckResult(self.name, CheckStatus.WARN,
                               f"{fit}; pins it never imports differ, reported only: {listed}",
                               evidence)
        return CheckResult(self.name, CheckStatus.PASS, fit, evidence)


def ways_out(problems: Mapping[str, str], pins: Mapping[str, str],
             installed: Mapping[str, str], env: str) -> str:
    """Both ways out of a drift: install what the version pins, or let the env accept it."""
    pinned = {normal_name(k): v for k, v in pins.items()}
    wanted = [f"{name}=={pinned[normal_name(name)]}" for name in problems
              if normal_name(name) in pinned]
    if not wanted:
        return ""
    have = {normal_name(k): v for k, v in installed.items()}
    majors = [(release_parts(pinned[normal_name(n)]), release_parts(have.get(normal_name(n), "")))
              for n in problems if normal_name(n) in pinned]
    same_major = all(w is not None and h is not None and w[0] == h[0] for w, h in majors)
    accept = RuntimeDrift.MAJOR if same_major else RuntimeDrift.IGNORE
    return (f" — install them on this host (pip install {' '.join(repr(w) for w in wanted)}), "
            f"or accept the drift: lastgood env set {env} --runtime-drift {accept}")


def missing_requirements(spec: Flavor, installed: Mapping[str, str]) -> dict[str, str]:
    """Packages the flavor's loader imports that the host lacks, each with the install command."""
    have = {normal_name(k) for k in installed}
    return {name: f"not installed; {spec.install_hint}" for name in spec.requires
            if name not in have}


class ResourceCheck:
    """Declared memory/CPU/GPU needs against what the host has free."""

    name = "resources"

    def run(self, ctx: CheckContext) -> CheckResult:
        need = ctx.target.runtime.resources
        short = resource_shortfall(need, ctx.host.resources)
        evidence = {"need": {"memory_mb": need.memory_mb, "cpus": need.cpus, "gpus": need.gpus},
                    "host": {"memory_mb": ctx.host.resources.memory_mb,
                             "cpus": ctx.host.resources.cpus, "gpus": ctx.host.resources.gpus}}
        if short:
            return CheckResult(self.name, CheckStatus.FAIL, "; ".join(short), evidence)
        return CheckResult(self.name, CheckStatus.PASS, "the host has what the version declares",
                           evidence)


class DataContractCheck:
    """Input columns against the env's feature schema (or the live version's), outputs likewise."""

    name = "data_contract"

    def run(self, ctx: CheckContext) -> CheckResult:
        provided, source = self._provided(ctx)
        if not ctx.target.schema.inputs:
            return CheckResult(self.name, CheckStatus.WARN,
                               "the target declares no input schema; nothing to compare",
                               {"source": source})
        if provided is None:
            return CheckResult(self.name, CheckStatus.SKIP,
                               "no feature schema declared for the env and no live schema",
                               {})
        diff = diff_schema(ctx.target.schema.inputs, provided)
        out_diff = diff_schema(self._expected_outputs(ctx), ctx.target.schema.outputs)
        evidence = {"source": source, "missing": list(diff.missing),
                    "dtype_changes": [list(c) for c in diff.dtype_changes],
                    "extra": list(diff.extra), "outputs_missing": list(out_diff.missing),
                    "outputs_dtype_changes": [list(c) for c in out_diff.dtype_changes]}
        if diff.compatible and out_diff.compatible:
            return CheckResult(self.name, CheckStatus.PASS,
                               f"{len(ctx.target.schema.inputs)} input column(s) match {source}",
                               evidence)
        parts = [f"inputs: {diff.describe()}"] if not diff.compatible else []
        if not out_diff.compatible:
            parts.append(f"outputs consumers expect: {out_diff.describe()}")
        return CheckResult(self.name, CheckStatus.FAIL, "; ".join(parts), evidence)

    @staticmethod
    def _provided(ctx: CheckContext) -> tuple[Sequence[Column] | None, str]:
        if ctx.env.feature_schema is not None:
            return ctx.env.feature_schema, f"the feature schema of {ctx.env.name}"
        if ctx.live is not None and ctx.live.schema.inputs:
            return ctx.live.schema.inputs, f"the live version {ctx.live.number}'s inputs"
        return None, "none"

    @staticmethod
    def _expected_outputs(ctx: CheckContext) -> Sequence[Column]:
        if ctx.env.expected_outputs is not None:
            return ctx.env.expected_outputs
        return ctx.live.schema.outputs if ctx.live is not None else ()


class SmokeCheck:
    """Reproduce the target's golden examples: on the warm standby of every live replica when
    all of them hold fresh readiness evidence, else by loading it in a separate process."""

    name = "smoke"

    def __init__(self, runner: SmokeRunner, *, timeout_s: float = 120.0, enabled: bool = True,
                 readiness: ReadinessSource | None = None):
        self._runner, self._timeout, self._enabled = runner, timeout_s, enabled
        self._readiness = readiness

    def run(self, ctx: CheckContext) -> CheckResult:
        if not self._enabled:
            return CheckResult(self.name, CheckStatus.SKIP,
                               "smoke test turned off on this installation "
                               "(LASTGOOD_SMOKE_TEST=off)", {"disabled": True})
        if not ctx.target.golden:
            return CheckResult(self.name, CheckStatus.WARN,
                               "the target has no golden examples; loaded but not compared", {})
        verdict = self._judge_readiness(ctx)
        if verdict is not None and verdict.verdict is not Readiness.UNPROVEN:
            return readiness_result(self.name, verdict)
        outcome = self._runner.smoke(ctx.target, timeout_s=self._timeout)
        evidence = {"load_ms": round(outcome.load_ms, 1),
                    "predict_ms": round(outcome.predict_ms, 1),
                    "examples": len(ctx.target.golden),
                    "golden": golden_summary(ctx.target.golden),
                    "mismatches": [dict(m) for m in outcome.mismatches]}
        if any(g.params for g in ctx.target.golden):  # the inference params each example ran with
            evidence["params"] = golden_params(ctx.target.golden)
        status = CheckStatus.PASS if outcome.ok else CheckStatus.FAIL
        if verdict is None:
            return CheckResult(self.name, status, outcome.summary, evidence)
        evidence["readiness"] = verdict.as_json()
        return CheckResult(self.name, status, f"{outcome.summary} (smoke test run: readiness "
                           f"evidence not usable: {verdict.summary})", evidence)

    def _judge_readiness(self, ctx: CheckContext) -> ReadinessVerdict | None:
        if self._readiness is None or ctx.env.switch_mode is not SwitchMode.SERVING:
            return None
        return self._readiness.judge(ctx.target, ctx.env.name)


def readiness_result(name: str, verdict: ReadinessVerdict) -> CheckResult:
    """The smoke check's result from proven or broken readiness evidence."""
    evidence = {"source": "readiness", "readiness": verdict.as_json()}
    if verdict.verdict is Readiness.PROVEN:
        return CheckResult(name, CheckStatus.PASS, verdict.summary, evidence)
    return CheckResult(name, CheckStatus.FAIL, verdict.summary, evidence)


class ReplayCheck:
    """The target answers today's traffic: the recent live requests every replica keeps,
    replayed on its warm standby and compared with the live version's answers.

    A target that cannot answer some of them (more than the limit, default none) is refused
    with the first example; agreement is shown, and refuses only under a set limit. No replay
    data (a restarted replica, no traffic, not a standby) is a warning, never a pass.
    """

    name = "replay"

    def __init__(self, source: ReplaySource):
        self._source = source

    def run(self, ctx: CheckContext) -> CheckResult:
        if ctx.env.switch_mode is not SwitchMode.SERVING:
            return CheckResult(self.name, CheckStatus.SKIP, "replay needs lastgood's own "
                               f"replicas; {ctx.env.name} switches by command", {})
        judged = self._source.judge(ctx.target, ctx.env.name, forward=ctx.forward)
        status = _REPLAY_STATUS[judged.outcome]
        return CheckResult(self.name, status, judged.summary, judged.as_json())


FORCEABLE = frozenset({"replay"})
"""The checks `deploy --force` may override: what today's traffic says of a new version is
a judgement a person may overrule; integrity, runtime, resources, data contract, smoke test
and signature are facts that no flag makes true."""


def force_past(result: CheckResult) -> CheckResult:
    """A forced deploy's view of `result`: a forceable refusal becomes a warning that names
    what `--force` overrode (kept in the evidence and the audit trail)."""
    if not result.blocks or result.name not in FORCEABLE:
        return result
    return CheckResult(result.name, CheckStatus.WARN, f"overridden by --force: {result.summary}",
                       {**result.evidence, "overridden": True}, result.duration_ms)


_REPLAY_STATUS = {ReplayOutcome.PASSED: CheckStatus.PASS, ReplayOutcome.FAILED: CheckStatus.FAIL,
                  ReplayOutcome.NO_DATA: CheckStatus.WARN, ReplayOutcome.OFF: CheckStatus.SKIP}


class SignatureCheck:
    """A valid signature of the digest by a trusted key, when the env requires one."""

    name = "signature"

    def __init__(self, signatures: Signatures):
        self._signatures = signatures

    def run(self, ctx: CheckContext) -> CheckResult:
        if not ctx.env.require_signature:
            status = CheckStatus.SKIP if ctx.target.signature is None else CheckStatus.PASS
            return CheckResult(self.name, status,
                               f"{ctx.env.name} does not require signatures", {})
        problem = self._signatures.verify(ctx.target, ctx.env.trusted_keys)
        if problem:
            return CheckResult(self.name, CheckStatus.FAIL, problem,
                               {"signed_by": ctx.target.signed_by})
        return CheckResult(self.name, CheckStatus.PASS,
                           f"digest signed by trusted key {ctx.target.signed_by}",
                           {"signed_by": ctx.target.signed_by})


class CustomCommandCheck:
    """A team's own gate: a command or entry point that gets the target's details."""

    def __init__(self, spec: CustomCheck, runner: CommandRunner, location: Callable[[str], str]):
        self.name = f"custom:{spec.name}"
        self._spec, self._runner, self._location = spec, runner, location

    def run(self, ctx: CheckContext) -> CheckResult:
        payload = target_variables(ctx.target, ctx.env.name, self._location)
        if self._spec.command:
            result = self._runner.run(self._spec.command, env=payload,
                                      timeout_s=self._spec.timeout_s)
        else:
            result = self._runner.call(self._spec.entry_point, payload,
                                       timeout_s=self._spec.timeout_s)
        tail = result.output.strip().splitlines()[-5:]
        evidence = {"exit_code": result.exit_code, "output_tail": tail,
                    "timed_out": result.timed_out}
        if result.exit_code == 0:
            return CheckResult(self.name, CheckStatus.PASS, "the team's check passed", evidence)
        why = "timed out" if result.timed_out else f"exited {result.exit_code}"
        return CheckResult(self.name, CheckStatus.FAIL,
                           f"the team's check {why}" + (f": {tail[-1]}" if tail else ""), evidence)


def target_variables(target: Version, env: str, location: Callable[[str], str]) -> dict[str, str]:
    """The environment variables a deploy command or custom check receives."""
    first = target.manifest.files[0]
    return {"LASTGOOD_MODEL": target.model, "LASTGOOD_VERSION": str(target.number),
            "LASTGOOD_TAG": target.tag or "", "LASTGOOD_DIGEST": target.digest,
            "LASTGOOD_ENV": env, "LASTGOOD_FLAVOR": target.flavor,
            "LASTGOOD_ARTIFACT_URL": location(first.sha256),
            "LASTGOOD_ARTIFACTS": ";".join(f"{f.path}={location(f.sha256)}"
                                           for f in target.manifest.files)}


def materialize(store: ArtifactStore, target: Version, dest: Path) -> Path:
    """Write every file of `target` under `dest` at its registered path (an MLflow model
    directory comes back as MLflow wrote it), each checked against its sha256; `dest`."""
    root = dest.resolve()
    for item in target.manifest.files:
        path = (root / item.path).resolve()
        if root not in path.parents:  # the manifest is data: never write outside `dest`
            raise IntegrityError(f"artifact path {item.path!r} of {target.ref} leaves its "
                                 "model directory", fix="re-register the version")
        path.parent.mkdir(parents=True, exist_ok=True)
        store.fetch(item.sha256, path)
    return root


def run_checks(checks: Sequence[Check], ctx: CheckContext) -> tuple[CheckResult, ...]:
    """Run every check (even after a failure, so the operator sees the whole picture)."""
    return tuple(timed(c.name, partial(c.run, ctx)) for c in checks)
