"""The control plane under test: services over in-memory fakes with real model formats and real
signatures, its app, tokens of each role, and a synchronous client over httpx's ASGI transport."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from lastgood.adapters.formats import LocalModelFormats
from lastgood.adapters.null import NoEvidence
from lastgood.adapters.system.keys import Ed25519Signatures, FileKeyRing
from lastgood.api import ApiOptions, create_app
from lastgood.domain.access import Role
from lastgood.services.container import Ports, Services, wire
from lastgood.services.operations import EngineSettings
from lastgood.testing import FixedClock
from lastgood.testing.memory import MemoryRegistry
from lastgood.testing.memory_store import MemoryArtifactStore
from tests.unit.fake_lastgood import ScriptedCommands, ScriptedSmoke, ScriptedVerifier, StaticHost

MODEL, ENV = "iris", "production"


class Client:
    """Requests to an ASGI app in this process; app exceptions propagate (a 500 is a failure)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def __call__(self, method: str, path: str, *, token: str | None = None,
                 **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"

        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://lastgood") as c:
                return await c.request(method, path, headers=headers, **kwargs)

        return asyncio.run(send())


@dataclass
class ApiHarness:
    """Services, app, client and a token per role (owners: viewer-vic, operator-olga,
    admin-ada)."""

    keys_dir: Path
    options: ApiOptions = field(default_factory=ApiOptions)
    registry: MemoryRegistry = field(default_factory=MemoryRegistry)
    store: MemoryArtifactStore = field(default_factory=MemoryArtifactStore)
    clock: FixedClock = field(default_factory=FixedClock)
    tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.services: Services = wire(Ports(
            uow=self.registry, store=self.store, formats=LocalModelFormats(),
            host=StaticHost(numpy="2.0.0", scipy="1.13.0", skops="0.10.0"), clock=self.clock,
            commands=ScriptedCommands(), smoke=ScriptedSmoke(),
            signatures=Ed25519Signatures(self.registry), keyring=FileKeyRing(self.keys_dir),
            verifier=ScriptedVerifier(), evidence=NoEvidence(),
            engine_settings=EngineSettings(lease_ttl_s=30, replica_stale_s=15, poll_s=0.2)))
        self.app = create_app(self.services, options=self.options)
        self.call = Client(self.app)
        for owner, role in (("vic", Role.VIEWER), ("olga", Role.OPERATOR), ("ada", Role.ADMIN)):
            issued = self.services.access.create_token(owner, role=role, actor="root")
            self.tokens[role.label] = issued.secret

    def as_(self, role: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.call(method, f"/api/v1{path}", token=self.tokens[role], **kwargs)

    def upload(self, path: Path, *, role: str = "operator", **meta: Any) -> httpx.Response:
        import json

        with path.open("rb") as f:
            return self.as_(role, "POST", f"/models/{MODEL}/versions",
                            files=[("file", (path.name, f, "application/octet-stream"))],
                            data={"meta": json.dumps(meta)})

    def events(self) -> list[tuple[str, str, str]]:
        """(action, actor, outcome) of every audit event."""
        with self.registry() as uow:
            return [(e.action, e.actor, e.draft.outcome) for e in uow.events.list()]
