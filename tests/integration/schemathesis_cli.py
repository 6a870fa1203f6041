"""Run schemathesis's own CLI (`schemathesis run --checks all`) against a real server on
loopback, in a subprocess, with a bounded number of examples, and hand back what it printed.

The CLI runs every phase schemathesis has (examples, coverage, fuzzing, stateful) where the
pytest integration runs only one, and it is how a user would check a server by hand.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CLI = Path(sys.executable).with_name("schemathesis")


@dataclass(frozen=True, slots=True)
class Run:
    """One finished `schemathesis run`: its exit code and its report."""

    exit_code: int
    output: str

    @property
    def tested(self) -> tuple[int, int]:
        """(operations tested, operations selected), from the report's summary."""
        selected = re.search(r"Selected: (\d+)/\d+", self.output)
        tested = re.search(r"Tested: (\d+)", self.output)
        return (int(tested.group(1)) if tested else 0,
                int(selected.group(1)) if selected else -1)

    @property
    def summary(self) -> str:
        """The report from its FAILURES / SUMMARY section on (the part worth reading)."""
        for marker in ("= FAILURES =", "= SUMMARY ="):
            at = self.output.find(marker)
            if at >= 0:
                return self.output[max(0, self.output.rfind("\n", 0, at)):]
        return self.output[-4000:]


def run(location: str, *, workdir: Path, base_url: str | None = None, config: Path | None = None,
        headers: dict[str, str] | None = None, max_examples: int = 10, seed: int = 1,
        phases: str = "examples,coverage,fuzzing,stateful", extra: tuple[str, ...] = (),
        timeout_s: float = 300.0) -> Run:
    """`schemathesis run LOCATION --checks all`, one worker, a fixed seed; never raises on
    failures found (the caller asserts on the exit code and shows the report). Its caches
    (.schemathesis, .hypothesis) go to `workdir`."""
    command = [str(CLI)]
    if config is not None:
        command += ["--config-file", str(config)]
    command += ["run", location, "--checks", "all", "--workers", "1", "--max-examples",
                str(max_examples), "--seed", str(seed), "--phases", phases,
                "--output-truncate", "false", "--warnings", "off", *extra]
    if base_url is not None:
        command += ["--url", base_url]
    for name, value in (headers or {}).items():
        command += ["--header", f"{name}: {value}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                          check=False, cwd=workdir)
    return Run(done.returncode, done.stdout + done.stderr)
