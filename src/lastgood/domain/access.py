"""Who may do what: roles, the actions they allow (a table), API tokens and signing keys.

A token is shown once and stored only as its sha256; a signing key's private half never enters
the registry, only its public key under a name that environments can trust.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum

from lastgood.domain.errors import InvalidInput

KEY_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
OWNER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._+-]{0,127}$")


class Role(IntEnum):
    """What a token may do; each role includes the ones below it."""

    VIEWER = 1  # read everything, plan a rollback (dry run)
    OPERATOR = 2  # deploy, verify, roll back, resume, register, retire, lift a quarantine
    ADMIN = 3  # tokens, environment policies, signing keys

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        """The role named `text` (viewer, operator, admin), else InvalidInput."""
        try:
            return cls[text.strip().upper()]
        except KeyError as exc:
            raise InvalidInput(f"unknown role {text!r}",
                               fix="use one of: viewer, operator, admin") from exc


class Action(StrEnum):
    """Something a caller asks the control plane to do."""

    READ = "read"  # list, show, status, history, events, audit, archives, stream
    PLAN = "plan"  # rollback dry run: changes nothing
    REGISTER = "register"
    RETIRE = "retire"
    LIFT_QUARANTINE = "lift_quarantine"  # make a quarantined version active again
    DEPLOY = "deploy"
    VERIFY = "verify"
    ROLLBACK = "rollback"
    RESUME = "resume"
    CONFIGURE = "configure"  # environment settings and policies
    MANAGE_TOKENS = "manage_tokens"
    MANAGE_KEYS = "manage_keys"


REQUIRED_ROLE: Mapping[Action, Role] = {
    Action.READ: Role.VIEWER,
    Action.PLAN: Role.VIEWER,
    Action.REGISTER: Role.OPERATOR,
    Action.RETIRE: Role.OPERATOR,
    Action.LIFT_QUARANTINE: Role.OPERATOR,
    Action.DEPLOY: Role.OPERATOR,
    Action.VERIFY: Role.OPERATOR,
    Action.ROLLBACK: Role.OPERATOR,
    Action.RESUME: Role.OPERATOR,
    Action.CONFIGURE: Role.ADMIN,
    Action.MANAGE_TOKENS: Role.ADMIN,
    Action.MANAGE_KEYS: Role.ADMIN,
}


def allows(role: Role, action: Action) -> bool:
    """Whether `role` may perform `action` (the table above, roles ordered)."""
    return role >= REQUIRED_ROLE[action]


def check_owner(owner: str) -> str:
    """Return a valid token owner (a person or a service account), else InvalidInput."""
    if not OWNER_PATTERN.match(owner):
        raise InvalidInput(f"invalid token owner {owner!r}",
                           fix="use letters, digits and @ . _ + - (e.g. alice or ci-bot)")
    return owner


def check_key_name(name: str) -> str:
    """Return a valid signing key name, else InvalidInput."""
    if not KEY_NAME_PATTERN.match(name):
        raise InvalidInput(f"invalid key name {name!r}",
                           fix="use lowercase letters, digits, '.', '_' or '-' (e.g. ci-release)")
    return name


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A token's stored record: never the secret itself, only its sha256."""

    id: str
    owner: str
    role: Role
    token_hash: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def problem(self, now: datetime) -> str:
        """Why the token cannot be used at `now` ("" when it can)."""
        if self.revoked_at is not None:
            return f"token {self.id} was revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return f"token {self.id} expired at {self.expires_at.isoformat()}"
        return ""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the owner recorded as the actor in the audit trail, and their role."""

    owner: str
    role: Role
    token_id: str | None = None  # None for local use of the embedded registry


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A named ed25519 public key that environments may trust."""

    name: str
    public_key: str  # base64 of the 32 raw bytes
    fingerprint: str  # first 16 hex of sha256(public key bytes)
    created_at: datetime
    created_by: str
    algorithm: str = "ed25519"


def signing_message(model: str, digest: str) -> bytes:
    """The bytes a version signature covers: the model's name and the version digest.

    Binding the name means a signature made for one model cannot vouch for another.
    """
    return f"lastgood-version-signature/1\n{model}\n{digest}\n".encode()
