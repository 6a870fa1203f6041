"""Run several ASGI apps (control plane, serving replica) in one process until SIGINT/SIGTERM.

Sockets are bound before anything starts, so a port in use is one clear error, not a uvicorn
exit; when one server stops, all stop.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from typing import Any

import uvicorn

from lastgood.domain.errors import InvalidInput

Listen = tuple[Any, str, int]  # (ASGI app, host, port)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; InvalidInput naming the fix when the address cannot be used."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror}",
                           fix="choose another --port, or stop what uses it") from exc
    sock.listen(2048)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve_apps(listen: Sequence[Listen], *,
               announce: Callable[[str], None] | None = None) -> None:
    """Serve each app on its address; `announce` gets the first one's URL once bound."""
    sockets = [bind(host, port) for _, host, port in listen]
    servers = [uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                             lifespan="auto", ws="none",
                                             timeout_graceful_shutdown=5))
               for app, _, _ in listen]
    if announce is not None:
        announce(url_of(sockets[0]))
    asyncio.run(_serve_all(servers, sockets))


async def _serve_all(servers: list[uvicorn.Server], sockets: list[socket.socket]) -> None:
    tasks = [asyncio.create_task(s.serve(sockets=[sock]))
             for s, sock in zip(servers, sockets, strict=True)]
    while not all(t.done() for t in tasks):
        if any(s.should_exit for s in servers) or any(t.done() for t in tasks):
            for server in servers:
                server.should_exit = True
        await asyncio.sleep(0.1)
    for task in tasks:
        task.result()
