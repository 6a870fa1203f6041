"""A verdict's log line is as loud as its consequence: a rollback is an ERROR, a regression that
changes nothing (handed to a human, or judged on the version just rolled back to) a WARNING."""

from __future__ import annotations

import logging

from lastgood.adapters.notify import LogNotifier, log_level
from lastgood.domain.decisions import DecisionKind
from lastgood.domain.health import Mode, Verdict
from tests.unit.test_watch_stated import labelled
from tests.unit.watch_fakes import ENV, WatchedFake


def regressed_then_stable(w: WatchedFake) -> None:
    w.world.add_version(tag="v1")
    w.world.add_version(tag="v2")
    w.verified_with_baseline(1)
    w.world.deploy(2, verify=False)
    for s in range(1, 60):
        w.clock.advance(1)
        w.source.data[2] = labelled(10 * s, 5 * s)  # half of the requests fail
        if any(o.decision.kind in (DecisionKind.ROLLBACK, DecisionKind.PAUSE)
               for o in w.watch.tick(ENV)):
            return
    raise AssertionError("the regression was never decided")


def test_a_rollback_is_logged_as_an_error() -> None:
    w = WatchedFake()
    regressed_then_stable(w)
    [rollback] = [n for n in w.notifier.notices if n.decision == "rollback"]
    assert log_level(rollback) == logging.ERROR


def test_a_regression_handed_to_a_human_is_a_warning() -> None:
    w = WatchedFake(mode=Mode.PAUSE)
    regressed_then_stable(w)
    [paused] = [n for n in w.notifier.notices if n.decision == "pause"]
    assert paused.verdict in (str(Verdict.DEGRADED), str(Verdict.FAILED))
    assert paused.severity == "critical"  # a webhook still pages the human
    assert log_level(paused) == logging.WARNING
    logger = logging.getLogger("test.levels")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger.addHandler(Keep())
    LogNotifier(logger).notify(paused)
    assert [r.levelno for r in records] == [logging.WARNING]
