"""Signed versions: ed25519 key files, signing at registration, and the rollback preflight's
signature check refusing forged, untrusted and unsigned versions when the env requires it; a
swapped artifact is caught by the integrity check."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from lastgood.adapters.null import NoEvidence
from lastgood.adapters.system.keys import Ed25519Signatures, FileKeyRing, verify_signature
from lastgood.domain.access import signing_message
from lastgood.domain.errors import AlreadyExists, InvalidInput, NoEligibleTarget, NotFound
from lastgood.domain.operations import Phase
from lastgood.domain.versions import Version
from lastgood.services.container import Ports, wire
from lastgood.services.operations import EngineSettings
from lastgood.services.registry import RegisterRequest
from lastgood.testing import make_manifest
from tests.unit.fake_lastgood import FakeFormats, FakeLastgood

ENV = "production"
MODEL = "fraud-detector"


class SignedFakeLastgood(FakeLastgood):
    """The unit-test world with real ed25519 signatures and a key ring in a temp folder."""

    keys_dir: Path = Path()

    def __post_init__(self) -> None:
        self.keyring = FileKeyRing(self.keys_dir)
        self.services = wire(Ports(
            uow=self.registry, store=self.store, formats=FakeFormats(), host=self.host,
            clock=self.clock, commands=self.commands, smoke=self.smoke,
            signatures=Ed25519Signatures(self.registry), keyring=self.keyring,
            verifier=self.verifier, evidence=NoEvidence(),
            engine_settings=EngineSettings(lease_ttl_s=30, replica_stale_s=15, poll_s=0.2)))

    def signed(self, key: str, *, forged: bool = False) -> Version:
        """A version signed with `key` over its own digest (or, forged, over other bytes)."""
        data = f"weights {len(self.store.blobs)}".encode()
        digest = make_manifest(("model.bin", data)).digest
        message = signing_message(MODEL, "f" * 64 if forged else digest)
        return self.add_version(content=data, signature=self.keyring.sign(key, message),
                                signed_by=key)


@pytest.fixture
def world(tmp_path: Path) -> SignedFakeLastgood:
    SignedFakeLastgood.keys_dir = tmp_path / "keys"
    w = SignedFakeLastgood()
    w.services.signing.create_key("release", actor="root")
    w.services.signing.create_key("intern", actor="root")
    w.services.deployments.configure(ENV, changes={"require_signature": True,
                                                   "trusted_keys": ("release",)}, actor="root")
    return w


def test_key_files_are_private_and_never_overwritten(tmp_path: Path) -> None:
    ring = FileKeyRing(tmp_path / "keys")
    public = ring.create("ci")
    assert len(base64.b64decode(public)) == 32
    assert stat.S_IMODE(ring.path("ci").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    with pytest.raises(AlreadyExists, match="already exists"):
        ring.create("ci")
    assert ring.public_key("ci") == public
    with pytest.raises(NotFound, match="no private key"):
        ring.sign("other", b"x")
    with pytest.raises(InvalidInput, match="key name"):
        ring.create("../escape")


def test_signatures_verify_only_for_the_exact_message(tmp_path: Path) -> None:
    ring = FileKeyRing(tmp_path)
    public = ring.create("k")
    sig = ring.sign("k", signing_message("m", "a" * 64))
    assert verify_signature(public, signing_message("m", "a" * 64), sig) is None
    assert "does not match" in str(verify_signature(public, signing_message("m", "b" * 64), sig))
    assert "does not match" in str(verify_signature(public, signing_message("n", "a" * 64), sig))
    assert "base64" in str(verify_signature(public, b"x", "not base64!"))


def test_registering_with_a_key_signs_the_digest(world: SignedFakeLastgood, tmp_path: Path) -> None:
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"weights")
    version = world.services.registry.register(
        RegisterRequest(model=MODEL, path=artifact, sign_with="release"), actor="ci")
    assert version.signed_by == "release"
    assert world.services.ports.signatures.verify(version, ("release",)) is None


def test_a_signature_made_elsewhere_is_checked_at_registration(
        world: SignedFakeLastgood, tmp_path: Path) -> None:
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"weights")
    forged = base64.b64encode(b"\0" * 64).decode()
    with pytest.raises(InvalidInput, match="does not verify"):
        world.services.registry.register(RegisterRequest(
            model=MODEL, path=artifact, signature=forged, signed_by="release"), actor="ci")
    assert world.store.blobs == {}  # nothing half-written


def test_signing_with_an_unrecorded_key_is_refused(world: SignedFakeLastgood,
                                                   tmp_path: Path) -> None:
    world.keyring.create("local-only")
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"weights")
    with pytest.raises(NotFound, match="unknown signing key 'local-only'"):
        world.services.registry.register(
            RegisterRequest(model=MODEL, path=artifact, sign_with="local-only"), actor="ci")


def refusal_of(world: SignedFakeLastgood, version: int) -> str:
    plan = world.services.deployments.plan_rollback(MODEL, env=ENV)
    return "; ".join(next(c for c in plan.candidates if c.version == version).refusals)


@pytest.mark.parametrize(("kind", "words"), [
    ("forged", "does not match the version digest"),
    ("untrusted", "'intern', which this environment does not trust"),
    ("unsigned", "is not signed")])
def test_rollback_preflight_refuses_a_version_without_a_trusted_signature(
        world: SignedFakeLastgood, kind: str, words: str) -> None:
    good = world.signed("release")
    if kind == "forged":
        bad = world.signed("release", forged=True)
    elif kind == "untrusted":
        bad = world.signed("intern")
    else:
        bad = world.add_version()
    live = world.signed("release")
    world.deploy(good.number)
    _deploy_anyway(world, bad)
    world.deploy(live.number, verify=False)
    assert words in refusal_of(world, bad.number)
    op = world.services.deployments.rollback(MODEL, env=ENV, reason="p95 doubled", actor="bob")
    assert (op.phase, op.target_version) == (Phase.SUCCEEDED, good.number)


def _deploy_anyway(world: SignedFakeLastgood, version: Version) -> None:
    """Put a version the env would refuse into its history (as if the policy came later)."""
    deps = world.services.deployments
    deps.configure(ENV, changes={"require_signature": False}, actor="root")
    world.deploy(version.number)
    deps.configure(ENV, changes={"require_signature": True}, actor="root")


def test_with_only_bad_signatures_there_is_no_target(world: SignedFakeLastgood) -> None:
    first = world.add_version()
    live = world.signed("release")
    _deploy_anyway(world, first)
    world.deploy(live.number, verify=False)
    with pytest.raises(NoEligibleTarget, match="no eligible rollback target"):
        world.services.deployments.rollback(MODEL, env=ENV, reason="bad", actor="bob")


def test_a_swapped_artifact_is_caught_by_the_integrity_check(world: SignedFakeLastgood) -> None:
    good = world.signed("release")
    live = world.signed("release")
    world.deploy(good.number)
    world.deploy(live.number, verify=False)
    sha = good.manifest.files[0].sha256
    world.store.blobs[sha] = b"someone else's weights"  # behind the registry's back
    assert "integrity: 1 of 1 artifact(s) fail their digest" in refusal_of(world, good.number)
