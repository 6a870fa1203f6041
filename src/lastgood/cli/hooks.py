"""What the CLI needs from the composition root besides the services: running the server.

The CLI may not import the API (faces are siblings), so `lastgood server` calls a `ServerRunner`
that `lastgood.bootstrap` passes in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lastgood.config import Settings
from lastgood.domain.errors import PreconditionFailed


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Where `lastgood server` listens, and whether it also serves predictions."""

    host: str = "127.0.0.1"
    port: int = 8000
    with_serving: str | None = None  # an env: also run a serving replica for it
    serving_port: int = 8080
    announce: Callable[[str], None] | None = None  # told the URL once the server listens
    sync_mlflow_s: float | None = None  # also sync, follow and mirror MLflow every N seconds


ServerRunner = Callable[[Settings, ServerOptions], None]


def no_server(settings: Settings, options: ServerOptions) -> None:
    """The runner of a CLI built without a composition root (tests of the command tree)."""
    raise PreconditionFailed("this lastgood command tree cannot start a server",
                             fix="run the installed `lastgood` command")
