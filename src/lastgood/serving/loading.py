"""Loading and warming a slot off the event loop, under a timeout, optionally probed in a child.

A loader that raises, hangs past its timeout, crashes its probe process, or produces outputs
that differ from the version's golden examples yields a FAILED slot with the reason; the caller
never touches the live slot in that case (safety rule 7, and the issue's broken-artifact rule).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from lastgood.domain.versions import (
    GoldenExample,
    Param,
    Version,
    golden_matches,
    golden_problems,
)
from lastgood.ports import Clock, Predictor
from lastgood.services.golden_runs import golden_outputs
from lastgood.serving.slots import Slot

__all__ = [
    "GoldenMismatch",
    "LoadOptions",
    "LoadTimeout",
    "Loader",
    "outputs_match",
    "plain",
    "prepare_slot",
    "probe_in_child",
    "run_off_loop",
    "warm_up",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

Loader = Callable[[Version], Predictor]
"""Blocking: turn a registered version into a Predictor (fetch its files, load its format)."""


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """How a slot is loaded and warmed."""

    timeout_s: float = 120.0  # load plus warm-up, after which the attempt is abandoned
    probe: bool = False  # load once in a child process first: a segfault kills only the child
    probe_timeout_s: float = 120.0
    timing_rounds: int = 5  # single-record calls timed after the golden check


class LoadTimeout(TimeoutError):
    """The loader did not return within its budget; its thread was abandoned."""


class GoldenMismatch(Exception):
    """A warmed version did not reproduce its golden examples."""


def _settle(future: asyncio.Future[T], outcome: Callable[[asyncio.Future[T]], None],
            leftover: object = None) -> None:
    if future.done():  # the waiter gave up (timeout): release what arrived too late
        close = getattr(leftover, "close", None)
        if callable(close):
            close()
        return
    outcome(future)


async def run_off_loop(fn: Callable[[], T], *, timeout_s: float, name: str) -> T:
    """Run blocking `fn` in its own daemon thread and await it for at most `timeout_s`.

    A fresh thread, not the shared pool: a loader that hangs forever must not eat a worker
    that predictions need. On timeout the thread is abandoned (Python cannot kill it); a result
    that arrives later is closed if it has `close()`.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def target() -> None:
        try:
            result = fn()
        except BaseException as exc:
            error = exc if isinstance(exc, Exception) else RuntimeError(repr(exc))
            _call_soon(loop, _settle, future, lambda f: f.set_exception(error))
        else:
            _call_soon(loop, _settle, future, lambda f: f.set_result(result), result)

    threading.Thread(target=target, name=name, daemon=True).start()
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout_s)
    except TimeoutError:
        future.cancel()
        raise LoadTimeout(f"did not finish within {timeout_s:g} s") from None


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed while the thread still worked
        loop.call_soon_threadsafe(fn, *args)


def plain(value: Any) -> Any:
    """A JSON-ready Python value from numpy scalars/arrays and nested containers."""
    if isinstance(value, str | bool | int | float) or value is None:
        return value
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def outputs_match(got: Any, want: Any, tolerance: float) -> bool:
    """Whether a prediction equals the golden output (the domain's one definition)."""
    return golden_matches(want, got, tolerance)


def golden_mismatches(predictor: Predictor, golden: Sequence[GoldenExample],
                      params: Sequence[Param] = ()) -> list[str]:
    """Run the golden examples (a batch per params they carry); describe every output of them
    that does not reproduce."""
    return golden_problems(golden, golden_outputs(predictor, golden, params))


def warm_up(predictor: Predictor, version: Version, *,
            rounds: int) -> tuple[list[float], float | None]:
    """Check the golden examples, then time single-record calls; raise GoldenMismatch if off.

    Returns the per-call timings (ms) and the median single-record time used to decide whether
    predictions of this slot may run inline on the event loop.
    """
    timings: list[float] = []
    if not version.golden:
        return timings, None
    start = time.perf_counter()
    problems = golden_mismatches(predictor, version.golden, version.schema.params)
    timings.append((time.perf_counter() - start) * 1000)
    if problems:
        raise GoldenMismatch("; ".join(problems[:5]) + (" …" if len(problems) > 5 else ""))
    one = [version.golden[0].inputs]
    for _ in range(max(rounds, 0)):
        start = time.perf_counter()
        predictor.predict(one)
        timings.append((time.perf_counter() - start) * 1000)
    singles = sorted(timings[1:])
    return timings, (singles[len(singles) // 2] if singles else None)


def _probe_child(loader: Loader, version: Version, conn: Connection) -> None:
    try:
        loader(version)
    except BaseException as exc:
        conn.send(f"{type(exc).__name__}: {exc}")
        raise SystemExit(3) from None
    conn.send("")


def probe_in_child(loader: Loader, version: Version, *, timeout_s: float) -> str | None:
    """Load `version` once in a spawned child process; the reason it failed, or None.

    A native crash (segfault, abort) or a hang kills only the child. `loader` must be picklable
    (a module-level function or an object whose parts pickle).
    """
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_probe_child, args=(loader, version, child),
                          name=f"lastgood-probe-{version.model}-{version.number}", daemon=True)
    process.start()
    child.close()
    process.join(timeout_s)
    if process.is_alive():
        process.kill()
        process.join()
        return f"the probe process did not finish loading within {timeout_s:g} s"
    try:
        message = parent.recv() if parent.poll() else ""
    except EOFError:  # the child died before it could say anything
        message = ""
    parent.close()
    code = process.exitcode or 0
    if code < 0:
        return f"the loader crashed the probe process ({signal.Signals(-code).name})"
    if code:
        return f"the loader failed in the probe process: {message or f'exit code {code}'}"
    return None


def _load_and_warm(loader: Loader, version: Version, options: LoadOptions
                   ) -> tuple[Predictor, float, list[float], float | None]:
    if options.probe:
        problem = probe_in_child(loader, version, timeout_s=options.probe_timeout_s)
        if problem:
            raise RuntimeError(problem)
    start = time.perf_counter()
    predictor = loader(version)
    load_ms = (time.perf_counter() - start) * 1000
    try:
        timings, per_record = warm_up(predictor, version, rounds=options.timing_rounds)
    except Exception:
        close = getattr(predictor, "close", None)
        if callable(close):
            close()
        raise
    return predictor, load_ms, timings, per_record


async def prepare_slot(version: Version, loader: Loader, *, clock: Clock,
                       options: LoadOptions = LoadOptions()) -> Slot:
    """Load and warm `version` off the loop; a WARM slot, or a FAILED one naming the reason."""
    slot = Slot(version)
    try:
        predictor, load_ms, timings, per_record = await run_off_loop(
            lambda: _load_and_warm(loader, version, options), timeout_s=options.timeout_s,
            name=f"lastgood-load-{version.model}-{version.number}")
    except LoadTimeout as exc:
        return slot.failed(f"loading {version.ref} {exc}; the loader thread was abandoned",
                           at=clock.now())
    except GoldenMismatch as exc:
        return slot.failed(f"warm-up of {version.ref} failed: {exc}", at=clock.now())
    except Exception as exc:
        log.warning("loading %s failed", version.ref, exc_info=True)
        return slot.failed(f"loading {version.ref} failed: {type(exc).__name__}: {exc}",
                           at=clock.now())
    return slot.warmed(predictor, at=clock.now(), load_ms=load_ms, warmup_ms=timings,
                       per_record_ms=per_record)
