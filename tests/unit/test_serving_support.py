"""Fakes shared by the serving tests (no tests here): versions, predictors and loaders.

A fake predictor answers every record with its version number, so a response tells exactly
which slot served it.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from lastgood.domain.errors import InvalidInput
from lastgood.domain.versions import (
    ArtifactFile,
    Column,
    GoldenExample,
    Manifest,
    Resources,
    Runtime,
    Schema,
    Version,
)

MODEL = "iris"
SCHEMA = Schema(inputs=(Column("x", "float64"), Column("n", "int64"), Column("tag", "string")),
                outputs=(Column("y", "int64"),))
RECORD: dict[str, Any] = {"x": 1.5, "n": 2, "tag": "a"}
POISON = 13  # a valid record the fake model fails on: a model error
UNCONVERTIBLE = 14  # a valid record the fake model's own input check refuses


def make_version(number: int, *, model: str = MODEL, schema: Schema = SCHEMA,
                 golden: tuple[GoldenExample, ...] | None = None, memory_mb: int = 0,
                 size: int = 100) -> Version:
    """A registered version whose golden example expects its own number as output."""
    examples = (GoldenExample(inputs=dict(RECORD), expected=number),) if golden is None else golden
    return Version(
        model=model, number=number,
        manifest=Manifest(files=(ArtifactFile("model.bin", size, f"{number:064x}"),)),
        digest=f"{number:064x}", flavor="fake",
        created_at=datetime(2025, 1, 1, tzinfo=UTC), created_by="tester",
        runtime=Runtime(resources=Resources(memory_mb=memory_mb)),
        schema=schema, golden=examples, tag=f"v{number}",
    )


class FakePredictor:
    """Answers its version number per record; raises on `n == POISON` (a model error on valid
    input) and once closed."""

    def __init__(self, number: int, *, delay_s: float = 0.0, answer: Any = None) -> None:
        self.number, self.delay_s = number, delay_s
        self.answer = number if answer is None else answer
        self.closed = False
        self.calls = 0

    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        if self.closed:
            raise RuntimeError("predict after close")
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if any(r.get("n") == POISON for r in records):
            raise ZeroDivisionError("model blew up")
        if any(r.get("n") == UNCONVERTIBLE for r in records):
            raise InvalidInput("inputs do not convert to float64", fix="send numbers")
        return [self.answer for _ in records]

    def close(self) -> None:
        self.closed = True


class FakeLoader:
    """A loader with per-version behaviour: hang until released, raise, or answer wrongly."""

    def __init__(self, *, hang: Sequence[int] = (), boom: Sequence[int] = (),
                 wrong: Sequence[int] = (), delay_s: float = 0.0) -> None:
        self.hang, self.boom, self.wrong = set(hang), set(boom), set(wrong)
        self.delay_s = delay_s
        self.release = threading.Event()
        self.loaded: list[int] = []
        self.predictors: dict[int, FakePredictor] = {}

    def __call__(self, version: Version) -> FakePredictor:
        if version.number in self.hang:
            self.release.wait(30)
        if version.number in self.boom:
            raise OSError(f"artifact of {version.number} is truncated")
        self.loaded.append(version.number)
        answer = -1 if version.number in self.wrong else None
        predictor = FakePredictor(version.number, delay_s=self.delay_s, answer=answer)
        self.predictors[version.number] = predictor
        return predictor


class SegfaultLoader:
    """Kills its own process with SIGSEGV, as a broken native extension would (picklable)."""

    def __call__(self, version: Version) -> FakePredictor:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file left behind
        os.kill(os.getpid(), signal.SIGSEGV)
        raise AssertionError("unreachable")


class FineLoader:
    """A picklable loader that works, for the probe's happy path."""

    def __call__(self, version: Version) -> FakePredictor:
        return FakePredictor(version.number)


class SyncClient:
    """A blocking HTTP client over an ASGI app, on one private event loop (no TestClient: it
    warns under this Starlette, and warnings are errors)."""

    def __init__(self, app: Any) -> None:
        self._runner = asyncio.Runner()
        self._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                       base_url="http://gateway")

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self._runner.run(self._http.get(url, **kw))

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self._runner.run(self._http.post(url, **kw))

    def idle(self, seconds: float) -> None:
        """Let the app's background tasks run for a while on the client's loop."""
        self._runner.run(asyncio.sleep(seconds))

    def close(self) -> None:
        self._runner.run(self._http.aclose())
        self._runner.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
