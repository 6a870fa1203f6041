"""How a finished operation becomes the caller's result: the one place outcomes are judged.

The engine only records where an operation ended (SUCCEEDED, FAILED, ESCALATED) and why. What a
deploy or rollback returns, and which error it raises for each ending, is decided here.
"""

from __future__ import annotations

from lastgood.domain import codec
from lastgood.domain.errors import (
    Escalated,
    Incompatible,
    NoEligibleTarget,
    PlanChanged,
    PreconditionFailed,
)
from lastgood.domain.operations import Operation, Phase
from lastgood.domain.plans import PLAN_CHANGED


def deploy_result(done: Operation, ref: str) -> Operation:
    """A finished deploy of the version `ref` (its human reference) as the caller's result."""
    if done.phase is Phase.FAILED:
        raise Incompatible(f"deploy of {ref} to {done.env} refused: {done.error}"
                           + _refusal_text(done),
                           fix=_deploy_fix(done), details={"operation": done.id})
    return done  # an ESCALATED deploy is returned: its error says what a human must look at


def rollback_result(done: Operation) -> Operation:
    """A finished rollback as the caller's result; raises when it was refused, failed or paged."""
    if done.phase is Phase.FAILED and done.error.startswith(PLAN_CHANGED):
        raise PlanChanged(f"rollback of {done.model} in {done.env} stopped: {done.error}; "
                          "nothing moved", fix="read the new plan and confirm it (or not)",
                          details={"operation": done.id})
    if done.phase is Phase.FAILED and not any(c.accepted for c in done.candidates):
        raise no_target_error(done)
    if done.phase is Phase.FAILED:
        raise PreconditionFailed(f"rollback of {done.model} in {done.env} failed: {done.error}",
                                 fix="read `lastgood events --model` for the evidence; "
                                     "the live version is unchanged")
    if done.phase is Phase.ESCALATED:
        raise Escalated(f"rolled back {done.model} in {done.env} to v{done.target_version}, but "
                        f"{done.error}", fix="a human must look now: `lastgood status`",
                        details={"operation": done.id})
    return done


def no_target_error(op: Operation) -> NoEligibleTarget:
    """The refusal raised to the caller when every candidate was refused."""
    listed = "; ".join(f"v{c.version}: {', '.join(c.refusals)}" for c in op.candidates)
    return NoEligibleTarget(
        f"no eligible rollback target for {op.model} in {op.env}" + (f" ({listed})" if listed
                                                                     else " (no history)"),
        fix=_rollback_fix(op),
        refusals=[codec.candidate_to_json(c) for c in op.candidates])


def _rollback_fix(op: Operation) -> str:
    """The way out of a refused rollback: --force overrides "never verified", never a check."""
    failed = {r.name: c.version for c in op.candidates for r in c.checks if r.blocks}
    if "integrity" in failed:
        return (f"the stored artifacts of v{failed['integrity']} no longer match their digest and "
                "integrity cannot be forced: restore the artifact store from a backup (or "
                "register the model again and verify it), or roll back to another version "
                "with --to VERSION")
    if failed:
        return (f"fix what the {', '.join(failed)} check(s) name, or roll back to another "
                "version with --to VERSION; --force does not skip preflight checks")
    quarantined = [c.version for c in op.candidates
                   if any("quarantined" in r for r in c.refusals)]
    lift = (f"; if v{quarantined[0]} was quarantined for a cause that was not its own, lift "
            f"it: lastgood quarantine lift {op.model} {quarantined[0]} --reason TEXT"
            if quarantined else "")
    if op.forced:
        return "roll back to another version with --to VERSION" + lift
    return ("verify a known-good deployment (`lastgood verify`), or force one with "
            "--to VERSION --force --reason TEXT" + lift)


def _deploy_fix(op: Operation) -> str:
    """The way out of a refused deploy: --force only overrides a version's status, never a check."""
    failed = [r.name for c in op.candidates for r in c.checks if r.blocks]
    if failed == ["replay"]:
        return ("fix the version (or the data pipeline) so it answers today's requests and "
                "deploy again, or pass --force --reason TEXT to override the replay "
                "(it is named in the audit trail)")
    if failed:
        return (f"fix what the {', '.join(failed)} check(s) name and deploy again; "
                "--force overrides only the replay, never the other preflight checks")
    return "pass --force with a reason to deploy a version that is not active"


def _refusal_text(op: Operation) -> str:
    reasons = [r for c in op.candidates for r in c.refusals]
    return f" ({'; '.join(reasons)})" if reasons else ""
