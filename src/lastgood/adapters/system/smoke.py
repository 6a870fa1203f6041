"""The smoke test: load a version in a separate process and reproduce its golden examples.

A separate interpreter (`python -m lastgood.adapters.system.smoke`) keeps a crashing or hanging
native loader away from the caller, and never re-imports the caller's own script. The artifacts are
fetched (and their digests verified) by the parent into a private temp directory first; the
request and the answer cross the pipe as pickles of lastgood's own records.
"""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
    """SmokeRunner that loads each version in a fresh interpreter."""

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
        request = pickle.dumps((version, directory, self._formats_ref))
        with subprocess.Popen([sys.executable, "-m", "lastgood.adapters.system.smoke"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as proc:
            try:
                out, err = proc.communicate(request, timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                return {"error": f"loading or predicting did not finish within {timeout_s:g} s"}
        if proc.returncode != 0 or not out:
            tail = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
            return {"error": f"the loader process died (exit code {proc.returncode}) "
                             f"{tail[0]}".strip()}
        answer: dict[str, Any] = pickle.loads(out)
        return answer

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


def _main() -> None:
    version, directory, formats_ref = pickle.loads(sys.stdin.buffer.read())
    sys.stdout.buffer.write(pickle.dumps(run_in_child(version, directory, formats_ref)))


if __name__ == "__main__":
    _main()
