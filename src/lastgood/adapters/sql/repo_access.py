"""API tokens and signing keys in SQL (revision 0002)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from lastgood.adapters import registry_rules as ac
from lastgood.adapters.sql.rows import Row
from lastgood.adapters.sql.session import Tx
from lastgood.adapters.sql.tables import api_tokens, signing_keys
from lastgood.domain.access import ApiToken, Role, SigningKey


def _token_row(t: ApiToken) -> dict[str, Any]:
    return {"id": t.id, "owner": t.owner, "role": t.role.label, "token_hash": t.token_hash,
            "created_at": t.created_at, "created_by": t.created_by,
            "expires_at": t.expires_at, "revoked_at": t.revoked_at}


def _to_token(row: Row) -> ApiToken:
    return ApiToken(id=row["id"], owner=row["owner"], role=Role.parse(row["role"]),
                    token_hash=row["token_hash"], created_at=row["created_at"],
                    created_by=row["created_by"], expires_at=row["expires_at"],
                    revoked_at=row["revoked_at"])


def _to_key(row: Row) -> SigningKey:
    return SigningKey(name=row["name"], public_key=row["public_key"],
                      fingerprint=row["fingerprint"], created_at=row["created_at"],
                      created_by=row["created_by"], algorithm=row["algorithm"])


class SqlTokens:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def add(self, token: ApiToken) -> None:
        taken = self._tx.execute(select(api_tokens.c.id).where(api_tokens.c.id == token.id))
        if taken.first() is not None:
            raise ac.duplicate_token(token.id)
        self._tx.execute(api_tokens.insert().values(**_token_row(token)))

    def by_hash(self, token_hash: str) -> ApiToken | None:
        row = self._tx.execute(
            select(api_tokens).where(api_tokens.c.token_hash == token_hash)).first()
        return None if row is None else _to_token(row._mapping)

    def get(self, token_id: str) -> ApiToken:
        row = self._tx.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
        if row is None:
            raise ac.unknown_token(token_id)
        return _to_token(row._mapping)

    def list(self) -> list[ApiToken]:
        query = select(api_tokens).order_by(api_tokens.c.created_at, api_tokens.c.id)
        return [_to_token(r._mapping) for r in self._tx.execute(query)]

    def revoke(self, token_id: str, *, at: datetime) -> ApiToken:
        token = self.get(token_id)
        if token.revoked_at is None:
            self._tx.execute(api_tokens.update().where(api_tokens.c.id == token_id)
                             .values(revoked_at=at))
            token = self.get(token_id)
        return token


class SqlKeys:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def add(self, key: SigningKey) -> None:
        taken = self._tx.execute(select(signing_keys.c.name)
                                 .where(signing_keys.c.name == key.name)).first()
        if taken is not None:
            raise ac.duplicate_key(key.name)
        self._tx.execute(signing_keys.insert().values(
            name=key.name, algorithm=key.algorithm, public_key=key.public_key,
            fingerprint=key.fingerprint, created_at=key.created_at, created_by=key.created_by))

    def get(self, name: str) -> SigningKey:
        row = self._tx.execute(select(signing_keys).where(signing_keys.c.name == name)).first()
        if row is None:
            known = self._tx.execute(select(signing_keys.c.name)).scalars().all()
            raise ac.unknown_key(name, known)
        return _to_key(row._mapping)

    def list(self) -> list[SigningKey]:
        query = select(signing_keys).order_by(signing_keys.c.name)
        return [_to_key(r._mapping) for r in self._tx.execute(query)]
