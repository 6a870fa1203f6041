"""The smoke test: load a version in a separate process and reproduce its golden examples.

A separate process keeps a crashing or hanging native loader away from the caller; the artifacts
are fetched (and their digests verified) by the parent into a private temp directory first.
"""

from __future__ import annotations

import importlib
import multiprocessing
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from lastgood.domain.versions import Version, golden_matches
from lastgood.ports import ArtifactStore, SmokeOutcome

FORMATS = "lastgood.adapters.formats:LocalModelFormats"


def _child(version: Version, directory: str, formats_ref: str, conn: Connection) -> None:
    module, _, name = formats_ref.partition(":")
    try:
        formats = getattr(importlib.import_module(module), name)()
        start = time.perf_counter()
        predictor = formats.load(version, Path(directory))
        loaded = time.perf_counter()
        outputs = predictor.predict([dict(g.inputs) for g in version.golden])
    except Exception as exc:  # any loader failure is the smoke test's verdict, not a crash
        conn.send({"error": f"loading or predicting failed: {type(exc).__name__}: {exc}"})
        return
    conn.send({"load_ms": (loaded - start) * 1000,
               "predict_ms": (time.perf_counter() - loaded) * 1000, "outputs": outputs})


class SubprocessSmoke:
    """SmokeRunner that loads each version in a fresh spawned interpreter."""

    def __init__(self, store: ArtifactStore, *, formats_ref: str = FORMATS):
        self._store, self._formats_ref = store, formats_ref

    def smoke(self, version: Version, *, timeout_s: float) -> SmokeOutcome:
        with tempfile.TemporaryDirectory(prefix="lastgood-smoke-") as tmp:
            for f in version.manifest.files:
                dest = Path(tmp) / f.path
                dest.parent.mkdir(parents=True, exist_ok=True)
                self._store.fetch(f.sha256, dest)
            result = self._run_child(version, tmp, timeout_s)
        if "error" in result:
            return SmokeOutcome(False, str(result["error"]))
        return self._compare(version, result)

    def _run_child(self, version: Version, directory: str, timeout_s: float) -> dict[str, Any]:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(version, directory, self._formats_ref, child),
                           daemon=True)
        proc.start()
        child.close()
        try:
            if not parent.poll(timeout_s):
                return {"error": f"loading or predicting did not finish within {timeout_s:g} s"
                                 if proc.is_alive() else
                                 f"the loader process died (exit code {proc.exitcode})"}
            received: dict[str, Any] = parent.recv()
            return received
        except EOFError:
            proc.join(5)
            return {"error": f"the loader process died (exit code {proc.exitcode})"}
        finally:
            if proc.is_alive():
                proc.kill()
            proc.join(5)
            parent.close()

    @staticmethod
    def _compare(version: Version, result: dict[str, Any]) -> SmokeOutcome:
        outputs = list(result["outputs"])
        mismatches = [
            {"example": i, "expected": g.expected, "actual": out}
            for i, (g, out) in enumerate(zip(version.golden, outputs, strict=False))
            if g.expected is not None and not golden_matches(g.expected, out, g.tolerance)
        ]
        n = len(version.golden)
        summary = (f"{n - len(mismatches)}/{n} golden examples reproduced; "
                   f"load {result['load_ms']:.0f} ms, predict {result['predict_ms']:.1f} ms")
        return SmokeOutcome(not mismatches and len(outputs) == n, summary,
                            float(result["load_ms"]), float(result["predict_ms"]),
                            tuple(mismatches))
