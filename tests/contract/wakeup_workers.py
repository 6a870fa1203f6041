"""A replica's wake-up socket in a child process (spawned, so it must be importable)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lastgood.adapters.wakeups import DatagramSignal


def listen(folder: str, env: str, out: Any, stop: Any) -> None:
    """Bind a DatagramSignal in `folder` for `env`, say "ready", then say "woke" on every
    wake-up until `stop` is set; the socket is removed on the way out."""

    async def main() -> None:
        signal = DatagramSignal(Path(folder), env)
        first = asyncio.ensure_future(signal.wait(timeout_s=0, generation=None))
        await first  # binds the socket
        out.put(("ready", signal.path))
        try:
            while not stop.is_set():
                if await signal.wait(timeout_s=0.2, generation=None):
                    out.put(("woke", env))
        finally:
            await signal.aclose()
            out.put(("closed", signal.path))

    asyncio.run(main())
