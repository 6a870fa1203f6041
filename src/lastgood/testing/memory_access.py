"""In-memory token and signing-key repositories, over the dicts of a MemoryRegistry's tables."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from lastgood.adapters import registry_rules as ac
from lastgood.adapters.registry_rules import utc
from lastgood.domain.access import ApiToken, SigningKey


class MemoryTokens:
    def __init__(self, rows: dict[str, ApiToken]) -> None:
        self._rows = rows

    def add(self, token: ApiToken) -> None:
        if token.id in self._rows:
            raise ac.duplicate_token(token.id)
        self._rows[token.id] = token

    def by_hash(self, token_hash: str) -> ApiToken | None:
        return next((t for t in self._rows.values() if t.token_hash == token_hash), None)

    def get(self, token_id: str) -> ApiToken:
        if token_id not in self._rows:
            raise ac.unknown_token(token_id)
        return self._rows[token_id]

    def list(self) -> list[ApiToken]:
        return sorted(self._rows.values(), key=lambda t: (t.created_at, t.id))

    def revoke(self, token_id: str, *, at: datetime) -> ApiToken:
        token = self.get(token_id)
        if token.revoked_at is None:
            token = replace(token, revoked_at=utc(at))
            self._rows[token_id] = token
        return token


class MemoryKeys:
    def __init__(self, rows: dict[str, SigningKey]) -> None:
        self._rows = rows

    def add(self, key: SigningKey) -> None:
        if key.name in self._rows:
            raise ac.duplicate_key(key.name)
        self._rows[key.name] = key

    def get(self, name: str) -> SigningKey:
        if name not in self._rows:
            raise ac.unknown_key(name, self._rows)
        return self._rows[name]

    def list(self) -> list[SigningKey]:
        return [self._rows[n] for n in sorted(self._rows)]
