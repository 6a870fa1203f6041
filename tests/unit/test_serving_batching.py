"""Concurrent requests on one predictor ride together; each gets its own outputs, and a bad
one fails alone."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from lastgood.serving.batching import Batcher
from lastgood.serving.predicting import settled


class SlowDoubler:
    """Doubles `x`; every call costs the same whatever its size, like a pipeline's overhead."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        with self.lock:
            self.calls.append(len(records))
        time.sleep(0.02)
        if any(r.get("x") == "bad" for r in records):
            raise ValueError("cannot double 'bad'")
        return [2 * r["x"] for r in records]


async def send_all(batcher: Batcher, bodies: list[list[dict[str, Any]]]) -> list[Any]:
    return await asyncio.gather(*(batcher.predict(b) for b in bodies), return_exceptions=True)


def test_concurrent_requests_share_calls_and_keep_their_own_outputs() -> None:
    model = SlowDoubler()
    with ThreadPoolExecutor(2) as pool:
        batcher = Batcher(model, pool, settled)
        bodies = [[{"x": i}, {"x": 100 + i}] for i in range(20)]
        answers = asyncio.run(send_all(batcher, bodies))
    assert answers == [[2 * i, 2 * (100 + i)] for i in range(20)]
    assert len(model.calls) < 20  # the requests waiting behind the first went together
    assert sum(model.calls) == 40


def test_a_request_that_breaks_the_combined_call_fails_alone() -> None:
    model = SlowDoubler()
    with ThreadPoolExecutor(2) as pool:
        batcher = Batcher(model, pool, settled)
        bodies = [[{"x": 1}], [{"x": 2}], [{"x": "bad"}], [{"x": 4}]]
        answers = asyncio.run(send_all(batcher, bodies))
    assert answers[0] == [2]
    assert answers[1] == [4]
    assert isinstance(answers[2], ValueError)
    assert answers[3] == [8]


def test_outputs_of_the_wrong_length_are_an_error() -> None:
    with pytest.raises(ValueError, match="2 records gave 1 predictions"):
        settled([1], 2)
