"""Do-nothing implementations of optional ports, so services never test `if port is None`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lastgood.domain.health import LiveCheck, Verdict
from lastgood.domain.versions import Version


class NoVerifier:
    """No live metric source is configured: verification reports SKIPPED, never a verdict."""

    def verify_live(self, model: str, env: str, version: int,
                    baseline: Mapping[str, float]) -> LiveCheck:
        return LiveCheck(Verdict.SKIPPED,
                         "no live metric source configured; the watch verifies later",
                         {"baseline": dict(baseline)})


class NoEvidence:
    """No serving process shares request samples: the archive records that fact."""

    def samples(self, model: str, env: str, version: int) -> Mapping[str, Any]:
        return {"note": "no serving evidence available (lastgood serve was not the server)"}


class NoSignatures:
    """No verifier configured: an env that requires signatures refuses every version."""

    def verify(self, version: Version, trusted_keys: Sequence[str]) -> str | None:
        return "signature verification is not configured on this installation"
