"""Signed versions: named ed25519 keys, signing at registration, checking outside signatures.

The private half of a key stays with whoever signs (a KeyRing, by default files under
$LASTGOOD_HOME/keys); the registry records only the public key, which environments name in
`trusted_keys`. The rollback preflight's SignatureCheck then refuses any target not signed by one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import replace

from lastgood.domain.access import SigningKey, check_key_name, signing_message
from lastgood.domain.audit import EventDraft
from lastgood.domain.errors import AlreadyExists, InvalidInput, NotFound, PreconditionFailed
from lastgood.domain.versions import NewVersion, Version
from lastgood.ports import Clock, KeyRing, Signatures, UnitOfWorkFactory


class NoKeyRing:
    """No private keys on this side (e.g. a server): signing is refused with the way out."""

    def _refuse(self, name: str) -> PreconditionFailed:
        return PreconditionFailed(f"no private signing key {name!r} is available here",
                                  fix="sign where the key was created (`lastgood key create`), "
                                      "e.g. in the release pipeline")

    def create(self, name: str) -> str:
        raise self._refuse(name)

    def discard(self, name: str) -> None:
        return None

    def public_key(self, name: str) -> str:
        raise self._refuse(name)

    def sign(self, name: str, message: bytes) -> str:
        raise self._refuse(name)


def fingerprint(public_key: str) -> str:
    """A short, stable name for a public key: 16 hex of the sha256 of its raw bytes."""
    return hashlib.sha256(decode_public_key(public_key)).hexdigest()[:16]


def decode_public_key(public_key: str) -> bytes:
    """The 32 raw bytes of a base64 ed25519 public key, else InvalidInput."""
    try:
        raw = base64.b64decode(public_key.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("the public key is not base64",
                           fix="pass the base64 of the 32 raw ed25519 public key bytes") from exc
    if len(raw) != 32:
        raise InvalidInput(f"the public key has {len(raw)} bytes, not 32",
                           fix="pass the base64 of the 32 raw ed25519 public key bytes")
    return raw


def provisional(new: NewVersion, *, signature: str, signed_by: str, clock: Clock) -> Version:
    """The version `new` would become, for checking its signature before it is numbered."""
    return Version(model=new.model, number=0, manifest=new.manifest, digest=new.manifest.digest,
                   flavor=new.flavor, created_at=clock.now(), created_by="",
                   signature=signature, signed_by=signed_by)


class SigningService:
    """Create and list signing keys; sign or check a version's signature at registration."""

    def __init__(self, *, uow: UnitOfWorkFactory, keyring: KeyRing, signatures: Signatures,
                 clock: Clock):
        self._uow, self._keyring = uow, keyring
        self._signatures, self._clock = signatures, clock

    def create_key(self, name: str, *, actor: str) -> SigningKey:
        """Make a key pair here and record its public key in the registry (audited)."""
        check_key_name(name)
        self._refuse_taken(name)
        return self.add_key(name, self._keyring.create(name), actor=actor)

    def add_key(self, name: str, public_key: str, *, actor: str) -> SigningKey:
        """Record a public key made elsewhere (remote `key create`); audited as key.created."""
        check_key_name(name)
        now = self._clock.now()
        key = SigningKey(name=name, public_key=public_key.strip(),
                         fingerprint=fingerprint(public_key), created_at=now, created_by=actor)
        with self._uow() as uow:
            uow.keys.add(key)
            uow.events.append(EventDraft(
                action="key.created", actor=actor, subject=f"key {name}",
                after={"name": name, "algorithm": key.algorithm,
                       "fingerprint": key.fingerprint}), at=now)
            uow.commit()
        return key

    def public_keys(self) -> list[SigningKey]:
        """Every recorded public key, by name."""
        with self._uow() as uow:
            return uow.keys.list()

    def key(self, name: str) -> SigningKey:
        with self._uow() as uow:
            return uow.keys.get(name)

    def sign_local(self, model: str, digest: str, *, key: str) -> str:
        """Sign (model, digest) with a private key kept here, after checking that its public
        half is the one the registry knows under that name."""
        recorded = self.key(key)
        if self._keyring.public_key(key) != recorded.public_key:
            raise PreconditionFailed(
                f"the local private key {key!r} does not match the public key the registry "
                f"records under that name (fingerprint {recorded.fingerprint})",
                fix="sign with the key file created for this registry, or create a new key")
        return self._keyring.sign(key, signing_message(model, digest))

    def seal(self, new: NewVersion, *, sign_with: str | None = None,
             signature: str | None = None, signed_by: str | None = None) -> NewVersion:
        """`new` with its signature: made here with `sign_with`, or made elsewhere and checked
        against the registry's public key of `signed_by`. Unchanged when neither is given."""
        if sign_with is not None:
            made = self.sign_local(new.model, new.manifest.digest, key=sign_with)
            return replace(new, signature=made, signed_by=sign_with)
        if signature is None and signed_by is None:
            return new
        if not signature or not signed_by:
            raise InvalidInput("a signature needs both 'signature' and 'signed_by'",
                               fix="send both, or neither for an unsigned version")
        self.key(signed_by)
        problem = self._signatures.verify(
            provisional(new, signature=signature, signed_by=signed_by, clock=self._clock),
            (signed_by,))
        if problem:
            raise InvalidInput(f"the signature of {new.model} by {signed_by!r} does not verify: "
                               f"{problem}", fix="sign the version digest again with the right "
                                                 "key (`register --sign-with NAME`)")
        return replace(new, signature=signature, signed_by=signed_by)

    def _refuse_taken(self, name: str) -> None:
        try:
            self.key(name)
        except NotFound:
            return
        raise AlreadyExists(f"a signing key named {name!r} already exists",
                            fix="choose another name; keys are never replaced, so old "
                                "signatures keep verifying", details={"key": name})
