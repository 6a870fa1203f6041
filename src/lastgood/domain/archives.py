"""Archive records: the immutable forensic bundle of a failed deployment, as it is kept."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    """An immutable forensic bundle of a failed deployment, kept in the artifact store."""

    id: str
    model: str
    env: str
    version: int
    operation_id: str
    sha256: str
    size: int
    created_at: datetime
    manifest: Mapping[str, Any]
