"""What the registry adapter and the in-memory fake share: their errors, time and JSON rules.

Keeping the messages here means the fake and the adapter say exactly the same thing, so a test
written against one holds for the other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from lastgood.domain.errors import (
    AlreadyExists,
    Conflict,
    LastGoodError,
    NotFound,
    OperationInProgress,
    TransientError,
)

NOTIFY_CHANNEL = "lastgood_desired"
"""PostgreSQL channel notified with an env's name whenever its desired state changes.

Serving replicas LISTEN on it to reconcile at once instead of waiting for the next poll.
"""

SCHEMA_REVISION = "0005_history_columns"
"""The registry schema the adapter speaks: the newest migration (a test keeps them equal)."""


def utc(at: datetime) -> datetime:
    """`at` in UTC; a naive datetime is a programming error (the clock is always tz-aware)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: pass a timezone-aware UTC time (Clock.now())")
    return at.astimezone(UTC)


def expiry(now: datetime, ttl_s: float) -> datetime:
    """When a lease taken at `now` for `ttl_s` seconds runs out."""
    return utc(now) + timedelta(seconds=ttl_s)


def _names(known: Iterable[str]) -> str:
    names = sorted(known)
    return ", ".join(names) if names else "none yet"


def unknown_model(name: str, known: Iterable[str]) -> NotFound:
    return NotFound(f"unknown model {name!r}",
                    fix=f"known models: {_names(known)}; register one with `lastgood register`",
                    details={"model": name})


def unknown_version(model: str, ref: int | str, latest: int) -> NotFound:
    what = f"version {ref}" if isinstance(ref, int) else f"version tagged {ref!r}"
    span = f"its versions are 1..{latest}" if latest else "it has no versions yet"
    return NotFound(f"model {model!r} has no {what}",
                    fix=f"{span}; list them with `lastgood versions {model}`",
                    details={"model": model, "ref": ref})


def duplicate_tag(model: str, tag: str, number: int | None) -> AlreadyExists:
    which = f" (#{number})" if number is not None else ""
    return AlreadyExists(f"model {model!r} already has a version tagged {tag!r}{which}",
                         fix="choose another tag (tags are never reused) or omit the tag",
                         details={"model": model, "tag": tag, "number": number})


def unknown_env(name: str, known: Iterable[str]) -> NotFound:
    return NotFound(f"unknown environment {name!r}",
                    fix=f"known environments: {_names(known)}; "
                        "create one with `lastgood env set NAME`",
                    details={"env": name})


def unknown_deployment(deployment_id: int) -> NotFound:
    return NotFound(f"no deployment #{deployment_id}",
                    fix="see the deployment ids with `lastgood history MODEL --env ENV`",
                    details={"deployment_id": deployment_id})


def deployment_ended(deployment_id: int) -> Conflict:
    return Conflict(f"deployment #{deployment_id} has already ended",
                    fix="reload the live deployment and retry",
                    details={"deployment_id": deployment_id})


def unknown_operation(op_id: str) -> NotFound:
    return NotFound(f"no operation {op_id!r}",
                    fix="see recent operations with `lastgood ops`",
                    details={"operation_id": op_id})


def unknown_archive(archive_id: str) -> NotFound:
    return NotFound(f"no archive {archive_id!r}",
                    fix="see archived bundles with `lastgood archive list`",
                    details={"archive_id": archive_id})


def duplicate_archive(archive_id: str) -> AlreadyExists:
    return AlreadyExists(f"archive {archive_id!r} already exists",
                         fix="archives are immutable: write the bundle under a new id",
                         details={"archive_id": archive_id})


def lease_held(key: str, holder: str, expires_at: datetime) -> OperationInProgress:
    until = utc(expires_at).strftime("%Y-%m-%dT%H:%M:%SZ")
    return OperationInProgress(
        f"{key} is locked by {holder} until {until}",
        fix="wait for that operation to finish (`lastgood ops`), or retry after the lease expires",
        details={"key": key, "holder": holder, "expires_at": until},
    )


def unknown_token(token_id: str) -> NotFound:
    return NotFound(f"no token {token_id!r}",
                    fix="see the token ids with `lastgood token list`",
                    details={"token_id": token_id})


def unknown_key(name: str, known: Iterable[str]) -> NotFound:
    return NotFound(f"unknown signing key {name!r}",
                    fix=f"known keys: {_names(known)}; create one with `lastgood key create NAME`",
                    details={"key": name})


def duplicate_key(name: str) -> AlreadyExists:
    return AlreadyExists(f"a signing key named {name!r} already exists",
                         fix="choose another name; keys are never replaced, so old signatures "
                             "keep verifying",
                         details={"key": name})


def duplicate_token(token_id: str) -> AlreadyExists:
    return AlreadyExists(f"token id {token_id!r} already exists",
                         fix="create the token again (a new id is drawn)",
                         details={"token_id": token_id})


# -- what a database's own errors become (the SQL adapters translate into these) --------------

def dump_json(value: Any) -> str:
    """The text stored for a JSON value; `default=str` matches the audit hash's canonical form."""
    return json.dumps(value, default=str, sort_keys=True)


def refused_change(text: str, state: str = "") -> LastGoodError:
    """A constraint the database enforced (`text` is its first line, `state` its SQLSTATE)."""
    if state == "23505" or "UNIQUE constraint failed" in text:
        return AlreadyExists(f"already registered: {text}", fix="use another name, tag or id")
    if state == "23503" or "FOREIGN KEY constraint failed" in text:
        return NotFound(f"refers to something that does not exist: {text}",
                        fix="register the model version first")
    return Conflict(f"the registry refused the change: {text}", fix="reload and retry")


def transient_abort(text: str) -> TransientError:
    """A serialization failure or deadlock the database resolved by aborting us."""
    return TransientError(f"the registry database aborted a conflicting transaction: {text}",
                          fix="retry")


def busy_database() -> TransientError:
    return TransientError("the registry database is busy (another lastgood process is writing)",
                          fix="retry in a moment")


def unreachable_database(shown_url: str) -> TransientError:
    """`shown_url` is the URL fit for messages (any password already masked)."""
    return TransientError(f"cannot reach the registry database at {shown_url}",
                          fix="check LASTGOOD_DB_URL / that the server runs",
                          details={"url": shown_url})


def database_error(text: str) -> LastGoodError:
    return LastGoodError(f"registry database error: {text}",
                         fix="check that the database was created by this lastgood version "
                             "(migrations run at start) and report the error if it persists")
