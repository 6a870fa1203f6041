"""API tokens and signing keys in SQL (revision 0002)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from lastgood.adapters import registry_rows as rows
from lastgood.adapters import registry_rules as ac
from lastgood.adapters.sql.session import Tx
from lastgood.adapters.sql.tables import api_tokens, signing_keys
from lastgood.domain.access import ApiToken, SigningKey


class SqlTokens:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def add(self, token: ApiToken) -> None:
        taken = self._tx.execute(select(api_tokens.c.id).where(api_tokens.c.id == token.id))
        if taken.first() is not None:
            raise ac.duplicate_token(token.id)
        self._tx.execute(api_tokens.insert().values(**rows.token_row(token)))

    def by_hash(self, token_hash: str) -> ApiToken | None:
        row = self._tx.execute(
            select(api_tokens).where(api_tokens.c.token_hash == token_hash)).first()
        return None if row is None else rows.to_token(row._mapping)

    def get(self, token_id: str) -> ApiToken:
        row = self._tx.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
        if row is None:
            raise ac.unknown_token(token_id)
        return rows.to_token(row._mapping)

    def list(self) -> list[ApiToken]:
        query = select(api_tokens).order_by(api_tokens.c.created_at, api_tokens.c.id)
        return [rows.to_token(r._mapping) for r in self._tx.execute(query)]

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
        self._tx.execute(signing_keys.insert().values(**rows.key_row(key)))

    def get(self, name: str) -> SigningKey:
        row = self._tx.execute(select(signing_keys).where(signing_keys.c.name == name)).first()
        if row is None:
            known = self._tx.execute(select(signing_keys.c.name)).scalars().all()
            raise ac.unknown_key(name, known)
        return rows.to_key(row._mapping)

    def list(self) -> list[SigningKey]:
        query = select(signing_keys).order_by(signing_keys.c.name)
        return [rows.to_key(r._mapping) for r in self._tx.execute(query)]
