"""Loopback helpers shared by the tests that start real servers."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from lastgood.serving.server import bind_socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[Any], *, signum: int = signal.SIGTERM,
         timeout_s: float = 30) -> tuple[Any, Any]:
    """Ask `process` to stop with `signum` and collect its output; kill it past `timeout_s`."""
    process.send_signal(signum)
    try:
        return process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate(timeout=10)


def wait_for(predicate: Callable[[], bool], *, timeout_s: float = 30.0, poll_s: float = 0.05,
             retry_on: type[Exception] = httpx.TransportError) -> bool:
    """True once `predicate()` holds; a `retry_on` error counts as not yet. False at timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except retry_on:
            pass
        time.sleep(poll_s)
    return False


@contextmanager
def running(app: Any) -> Iterator[str]:
    """`app` on a real uvicorn on a loopback port bound before it starts, in a thread."""
    sock = bind_socket("127.0.0.1", 0, reuse_port=False)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", ws="none"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                              daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: server.started, timeout_s=20), "server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
