"""What the CLI is given by the composition root: a `World`.

The CLI parses, calls and renders; it builds nothing that touches an adapter. Opening the
control plane, running servers and replicas, building the watch and reading policy files are
done by `lastgood.bootstrap`, which passes its world to `build_cli`. `NoWorld` is the world of a
command tree built without a root (tests of the command tree): it refuses everything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lastgood.config import Settings
from lastgood.domain.errors import PreconditionFailed

if TYPE_CHECKING:  # the types only: `lastgood --help` imports none of them
    from starlette.applications import Starlette

    from lastgood.domain.health import HealthPolicy
    from lastgood.ports import MetricSource
    from lastgood.services.container import Services
    from lastgood.services.faces import ControlPlane
    from lastgood.services.watch_setup import BuiltWatch, WatchOptions
    from lastgood.serving.server import ServingOptions

@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Where `lastgood server` listens, and whether it also serves predictions."""

    host: str = "127.0.0.1"
    port: int = 8000
    with_serving: str | None = None  # an env: also run a serving replica for it
    serving_port: int = 8080
    announce: Callable[[str], None] | None = None  # told the URL once the server listens
    sync_mlflow_s: float | None = None  # also sync, follow and mirror MLflow every N seconds


@dataclass(frozen=True, slots=True)
class ServeRequest:
    """`lastgood serve`: one environment's replicas, and the watch inside when asked."""

    env: str
    host: str
    port: int
    workers: int
    options: ServingOptions
    watch: WatchOptions | None = None
    engine: str = "process"  # process: lastgood's own workers; ray: a Ray Serve application
    ray_address: str | None = None  # with the ray engine: the cluster (None: a local one)
    min_replicas: int = 1  # with the ray engine: below `workers`, Ray autoscales between them


@dataclass(frozen=True, slots=True)
class MetricRequest:
    """Where `lastgood watch` reads metrics: a kind of source and its URLs (empty: settings)."""

    kind: str | None = None
    gateways: tuple[str, ...] = ()
    prometheus_url: str | None = None


class World(Protocol):
    """Everything the CLI needs built for it (implemented by `lastgood.bootstrap`)."""

    def open(self, settings: Settings) -> ControlPlane:
        """The control plane at LASTGOOD_URL, else the local services."""
        ...

    def local(self, plane: ControlPlane) -> Services | None:
        """The local services behind `plane`; None when it is a remote control plane."""
        ...

    def run_server(self, settings: Settings, options: ServerOptions) -> None:
        """`lastgood server` (blocking)."""
        ...

    def serve(self, settings: Settings, services: Services, request: ServeRequest) -> None:
        """`lastgood serve` (blocking)."""
        ...

    def metric_source(self, settings: Settings, services: Services,
                      request: MetricRequest) -> MetricSource:
        """The metric source `lastgood watch` reads."""
        ...

    def build_watch(self, services: Services, source: MetricSource,
                    options: WatchOptions) -> BuiltWatch:
        """The watch over `source`, with the live verifier wired into the rollback engine."""
        ...

    def policies(self, path: Path, *, kind: str) -> tuple[HealthPolicy, ...]:
        """The policy file at `path`, checked against the signals of a `kind` of source."""
        ...

    def signals(self, kind: str) -> frozenset[str]:
        """The signals a kind of metric source provides."""
        ...

    def attach_watch(self, app: Starlette, services: Services, options: WatchOptions, *,
                     on_built: Callable[[BuiltWatch], None] | None = None) -> Starlette:
        """Run the watch in a thread of this serving app, on its own counters."""
        ...

    def demo_replica(self, services: Services, *, env: str, cache_dir: Path,
                     options: WatchOptions) -> AbstractContextManager[str]:
        """A serving replica with the watch inside, on a free loopback port; yields its URL."""
        ...


def _refuse() -> PreconditionFailed:
    return PreconditionFailed("this lastgood command tree cannot start a server",
                              fix="run the installed `lastgood` command")


class NoWorld:
    """The world of a CLI built without a composition root: every request is refused."""

    def open(self, settings: Settings) -> ControlPlane:
        raise _refuse()

    def local(self, plane: ControlPlane) -> Services | None:
        return None

    def run_server(self, settings: Settings, options: ServerOptions) -> None:
        raise _refuse()

    def serve(self, settings: Settings, services: Services, request: ServeRequest) -> None:
        raise _refuse()

    def metric_source(self, settings: Settings, services: Services,
                      request: MetricRequest) -> MetricSource:
        raise _refuse()

    def build_watch(self, services: Services, source: MetricSource,
                    options: WatchOptions) -> BuiltWatch:
        raise _refuse()

    def policies(self, path: Path, *, kind: str) -> tuple[HealthPolicy, ...]:
        raise _refuse()

    def signals(self, kind: str) -> frozenset[str]:
        raise _refuse()

    def attach_watch(self, app: Starlette, services: Services, options: WatchOptions, *,
                     on_built: Callable[[BuiltWatch], None] | None = None) -> Starlette:
        raise _refuse()

    @contextlib.contextmanager
    def demo_replica(self, services: Services, *, env: str, cache_dir: Path,
                     options: WatchOptions) -> Iterator[str]:
        raise _refuse()
        yield ""  # pragma: no cover - a generator that never yields


NO_WORLD: World = NoWorld()
