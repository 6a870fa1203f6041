"""Access control: API tokens (stored as sha256 hashes), authentication and authorisation.

Every denial is written to the audit trail with outcome "refused", so the evidence of who tried
what survives even when nothing changed. A token's secret is returned once, at creation.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from lastgood.domain.access import (
    REQUIRED_ROLE,
    Action,
    ApiToken,
    Principal,
    Role,
    allows,
    check_owner,
)
from lastgood.domain.audit import EventDraft
from lastgood.domain.errors import Forbidden, InvalidInput, LastGoodError, Unauthorized
from lastgood.ports import Clock, UnitOfWorkFactory
from lastgood.services.http_statuses import error_name

TOKEN_PREFIX = "lgt_"
MAX_LIFETIME_S = 100 * 365 * 86400.0  # beyond this a datetime would overflow; nobody needs it
ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token: its stored record and the secret, which is shown this once only."""

    record: ApiToken
    secret: str


def hash_token(secret: str) -> str:
    """What the registry keeps of a token. Tokens carry 256 random bits, so one sha256 suffices."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _unauthorized(problem: str) -> Unauthorized:
    return Unauthorized(problem, fix="send `Authorization: Bearer <token>` with a valid token "
                                     "(LASTGOOD_TOKEN for the CLI); an admin creates one with "
                                     "`lastgood token create NAME --role ROLE`")


class AccessService:
    """Create, list and revoke tokens; authenticate callers and authorise their actions."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock):
        self._uow, self._clock = uow, clock

    # -- tokens ------------------------------------------------------------------------------

    def create_token(self, owner: str, *, role: Role, actor: str,
                     expires_in_s: float | None = None) -> IssuedToken:
        """Issue a token for `owner`; audited as token.created (without the secret)."""
        check_owner(owner)
        if expires_in_s is not None and not 0 < expires_in_s <= MAX_LIFETIME_S:
            raise InvalidInput(f"token lifetime {expires_in_s!r} s is not between 0 and 100 years",
                               fix="give a lifetime such as 90d, 12h or 30m, or none")
        now = self._clock.now()
        token_id = secrets.token_hex(6)
        secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        record = ApiToken(id=token_id, owner=owner, role=role, token_hash=hash_token(secret),
                          created_at=now, created_by=actor,
                          expires_at=now + timedelta(seconds=expires_in_s)
                          if expires_in_s is not None else None)
        with self._uow() as uow:
            uow.tokens.add(record)
            uow.events.append(EventDraft(
                action="token.created", actor=actor, subject=f"token {token_id}",
                after={"id": token_id, "owner": owner, "role": role.label,
                       "expires_at": record.expires_at.isoformat() if record.expires_at
                       else None}), at=now)
            uow.commit()
        return IssuedToken(record, secret)

    def tokens(self) -> list[ApiToken]:
        """Every token record, oldest first."""
        with self._uow() as uow:
            return uow.tokens.list()

    def revoke_token(self, token_id: str, *, actor: str) -> ApiToken:
        """Revoke a token for good; audited as token.revoked."""
        now = self._clock.now()
        with self._uow() as uow:
            before = uow.tokens.get(token_id)
            after = uow.tokens.revoke(token_id, at=now)
            if before.revoked_at is None:
                uow.events.append(EventDraft(
                    action="token.revoked", actor=actor, subject=f"token {token_id}",
                    before={"revoked": False}, after={"revoked": True, "owner": after.owner,
                                                      "role": after.role.label}), at=now)
            uow.commit()
            return after

    # -- authentication and authorisation ---------------------------------------------------

    def authenticate(self, secret: str | None, *, request: str = "") -> Principal:
        """The principal a token stands for; Unauthorized (audited) for a missing, unknown,
        expired or revoked token."""
        if not secret:
            raise self.record_refusal(_unauthorized("no API token given"), ANONYMOUS, request)
        with self._uow() as uow:
            token = uow.tokens.by_hash(hash_token(secret))
        if token is None:
            raise self.record_refusal(_unauthorized("unknown API token"), ANONYMOUS, request)
        problem = token.problem(self._clock.now())
        if problem:
            raise self.record_refusal(_unauthorized(problem), token.owner, request,
                                token_id=token.id)
        return Principal(owner=token.owner, role=token.role, token_id=token.id)

    def authorize(self, principal: Principal, action: Action, *, model: str | None = None,
                  env: str | None = None, request: str = "") -> None:
        """Return if the principal's role allows `action`, else raise Forbidden (audited)."""
        if allows(principal.role, action):
            return
        needed = REQUIRED_ROLE[action]
        error = Forbidden(
            f"{principal.owner} has the {principal.role.label} role; {action} needs "
            f"{needed.label}", fix=f"ask an admin for a token with the {needed.label} role")
        raise self.record_refusal(error, principal.owner, request,
                                  token_id=principal.token_id, action=str(action), model=model,
                                  env=env, role=principal.role.label, needs=needed.label)

    def record_refusal(self, error: LastGoodError, actor: str, request: str, *,
                       token_id: str | None = None, action: str = "auth",
                       model: str | None = None, env: str | None = None,
                       **extra: str) -> LastGoodError:
        """Write a refusal (`<action>.refused`, outcome "refused") to the audit trail and hand
        the error back to raise; a registry that is down does not hide the refusal."""
        evidence = {"error": error_name(error), "request": request, "token_id": token_id,
                    **extra}
        try:
            with self._uow() as uow:
                uow.events.append(EventDraft(
                    action=f"{action}.refused", actor=actor, model=model, env=env,
                    reason=error.message, outcome="refused", evidence=evidence),
                    at=self._clock.now())
                uow.commit()
        except LastGoodError:
            pass  # the registry is down: the caller still gets the denial
        return error


def parse_lifetime(text: str) -> float | None:
    """Seconds from `90d`, `12h`, `30m`, `45s` (or a bare number of days); None for `never`."""
    value = text.strip().lower()
    if value in ("", "never", "none"):
        return None
    units = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
    number, unit = (value[:-1], value[-1]) if value[-1] in units else (value, "d")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= MAX_LIFETIME_S:
        raise InvalidInput(f"token lifetime {text!r} is not a positive duration",
                           fix="write e.g. 90d, 12h, 30m or never")
    return seconds
