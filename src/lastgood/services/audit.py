"""Check and export the hash-chained audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterator

from lastgood.domain import codec
from lastgood.domain.audit import ChainReport, verify_chain
from lastgood.ports import UnitOfWorkFactory


class AuditService:
    """Verify the chain end to end; export it as JSON Lines."""

    def __init__(self, *, uow: UnitOfWorkFactory):
        self._uow = uow

    def verify(self) -> ChainReport:
        """Walk every event; the report names the first edited, missing or moved one."""
        with self._uow() as uow:
            return verify_chain(uow.events.scan(), head=uow.events.head())

    def head(self) -> int:
        """The sequence number of the newest event (0 for an empty log)."""
        with self._uow() as uow:
            return uow.events.head()[0]

    def export_lines(self) -> Iterator[str]:
        """Each event as one JSON line, in chain order."""
        with self._uow() as uow:
            for event in uow.events.scan():
                yield json.dumps(codec.event_to_json(event), sort_keys=True, default=str)
