"""Run the `lastgood` command as a user types it: a real subprocess, no standard input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Cli:
    home: Path
    db_url: str | None = None
    extra_env: dict[str, str] | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LASTGOOD_")}
        env |= {"LASTGOOD_HOME": str(self.home), "LASTGOOD_ACTOR": "oncall",
                "COLUMNS": "200", "NO_COLOR": "1"}
        if self.db_url:
            env["LASTGOOD_DB_URL"] = self.db_url
        return env | (self.extra_env or {})

    def __call__(self, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 120, answer: str | None = None) -> Result:
        """Run a command; `answer` is typed at its prompt (else standard input is empty)."""
        done = subprocess.run([sys.executable, "-m", "lastgood", *args],
                              env=self.env() | (env or {}), capture_output=True,
                              text=True, timeout=timeout, input=answer,
                              stdin=subprocess.DEVNULL if answer is None else None, check=False)
        return Result(done.returncode, done.stdout, done.stderr)

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "lastgood", *args],
                                env=self.env() | (env or {}), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)


def assert_clean_error(result: Result, code: int, *words: str) -> None:
    """One line on stderr, the expected exit code, no traceback, naming the problem."""
    assert result.code == code, (result.code, result.out, result.err)
    lines = [ln for ln in result.err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    for word in words:
        assert word in lines[0], (word, lines[0])
