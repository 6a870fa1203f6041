"""The smoke test: load a version in a separate process and reproduce its golden examples.

A separate interpreter (`python -m lastgood.adapters.system.smoke`) keeps a crashing or hanging
native loader away from the caller, and never re-imports the caller's own script. The artifacts are
fetched (and their digests verified) by the parent into a private temp directory first; each
request is a pickle of lastgood's own records written beside them and named to the child by one
line on its stdin (so the pipe never fills while the parent is busy), and each answer comes back
on its stdout as a length-prefixed pickle.

A session keeps one child for many versions: it starts when the first version is handed over,
loads them in turn while the caller goes on, and a version that hangs or kills it fails alone: a
new child takes the versions handed after it.
"""

from __future__ import annotations

import importlib
import os
import pickle
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from lastgood.domain.errors import LastGoodError
from lastgood.domain.operations import SmokeOutcome
from lastgood.domain.versions import Version, golden_evidence, golden_summary
from lastgood.ports import ArtifactStore
from lastgood.services.golden_runs import golden_outputs

FORMATS = "lastgood.adapters.formats:LocalModelFormats"
REFERENCE_FAILED = ("re-save the model with MLflow's save_model: mlflow.pyfunc cannot load or "
                    "predict what its MLmodel describes (a predict_fn the model lacks, a missing "
                    "package)")


def run_in_child(version: Version, directory: str, formats_ref: str) -> dict[str, Any]:
    """What the child does: load, predict the golden inputs, time both; when it records
    outputs, the formats hold them to the reference (MLflow's own pyfunc) if they have one."""
    try:
        module, _, name = formats_ref.partition(":")
        formats = getattr(importlib.import_module(module), name)()
    except Exception as exc:  # a broken formats reference is this run's verdict
        return {"error": f"loading failed: {type(exc).__name__}: {exc}"}
    answer, predictor = _native_run(formats, version, Path(directory))
    check = getattr(formats, "against_reference", None)
    if not callable(check) or all(g.checked for g in version.golden):
        return answer
    try:
        return dict(check(version, Path(directory), answer, predictor))
    except Exception as exc:  # the reference fails: nothing can be recorded
        return {"error": f"mlflow.pyfunc (the reference) failed: {type(exc).__name__}: {exc}",
                "reference": REFERENCE_FAILED}


def _native_run(formats: Any, version: Version, directory: Path) -> tuple[dict[str, Any], Any]:
    try:
        start = time.perf_counter()
        predictor = formats.load(version, directory)
        loaded = time.perf_counter()
        outputs = golden_outputs(predictor, version.golden, version.schema.params)
    except Exception as exc:  # any loader failure is the smoke test's verdict, not a crash
        return {"error": f"loading or predicting failed: {type(exc).__name__}: {exc}"}, None
    return {"load_ms": (loaded - start) * 1000,
            "predict_ms": (time.perf_counter() - loaded) * 1000,
            "outputs": list(outputs)}, predictor


class SubprocessSmoke:
    """SmokeRunner that loads each version in a fresh interpreter (`smoke`), or many versions
    one after another in one (`session`: registration's recordings)."""

    def __init__(self, store: ArtifactStore, *, formats_ref: str = FORMATS):
        self._store, self._formats_ref = store, formats_ref

    def smoke(self, version: Version, *, timeout_s: float) -> SmokeOutcome:
        with self.session(timeout_s=timeout_s) as session:
            session.hand(version)
            return session.outcome()

    @contextmanager
    def session(self, *, timeout_s: float) -> Iterator[ChildSession]:
        with tempfile.TemporaryDirectory(prefix="lastgood-smoke-") as tmp:
            session = ChildSession(self._store, Path(tmp), self._formats_ref, timeout_s)
            try:
                yield session
            finally:
                session.close()


@dataclass(frozen=True, slots=True)
class _Handed:
    version: Version
    request: Path  # the pickled (version, directory) the child reads
    directory: Path  # the version's fetched files, removed once it is answered
    at: float  # when it was handed to the child
    error: str | None = None  # its files could not be fetched: not handed to the child


