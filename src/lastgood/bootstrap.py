"""The composition root: the only module that wires real adapters into services.

`open_services()` picks the adapters from Settings (SQLite + local directory by default,
PostgreSQL and S3 by URL); `main()` is the `lastgood` console script.
"""

from __future__ import annotations

from lastgood.config import Settings, load_settings
from lastgood.domain.operations import Phase
from lastgood.services.container import Ports, Services, wire
from lastgood.services.operations import EngineSettings

__all__ = ["Ports", "Services", "main", "open_services", "wire"]


def open_services(settings: Settings | None = None) -> Services:
    """The real adapters chosen by Settings, wired into services."""
    from lastgood.adapters.artifacts.factory import open_artifact_store
    from lastgood.adapters.clock import SystemClock
    from lastgood.adapters.commands import SubprocessCommands
    from lastgood.adapters.formats import LocalModelFormats
    from lastgood.adapters.host import LocalHost
    from lastgood.adapters.keys import Ed25519Signatures, FileKeyRing
    from lastgood.adapters.null import NoEvidence, NoVerifier
    from lastgood.adapters.smoke import SubprocessSmoke
    from lastgood.adapters.sql.registry import open_registry

    settings = settings or load_settings()
    store = open_artifact_store(settings.store_url,
                                endpoint_url=settings.s3_endpoint_url or None)
    registry = open_registry(settings.db_url)
    return wire(Ports(
        uow=registry, store=store, formats=LocalModelFormats(),
        host=LocalHost(), clock=SystemClock(), commands=SubprocessCommands(),
        smoke=SubprocessSmoke(store), signatures=Ed25519Signatures(registry),
        keyring=FileKeyRing(settings.home / "keys"), verifier=NoVerifier(),
        evidence=NoEvidence(), engine_settings=EngineSettings(
            lease_ttl_s=settings.lease_ttl_s,
            halt_after=Phase(settings.halt_after) if settings.halt_after else None),
        smoke_enabled=settings.smoke_test))


def main() -> None:
    """The `lastgood` console script."""
    from lastgood.cli.main import build_cli

    build_cli(lambda settings: open_services(settings))(prog_name="lastgood")
