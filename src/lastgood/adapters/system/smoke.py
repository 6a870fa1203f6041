"""The smoke test: load a version in a separate process and reproduce its golden examples.

A separate interpreter (`python -m lastgood.adapters.system.smoke`) keeps a crashing or hanging
native loader away from the caller, and never re-imports the caller's own script. The artifacts are
fetched (and their digests verified) by the parent into a private temp directory first; the
request and the answer cross the pipe as pickles of lastgood's own records.
"""

from __future__ import annotations

import importlib
import os
import pickle
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from lastgood.domain.operations import SmokeOutcome
from lastgood.domain.versions import Version, golden_problems, golden_summary
from lastgood.ports import ArtifactStore

FORMATS = "lastgood.adapters.formats:LocalModelFormats"


def run_in_child(version: Version, directory: str, formats_ref: str) -> dict[str, Any]:
    """What the child does: load, predict the golden inputs, time both."""
    try:
        module, _, name = formats_ref.partition(":")
        formats = getattr(importlib.import_module(module), name)()
        start = time.perf_counter()
        predictor = formats.load(version, Path(directory))
        loaded = time.perf_counter()
        outputs = predictor.predict([dict(g.inputs) for g in version.golden])
    except Exception as exc:  # any loader failure is the smoke test's verdict, not a crash
        return {"error": f"loading or predicting failed: {type(exc).__name__}: {exc}"}
    return {"load_ms": (loaded - start) * 1000,
            "predict_ms": (time.perf_counter() - loaded) * 1000, "outputs": list(outputs)}


class SubprocessSmoke:
    """SmokeRunner that loads each version in a fresh interpreter (`smoke`), or a batch of
    versions one after another in one (`smoke_many`: registration's recordings)."""

    def __init__(self, store: ArtifactStore, *, formats_ref: str = FORMATS):
        self._store, self._formats_ref = store, formats_ref

    def smoke(self, version: Version, *, timeout_s: float) -> SmokeOutcome:
        return self.smoke_many([version], timeout_s=timeout_s)[0]

    def smoke_many(self, versions: Sequence[Version], *, timeout_s: float
                   ) -> list[SmokeOutcome]:
        """One child loads the versions in turn, answering each as it goes; a version that
        hangs or kills the child fails alone, and a new child takes the rest."""
        with tempfile.TemporaryDirectory(prefix="lastgood-smoke-") as tmp:
            dirs = [self._fetched(v, Path(tmp) / str(i)) for i, v in enumerate(versions)]
            results: list[dict[str, Any]] = []
            while len(results) < len(versions):
                done = len(results)
                results += self._run_child(versions[done:], dirs[done:], timeout_s)
        return [SmokeOutcome(False, str(r["error"])) if "error" in r else self._compare(v, r)
                for v, r in zip(versions, results, strict=True)]

    def _fetched(self, version: Version, directory: Path) -> str:
        for f in version.manifest.files:
            dest = directory / f.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            self._store.fetch(f.sha256, dest)
        return str(directory)

    def _run_child(self, versions: Sequence[Version], dirs: Sequence[str],
                   timeout_s: float) -> list[dict[str, Any]]:
        """Answers for a prefix of `versions`: all of them, or those before the one that
        failed the child, then that one's error (so every call makes progress)."""
        request = pickle.dumps((list(zip(versions, dirs, strict=True)), self._formats_ref))
        with tempfile.TemporaryFile() as err, subprocess.Popen(
                [sys.executable, "-m", "lastgood.adapters.system.smoke"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err) as proc:
            assert proc.stdin is not None
            assert proc.stdout is not None
            proc.stdin.write(request)
            proc.stdin.close()
            answers: list[dict[str, Any]] = []
            while len(answers) < len(versions):
                started = time.monotonic()
                answer = _read_answer(proc.stdout, timeout_s)
                if answer is None:
                    late = time.monotonic() - started >= timeout_s
                    proc.kill()
                    proc.wait()
                    answers.append(_died(None if late else proc.returncode, err, timeout_s))
                    break
                answers.append(answer)
            return answers

    @staticmethod
    def _compare(version: Version, result: dict[str, Any]) -> SmokeOutcome:
        outputs = tuple(result["outputs"])
        problems = golden_problems(version.golden, outputs)
        n, checked = len(version.golden), sum(1 for g in version.golden if g.checked)
        kinds = ", ".join(f"{count} {kind}"
                          for kind, count in golden_summary(version.golden).items())
        summary = (f"{checked - len(problems) if len(outputs) == n else 0}/{checked} golden "
                   f"outputs reproduced ({kinds}); load {result['load_ms']:.0f} ms, "
                   f"predict {result['predict_ms']:.1f} ms")
        return SmokeOutcome(not problems, summary, float(result["load_ms"]),
                            float(result["predict_ms"]),
                            tuple({"problem": p} for p in problems), outputs)


def _read_answer(stream: IO[bytes], timeout_s: float) -> dict[str, Any] | None:
    """The child's next answer (a length-prefixed pickle), None if it died or took longer
    than `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    head = _read_exactly(stream, 8, deadline)
    body = _read_exactly(stream, int.from_bytes(head), deadline) if head else None
    return pickle.loads(body) if body is not None else None


def _read_exactly(stream: IO[bytes], size: int, deadline: float) -> bytes | None:
    data = b""
    fd = stream.fileno()
    while len(data) < size:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _died(code: int | None, err: IO[bytes], timeout_s: float) -> dict[str, Any]:
    """The error of the version the child was on: it took too long (code None), or died."""
    if code is None:
        return {"error": f"loading or predicting did not finish within {timeout_s:g} s"}
    err.seek(0)
    tail = err.read().decode(errors="replace").strip().splitlines()[-1:] or [""]
    return {"error": f"the loader process died (exit code {code}) {tail[0]}".strip()}


def _main() -> None:
    batch, formats_ref = pickle.loads(sys.stdin.buffer.read())
    out = sys.stdout.buffer
    for version, directory in batch:
        answer = pickle.dumps(run_in_child(version, directory, formats_ref))
        out.write(len(answer).to_bytes(8) + answer)
        out.flush()


if __name__ == "__main__":
    _main()