class ChildSession:
    """SmokeSession over one child at a time (restarted after one dies or hangs)."""

    def __init__(self, store: ArtifactStore, scratch: Path, formats_ref: str, timeout_s: float):
        self._store, self._scratch, self._formats_ref = store, scratch, formats_ref
        self._timeout_s = timeout_s
        self._handed: deque[_Handed] = deque()
        self._child: _Child | None = None
        self._count = 0
        self._free_at = 0.0  # when the child could begin the oldest version handed

    def hand(self, version: Version) -> None:
        self._count += 1
        directory = self._scratch / str(self._count)
        request = self._scratch / f"{self._count}.request"
        try:
            self._fetch(version, directory)
        except LastGoodError as exc:  # a missing or corrupted blob fails this version alone
            self._handed.append(_Handed(version, request, directory, 0.0, exc.one_line()))
            return
        request.write_bytes(pickle.dumps((version, str(directory))))
        self._handed.append(_Handed(version, request, directory, time.monotonic()))
        self._running().send(request)

    def ready(self) -> bool:
        if not self._handed:
            return False
        return (self._handed[0].error is not None
                or (self._child is not None and self._child.readable()))

    def outcome(self) -> SmokeOutcome:
        head = self._handed[0]
        if head.error is not None:
            self._done(head)
            return SmokeOutcome(False, f"its files could not be fetched: {head.error}")
        answer = self._answer(head)
        self._done(head)
        if "error" in answer:
            return SmokeOutcome(False, str(answer["error"]),
                                reference=str(answer.get("reference", "")))
        return compare(head.version, answer)

    def _answer(self, head: _Handed) -> dict[str, Any]:
        child = self._running()
        deadline = max(head.at, self._free_at, child.started) + self._timeout_s
        answer = child.answer(deadline)
        if answer is None:
            answer = child.failure(late=time.monotonic() >= deadline, timeout_s=self._timeout_s)
            self._restart()
        self._free_at = time.monotonic()
        return answer

    def _done(self, head: _Handed) -> None:
        self._handed.popleft()
        head.request.unlink(missing_ok=True)
        shutil.rmtree(head.directory, ignore_errors=True)

    def close(self) -> None:
        if self._child is not None:
            self._child.close()
            self._child = None

    def _running(self) -> _Child:
        if self._child is None:
            self._child = _Child(self._formats_ref)
        return self._child

    def _restart(self) -> None:
        """A new child for the versions handed after the one that failed the last."""
        self.close()
        rest = [h for h in list(self._handed)[1:] if h.error is None]
        if rest:
            child = self._running()
            for handed in rest:
                child.send(handed.request)

    def _fetch(self, version: Version, directory: Path) -> None:
        """The version's files from the store (which checks each digest) under `directory`."""
        directory.mkdir(parents=True)
        for f in version.manifest.files:
            dest = directory / f.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            self._store.fetch(f.sha256, dest)


class _Child:
    """One loader process: request files named on its stdin, answers read from its stdout."""

    def __init__(self, formats_ref: str):
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child, see close
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "lastgood.adapters.system.smoke", formats_ref],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err)
        self.started = time.monotonic()

    def send(self, request: Path) -> None:
        assert self._proc.stdin is not None
        with suppress(BrokenPipeError):  # it died: the answer of the version it was on says how
            self._proc.stdin.write(f"{request}\n".encode())
            self._proc.stdin.flush()

    def readable(self) -> bool:
        assert self._proc.stdout is not None
        return bool(select.select([self._proc.stdout.fileno()], [], [], 0)[0])

    def answer(self, deadline: float) -> dict[str, Any] | None:
        """Its next answer, None if it died or `deadline` passed first."""
        assert self._proc.stdout is not None
        return _read_answer(self._proc.stdout, deadline)

    def failure(self, *, late: bool, timeout_s: float) -> dict[str, Any]:
        """The error of the version it was on, after ending it."""
        self._end()
        return _died(None if late else self._proc.returncode, self._err, timeout_s)

    def close(self) -> None:
        self._end()
        self._err.close()

    def _end(self) -> None:
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                with suppress(BrokenPipeError):
                    stream.close()
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()


def compare(version: Version, result: dict[str, Any]) -> SmokeOutcome:
    """The outcome of one answer: the outputs checked against the given ones."""
    outputs = tuple(result["outputs"])
    problems = golden_evidence(version.golden, outputs)
    n, checked = len(version.golden), sum(1 for g in version.golden if g.checked)
    off = {p.get("example") for p in problems}
    kinds = ", ".join(f"{count} {kind}" for kind, count in golden_summary(version.golden).items())
    summary = (f"{checked - len(off) if len(outputs) == n else 0}/{checked} golden "
               f"outputs reproduced ({kinds}); load {result['load_ms']:.0f} ms, "
               f"predict {result['predict_ms']:.1f} ms")
    return SmokeOutcome(not problems, summary, float(result["load_ms"]),
                        float(result["predict_ms"]), tuple(problems),
                        outputs, serve_with=str(result.get("serve_with", "")),
                        reference=str(result.get("reference", "")),
                        output_form=str(result.get("output_form", "")))


def _read_answer(stream: IO[bytes], deadline: float) -> dict[str, Any] | None:
    """The child's next answer (a length-prefixed pickle), None if it died or `deadline`
    passed first."""
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
    """Answer each request named on stdin, in order, until stdin closes (the parent is done
    or gone)."""
    formats_ref = sys.argv[1]
    # answers go to the parent's pipe alone: whatever a loader prints goes to stderr
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    for line in sys.stdin.buffer:
        version, directory = pickle.loads(Path(line.decode().rstrip("\n")).read_bytes())
        answer = pickle.dumps(run_in_child(version, directory, formats_ref))
        out.write(len(answer).to_bytes(8) + answer)
        out.flush()


if __name__ == "__main__":
    _main()
