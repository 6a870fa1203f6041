"""Run a team's deploy commands and custom checks: shell commands or Python entry points."""

from __future__ import annotations

import importlib
import os
import subprocess
import time
from collections.abc import Mapping
from typing import Any

from lastgood.domain.operations import CommandResult

MAX_OUTPUT = 64 * 1024


class SubprocessCommands:
    """Shell commands in a subprocess; entry points imported and called in this process."""

    def run(self, command: str, *, env: Mapping[str, str], timeout_s: float) -> CommandResult:
        start = time.perf_counter()
        try:
            done = subprocess.run(command, shell=True, env={**os.environ, **env},
                                  capture_output=True, text=True, timeout=timeout_s,
                                  check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout if isinstance(exc.stdout, str) else ""
            return CommandResult(124, out[-MAX_OUTPUT:], _ms(start), timed_out=True)
        output = (done.stdout + done.stderr)[-MAX_OUTPUT:]
        return CommandResult(done.returncode, output, _ms(start))

    def call(self, entry_point: str, payload: Mapping[str, Any], *,
             timeout_s: float) -> CommandResult:
        start = time.perf_counter()
        module_name, _, attr = entry_point.partition(":")
        try:
            func = getattr(importlib.import_module(module_name), attr)
            ok = func(dict(payload))
        except Exception as exc:  # a team's check may raise anything: report, never crash
            return CommandResult(1, f"{type(exc).__name__}: {exc}", _ms(start))
        return CommandResult(0 if ok else 1, "" if ok else f"{entry_point} returned {ok!r}",
                             _ms(start))


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000
