"""`lastgood serve --engine ray`: one environment's replicas as a Ray Serve application.

Everything a replica needs is checked here first, before any replica takes traffic: Ray is
installed, the Ray address answers, the registry and the artifact store can be reached from
every node (a SQLite file or a local folder only when the cluster has one node).
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from lastgood.config import Settings
from lastgood.domain.errors import InvalidInput, TransientError

if TYPE_CHECKING:
    from collections.abc import Callable

    from lastgood.serving.server import ServingOptions

__all__ = ["RayRequest", "local_only_settings", "serve_ray"]

INSTALL = "pip install 'lastgood[ray]'"


@dataclass(frozen=True, slots=True)
class RayRequest:
    """Where Ray Serve's proxy listens, how many replicas, and which cluster."""

    env: str
    host: str
    port: int
    replicas: int  # with min_replicas below it: the most Ray's autoscaling may run
    options: ServingOptions
    address: str | None = None  # None: start a local Ray instance for this command
    min_replicas: int | None = None  # set and below `replicas`: Ray autoscales between them

    def scaling(self) -> dict[str, Any]:
        """The deployment's replica options for Ray Serve: a count, or an autoscaling range."""
        if self.min_replicas is None or self.min_replicas >= self.replicas:
            return {"num_replicas": self.replicas}
        # a replica added under load is warm before Ray routes to it, so scaling up early
        # costs nothing in failed requests
        return {"autoscaling_config": {"min_replicas": self.min_replicas,
                                       "max_replicas": self.replicas,
                                       "target_ongoing_requests": 2,
                                       "upscale_delay_s": 3, "downscale_delay_s": 60}}


def import_ray() -> Any:
    """The `ray` module, or one line naming the extra that installs it."""
    try:
        import ray
        import ray.serve
    except ImportError as exc:
        raise InvalidInput("Ray Serve is not installed", fix=INSTALL) from exc
    return ray


def check_address(address: str, *, timeout_s: float = 3.0) -> None:
    """Refuse, before Ray's own long retries, a `host:port` (or ray://) that does not answer."""
    if address in ("auto", "local"):
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    if not parts.hostname or not parts.port:
        raise InvalidInput(f"--ray-address {address!r} is not host:port",
                           fix="pass the head node's GCS address, e.g. 10.0.0.5:6379, "
                               "or 'auto' on a node of the cluster")
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise TransientError(f"the Ray cluster at --ray-address {address} does not answer: "
                             f"{exc.strerror or exc}",
                             fix="start it (`ray start --head`) or pass the right address"
                             ) from exc


def local_only_settings(settings: Settings) -> list[str]:
    """The settings a replica on another node could not use (a file or folder of this one)."""
    problems = []
    if settings.db_url.startswith("sqlite"):
        problems.append(f"LASTGOOD_DB_URL is a SQLite file ({settings.db_url})")
    if "://" not in settings.store_url or settings.store_url.startswith("file://"):
        problems.append(f"LASTGOOD_STORE_URL is a local folder ({settings.store_url})")
    return problems


def _check_cluster(ray: Any, settings: Settings) -> None:
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    problems = local_only_settings(settings)
    if len(nodes) > 1 and problems:
        raise InvalidInput(f"the Ray cluster has {len(nodes)} nodes but "
                           f"{' and '.join(problems)}: replicas on the other nodes cannot "
                           f"reach it",
                           fix="set LASTGOOD_DB_URL to PostgreSQL and LASTGOOD_STORE_URL to "
                               "an s3:// prefix (LASTGOOD_S3_ENDPOINT_URL for an "
                               "S3-compatible server)")


def serve_ray(settings: Settings, request: RayRequest, *,
              announce: Callable[[str], None] | None = None) -> None:
    """Run `request.env` on Ray Serve until SIGINT/SIGTERM (blocking)."""
    ray = import_ray()
    if request.address:
        check_address(request.address)
    from ray import serve

    from lastgood.bootstrap.ray_replica import REPLICA, RaySpec

    # without an address this command starts (and at the end stops) a local Ray instance;
    # with one, it deploys the application there and deletes only its own application
    ray.init(address=request.address, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    name = f"lastgood-{request.env}"
    try:
        _check_cluster(ray, settings)
        serve.start(http_options={"host": request.host, "port": request.port})
        app = REPLICA.options(**request.scaling()).bind(
            RaySpec(env=request.env, settings=settings, options=request.options,
                    direct_host=None if request.address else _local_node_ip(request.host)))
        try:
            serve.run(app, name=name, route_prefix="/", blocking=False)
        except RuntimeError as exc:  # Ray: "Deploying app ... failed ..."
            first = str(exc).strip().splitlines()[-1][:500]
            raise TransientError(f"the Ray replicas of {request.env} did not start: {first}",
                                 fix="see `ray logs` or the replica's log; check "
                                     "LASTGOOD_DB_URL and LASTGOOD_STORE_URL from the nodes"
                                 ) from exc
        count = (f"{request.min_replicas}-{request.replicas}" if "autoscaling_config"
                 in request.scaling() else str(request.replicas))
        (announce or _to_stderr)(f"serving {request.env} through Ray Serve on "
                                 f"http://{request.host}:{request.port} with {count} replica(s)")
        _wait_for_stop()
    finally:
        _shutdown(ray, serve, name, owns_cluster=request.address is None)


def _local_node_ip(host: str) -> str:
    """Where the replicas of a local Ray instance answer directly: loopback unless the proxy
    listens beyond it, so the watch reads their counters on this host."""
    return "127.0.0.1" if host in ("127.0.0.1", "localhost", "::1") else host


def _to_stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _wait_for_stop() -> None:
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set())
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _shutdown(ray: Any, serve: Any, name: str, *, owns_cluster: bool) -> None:
    import contextlib

    with contextlib.suppress(Exception):
        serve.delete(name)  # each replica reports `stopped` as it goes
    if owns_cluster:
        with contextlib.suppress(Exception):
            serve.shutdown()
    ray.shutdown()
