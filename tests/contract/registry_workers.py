"""Code run in child processes by the registry's concurrency tests (spawned: importable)."""

from __future__ import annotations

from typing import Any

from lastgood.bootstrap.services import open_registry
from lastgood.domain.audit import EventDraft
from lastgood.testing import EPOCH, make_new_version


def register_once(url: str, start: Any, results: Any) -> None:
    """Open the registry by URL as the composition root opens it (migrating a new database),
    wait for every sibling, then register one version of `fraud`."""
    registry = open_registry(url)
    try:
        start.wait()
        with registry() as uow:
            version = uow.versions.add(make_new_version("fraud"), at=EPOCH, actor="worker")
            uow.events.append(EventDraft(action="register", actor="worker", model="fraud",
                                         subject=str(version.number)), at=EPOCH)
            uow.commit()
        results.put(version.number)
    except BaseException as exc:
        results.put(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        registry.dispose()

