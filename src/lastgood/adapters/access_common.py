"""What every registry adapter (memory, SQL) says about tokens and signing keys."""

from __future__ import annotations

from collections.abc import Iterable

from lastgood.domain.errors import AlreadyExists, NotFound


def _names(known: Iterable[str]) -> str:
    names = sorted(known)
    return ", ".join(names) if names else "none yet"


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
