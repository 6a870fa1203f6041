"""ed25519 with `cryptography`: private keys as 0600 files, and signature checks for preflight.

`FileKeyRing` keeps private keys under a directory (by default $LASTGOOD_HOME/keys, mode 0700),
one PKCS#8 PEM file per key, created with O_EXCL so an existing key is never overwritten.
`Ed25519Signatures` checks a version's signature against the public key the registry records
under the signer's name, and only for names the environment trusts.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lastgood.domain.access import check_key_name, signing_message
from lastgood.domain.errors import AlreadyExists, InvalidInput, LastGoodError, NotFound
from lastgood.domain.versions import Version
from lastgood.ports import UnitOfWorkFactory

if TYPE_CHECKING:  # `cryptography` is imported where a key is used: most commands use none
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def _public_b64(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


class FileKeyRing:
    """Private ed25519 keys as files `<folder>/<name>.key` readable only by their owner."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, name: str) -> Path:
        return self.folder / f"{check_key_name(name)}.key"

    def discard(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def create(self, name: str) -> str:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        path = self.path(name)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise AlreadyExists(f"a private key file {str(path)!r} already exists",
                                fix="choose another key name; never overwrite a signing key"
                                ) from exc
        except OSError as exc:
            raise InvalidInput(f"cannot write the key file {str(path)!r}: {exc.strerror}",
                               fix="check LASTGOOD_HOME is writable") from exc
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        return _public_b64(key)

    def _load(self, name: str) -> Ed25519PrivateKey:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        path = self.path(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"no private key {name!r} in {str(self.folder)!r}",
                           fix="sign on the machine where `lastgood key create` made it, or "
                               "set LASTGOOD_HOME to that folder") from exc
        except OSError as exc:
            raise InvalidInput(f"cannot read the key file {str(path)!r}: {exc.strerror}",
                               fix="check the file's permissions") from exc
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"the key file {str(path)!r} is not an unencrypted PEM key",
                               fix="restore it from a backup or create a new key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidInput(f"the key file {str(path)!r} is not an ed25519 key",
                               fix="create keys with `lastgood key create`")
        return key

    def public_key(self, name: str) -> str:
        return _public_b64(self._load(name))

    def sign(self, name: str, message: bytes) -> str:
        return base64.b64encode(self._load(name).sign(message)).decode()


def verify_signature(public_key: str, message: bytes, signature: str) -> str | None:
    """None if `signature` (base64) is `public_key`'s ed25519 signature of `message`, else why."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        raw_key = base64.b64decode(public_key, validate=True)
        raw_sig = base64.b64decode(signature, validate=True)
        Ed25519PublicKey.from_public_bytes(raw_key).verify(raw_sig, message)
    except (binascii.Error, ValueError):
        return "the signature or public key is not well-formed base64 ed25519"
    except InvalidSignature:
        return "the signature does not match the version digest (forged, or made for other bytes)"
    return None


class Ed25519Signatures:
    """The `Signatures` port: a valid signature of (model, digest) by a trusted, known key."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def verify(self, version: Version, trusted_keys: Sequence[str]) -> str | None:
        if not version.signature or not version.signed_by:
            return f"{version.ref} is not signed"
        if version.signed_by not in trusted_keys:
            trusted = ", ".join(trusted_keys) or "none"
            return (f"{version.ref} is signed by {version.signed_by!r}, which this environment "
                    f"does not trust (trusted: {trusted})")
        try:
            with self._uow() as uow:
                key = uow.keys.get(version.signed_by)
        except LastGoodError as exc:
            return f"cannot check the signature: {exc.message}"
        problem = verify_signature(key.public_key,
                                   signing_message(version.model, version.digest),
                                   version.signature)
        return f"{version.ref}: {problem}" if problem else None
