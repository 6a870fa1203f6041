"""Time to detect a bad deploy, and false rollbacks on healthy traffic: lastgood vs two classics.

    .venv/bin/python benchmarks/detection.py            # 50 seeds per regression, 20 x 30 min
    .venv/bin/python benchmarks/detection.py --seeds 30 --healthy-runs 30   # issue 13's run
    .venv/bin/python benchmarks/detection.py --quick    # a smoke run

The same seeded synthetic streams (10 requests/s unless stated) are replayed through:

- lastgood: `assess` + `decide` called every second (the watch's default interval) on the
  cumulative window since the deploy
  (the regression starts at the deploy, so this window holds all the evidence; the sequential
  tests are valid at every look, so checking often costs no false alarms). Two policies:
  "even split" (alpha 0.05 split evenly over 4 signals) and "errors first", the watch's default
  when no policy file speaks (`default_policy`: alpha 0.1, the error rate weighted 1.5 of 4.5,
  so it gets 0.033 and the three slower signals 0.022 each).
- Flagger-style: every 1 min, each metric over the last minute against a fixed threshold
  (error rate > max(1.5 x baseline, baseline + 1 point); p99 > 1.5 x baseline p99; accuracy of
  the labels that arrived < baseline - 5 points; PSI > 0.2). Any failure, or a failed metric
  query (source gap), adds a failed check; the checks accumulate and a rollback follows at 5
  (Flagger's scheduler: `FailedChecks+1` ... `FailedChecks >= threshold`).
- Kayenta-style: every 1 min, a Mann-Whitney U test per metric, last minute's live samples
  against the baseline's (3000 sampled), one-sided in the bad direction (two-sided for the
  prediction score); the minute fails when any p < 0.05; rollback after N = 3 consecutive
  failed minutes. A minute without data is skipped (Kayenta's NODATA).

The baseline is 30 minutes of the previous version at 10 requests/s (for the daily pattern, three
compressed 10-minute "days"). Labels (for accuracy) come for 20 % of requests, 20 s + Exp(60 s)
after the request. Regressions run up to 30 minutes; a run that is not detected counts as ">30m".

Fair comparison: the Flagger-style failure threshold and the Kayenta-style run length are also
swept (FLAGGER_GRID, KAYENTA_GRID), and for each the smallest setting whose false-rollback rate
on the healthy streams is at most lastgood's ("errors first") is compared on the error-rate
regression. The statistical floor of each regression is an oracle SPRT that knows the true
regression: expected samples log((1-beta)/alpha) / KL (alpha the signal's share of the default
policy, beta 0.1; lastgood's own tests have no beta, they stop at evidence 1/alpha), converted to
seconds at the scenario's rate (labels: their rate plus their mean delay). Beside it, for the
error rate, that oracle SPRT is also run on the same streams, checked after every request (each
request arrives at a uniform moment of its second): its median shows how far a median of few
seeds and the overshoot of each error's jump in evidence put even the oracle from Wald's floor.
Every false rollback of the watch service is counted by the signal that caused it.

"lastgood watch service" replays every stream through the real WatchService with the default
policy and settings on a simulated clock (`watch_replay.py`: registry, baseline choice,
verification after the bake window, anti-flapping, history, cooldown and the rollback itself),
looking when the watch would (`WatchService.pace`: every second, every 0.2 s while the evidence
leans toward a regression) at the counters as they stand at that instant; the floor, the tuned
comparison and the end-to-end hand-verified runs use it.

A median of 30 seeds is a noisy number (its 95 % interval spans about the 32nd to the 68th
percentile), so the error-rate floor is also measured on --floor-seeds streams (1000), with
where the time goes: the oracle, then lastgood's null (the tolerated rate, not the baseline),
then the mixture over the unknown regression, then looking once a second, then the watch.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from scipy import optimize, stats

from lastgood.domain import health
from lastgood.domain.decisions import DecisionKind, decide
from lastgood.domain.health import HealthPolicy, assess, default_signal
from lastgood.domain.measurements import LATENCY_BOUNDS, Histogram, LiveWindow, RateCounts, Summary
from lastgood.domain.sequential import ERROR_PRIOR, rate_test
from lastgood.domain.watching import DEFAULT_ALPHA, default_policy
from lastgood.services.watch import DEFAULT_INTERVAL_S
from watch_replay import AVAILABLE, Counters, replay

RPS, BASE_S, RUN_S, INTERVAL_S = 10.0, 1800, 1800, 60
CHECK_S = max(int(DEFAULT_INTERVAL_S), 1)
ERR, LAT_MU, LAT_SIGMA, ACC, BETA_A, BETA_B = 0.01, math.log(0.1), 0.5, 0.9, 2.0, 5.0
LABEL_SHARE, LABEL_DELAY_S, LABEL_MEAN_S = 0.2, 20.0, 60.0
DAY_S, KAYENTA_N, FLAGGER_THRESHOLD, KAYENTA_SAMPLE = 600, 3, 5, 3000
FLAGGER_GRID, KAYENTA_GRID = (5, 8, 12, 20, 30), (3, 5, 8, 12, 20)
ORACLE_BETA = 0.1
SCORE_BOUNDS = tuple(i / 20 for i in range(1, 20))
LAT_EDGES = np.array(LATENCY_BOUNDS)
SCORE_EDGES = np.array(SCORE_BOUNDS)
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def lognormal_sf(x: float) -> float:
    """P(latency > x * median) for the healthy latency distribution."""
    return float(stats.norm.sf(math.log(x) / LAT_SIGMA))


def slow_factor(share: float) -> float:
    """The slow-path factor that makes p99 twice the baseline's when `share` of requests take it."""
    p99 = math.exp(stats.norm.ppf(0.99) * LAT_SIGMA)
    return float(optimize.brentq(
        lambda m: (1 - share) * lognormal_sf(2 * p99) + share * lognormal_sf(2 * p99 / m) - 0.01,
        1.01, 1000.0))


def true_psi(a: float) -> float:
    """PSI of Beta(a, 5) against Beta(2, 5) over the baseline's deciles."""
    edges = stats.beta.ppf(np.linspace(0, 1, 11), BETA_A, BETA_B)
    live = np.diff(stats.beta.cdf(edges, a, BETA_B))
    return float(np.sum((live - 0.1) * np.log(live / 0.1)))


DRIFT_A = float(optimize.brentq(lambda a: true_psi(a) - 0.3, BETA_A, 10.0))


@dataclass(frozen=True)
class Scenario:
    """One kind of stream after the deploy; the baseline is always the healthy version."""

    name: str
    regression: bool
    rps: float = RPS
    err: float = ERR
    slow_share: float = 0.0
    acc: float = ACC
    beta_a: float = BETA_A
    daily: bool = False
    gap: tuple[int, int] | None = None
    label_share: float = LABEL_SHARE
    label_delay_s: float = LABEL_DELAY_S
    label_mean_s: float = LABEL_MEAN_S


SCENARIOS = (
    Scenario("error rate 1% -> 5%", True, err=0.05),
    Scenario("p99 latency x2 (3% slow path)", True, slow_share=0.03),
    Scenario("accuracy -5 points", True, acc=0.85),
    Scenario(f"prediction drift (PSI {true_psi(DRIFT_A):.2f})", True, beta_a=DRIFT_A),
    Scenario("noise", False),
    Scenario("daily pattern (10-min day)", False, daily=True),
    Scenario("sparse traffic 0.5 req/s", False, rps=0.5),
    Scenario("metric source gap 30 s", False, gap=(600, 630)),
)


@dataclass
class Stream:
    """Per-request samples and per-second cumulative counters of one stream."""

    sec: np.ndarray  # second of each request
    error: np.ndarray
    latency: np.ndarray
    score: np.ndarray
    label_at: np.ndarray  # second each label arrives
    label_ok: np.ndarray
    seconds: int
    offset: np.ndarray = field(default_factory=lambda: np.zeros(0))  # arrival within the second

    def arrivals(self) -> tuple[np.ndarray, np.ndarray]:
        """(arrival time in seconds, error) of every request in arrival order."""
        at = self.sec + (self.offset if self.offset.size else 0.0)
        order = np.argsort(at, kind="stable")
        return at[order], self.error[order]

    def cumulative(self, values: np.ndarray, at: np.ndarray, bins: int = 0) -> np.ndarray:
        """Running totals by second: of `values` (bins == 0) or of a histogram of bin indices."""
        if not bins:
            return np.cumsum(np.bincount(at, weights=values, minlength=self.seconds))
        flat = np.bincount(at * bins + values, minlength=self.seconds * bins)
        return np.cumsum(flat.reshape(self.seconds, bins), axis=0)


def arriving(live: Stream, seed: list[int]) -> Stream:
    """`live` with each request's arrival within its second (uniform: Poisson arrivals), drawn
    from a generator of its own so every stream stays what it was with whole seconds."""
    return replace(live, offset=np.random.default_rng([*seed, 7]).random(live.sec.size))


def generate(s: Scenario, rng: np.random.Generator, seconds: int, *, labels_all: bool) -> Stream:
    t = np.arange(seconds)
    wave = np.sin(2 * np.pi * (t + rng.uniform(0, DAY_S)) / DAY_S) if s.daily else 0 * t
    counts = rng.poisson(s.rps * (1 + 0.5 * wave))
    sec = np.repeat(t, counts)
    n = sec.size
    error = rng.random(n) < (s.err * (1 + 0.3 * wave))[sec]
    factor = slow_factor(s.slow_share) if s.slow_share else 1.0
    latency = np.exp(LAT_MU + LAT_SIGMA * rng.standard_normal(n)) * (1 + 0.15 * wave[sec])
    latency = np.where(rng.random(n) < s.slow_share, latency * factor, latency)
    score = rng.beta(s.beta_a + 0.15 * wave[sec], BETA_B)
    labelled = rng.random(n) < s.label_share
    delay = 0 if labels_all else s.label_delay_s + rng.exponential(s.label_mean_s, n)
    label_at = (sec + delay)[labelled].astype(int)
    label_ok = (rng.random(n) < s.acc)[labelled]
    keep = label_at < seconds
    return Stream(sec, error, latency, score, label_at[keep], label_ok[keep], seconds)


@dataclass
class Baseline:
    summary: Summary
    err: float
    p99: float
    acc: float
    score_edges: np.ndarray
    samples: dict[str, np.ndarray]


def baseline(s: Scenario, rng: np.random.Generator) -> Baseline:
    healthy = replace(Scenario("baseline", False), daily=s.daily)
    b = generate(healthy, rng, BASE_S, labels_all=True)
    lat = np.bincount(np.searchsorted(LAT_EDGES, b.latency), minlength=LAT_EDGES.size + 1)
    sco = np.bincount(np.searchsorted(SCORE_EDGES, b.score), minlength=SCORE_EDGES.size + 1)
    summary = Summary(errors=RateCounts(int(b.error.sum()), b.error.size),
                      latency=Histogram(LATENCY_BOUNDS, tuple(lat.tolist())),
                      accuracy=RateCounts(int(b.label_ok.sum()), b.label_ok.size),
                      predictions=Histogram(SCORE_BOUNDS, tuple(sco.tolist())))
    pick = rng.choice(b.sec.size, KAYENTA_SAMPLE, replace=False)
    samples = {"errors": np.sort(b.error[pick].astype(float)),
               "latency": np.sort(b.latency[pick]), "score": np.sort(b.score[pick]),
               "correct": np.sort(b.label_ok.astype(float))}
    return Baseline(summary, float(b.error.mean()), float(np.quantile(b.latency, 0.99)),
                    float(b.label_ok.mean()), np.quantile(b.score, np.linspace(0, 1, 11)[1:-1]),
                    samples)


def policy(name: str) -> HealthPolicy:
    if name == "errors first":  # exactly what the watch applies when no policy file speaks
        return default_policy("bench", "production", available=AVAILABLE)
    signals = (default_signal("error_rate"), default_signal("latency_p99"),
               default_signal("accuracy"), default_signal("drift"))
    return HealthPolicy("bench", "production", signals, alpha=0.05)


def in_gap(s: Scenario, t: int) -> bool:
    return s.gap is not None and s.gap[0] <= t < s.gap[1]


def lastgood(s: Scenario, live: Stream, base: Baseline, pol: HealthPolicy) -> int | None:
    requests = np.cumsum(np.bincount(live.sec, minlength=live.seconds))
    errors = live.cumulative(live.error.astype(float), live.sec)
    lat = live.cumulative(np.searchsorted(LAT_EDGES, live.latency), live.sec, LAT_EDGES.size + 1)
    sco = live.cumulative(np.searchsorted(SCORE_EDGES, live.score), live.sec,
                          SCORE_EDGES.size + 1)
    labels = np.cumsum(np.bincount(live.label_at, minlength=live.seconds))
    correct = live.cumulative(live.label_ok.astype(float), live.label_at)
    last_read = 0
    for t in range(CHECK_S, live.seconds + 1, CHECK_S):
        i, now = t - 1, T0 + timedelta(seconds=t)
        if in_gap(s, t):  # the source is down: the watcher has only its last reading
            window = LiveWindow(Summary(), T0, T0 + timedelta(seconds=last_read),
                                {"*": "metric source unreachable"})
        else:
            last_read = t
            window = LiveWindow(Summary(
                errors=RateCounts(int(errors[i]), int(requests[i])),
                latency=Histogram(LATENCY_BOUNDS, tuple(lat[i].tolist())),
                accuracy=RateCounts(int(correct[i]), int(labels[i])),
                predictions=Histogram(SCORE_BOUNDS, tuple(sco[i].tolist()))), T0, now)
        verdict = assess(pol, base.summary, window, now=now)
        if decide(verdict, pol, (), now).kind is DecisionKind.ROLLBACK:
            return t
    return None


def counters_of(live: Stream) -> Counters:
    """The stream as the per-second cumulative counters a replica's /stats would show."""
    return Counters(
        requests=np.cumsum(np.bincount(live.sec, minlength=live.seconds)),
        errors=live.cumulative(live.error.astype(float), live.sec),
        latency=live.cumulative(np.searchsorted(LAT_EDGES, live.latency), live.sec,
                                LAT_EDGES.size + 1),
        scores=live.cumulative(np.searchsorted(SCORE_EDGES, live.score), live.sec,
                               SCORE_EDGES.size + 1),
        labels=np.cumsum(np.bincount(live.label_at, minlength=live.seconds)),
        correct=live.cumulative(live.label_ok.astype(float), live.label_at),
        score_bounds=SCORE_BOUNDS, sec=live.sec,
        offset=live.offset if live.offset.size else np.zeros(live.sec.size),
        error=live.error.astype(int), latency_bin=np.searchsorted(LAT_EDGES, live.latency),
        score_bin=np.searchsorted(SCORE_EDGES, live.score))


def watch_with_cause(s: Scenario, live: Stream,
                     base: Baseline) -> tuple[float | None, str, int]:
    """The real WatchService with the default policy and settings, on a simulated clock:
    (time of the rollback, the signals behind it, the looks taken)."""
    return replay(counters_of(live), baseline=base.summary, stated=None, seconds=live.seconds,
                  gap=s.gap)


def oracle_alpha() -> float:
    """The error rate's share of the default policy's alpha: what the floor and oracle use."""
    pol = policy("errors first")
    return pol.alpha_for(next(x for x in pol.signals if x.name == "error_rate"))


def oracle_sprt(s: Scenario, live: Stream) -> float | None:
    """Wald's per-sample SPRT of the true rates (ERR against the scenario's), checked after
    every request: when the oracle whose expected sample size is the floor stops on this
    stream (the arrival time of the request that decides)."""
    at, error = live.arrivals()
    e = error.astype(float)
    llr = np.cumsum(e * math.log(s.err / ERR) + (1 - e) * math.log((1 - s.err) / (1 - ERR)))
    hits = np.nonzero(llr >= math.log((1 - ORACLE_BETA) / oracle_alpha()))[0]
    return float(at[hits[0]]) if hits.size else None


OURS = "lastgood watch service"
ORACLE = "oracle SPRT"
HAND = tuple(Scenario(f"hand-verified, then accuracy 90% -> {acc:.0%}", True, acc=acc,
                      label_share=1.0, label_delay_s=1.0, label_mean_s=2.0)
             for acc in (0.8, 0.7))
HAND_STATED = {"accuracy": ACC, "error_rate": ERR}
HAND_S = 300


def hand_run(task: tuple[int, int]) -> tuple[int, float | None]:
    """A version verified by hand (`verify --metric accuracy=0.9 --metric error_rate=0.01`),
    then a bad version under labelled traffic (every request labelled 1-3 s later), through the
    real watch with lastgood's default policy."""
    index, seed = task
    live = arriving(generate(HAND[index], np.random.default_rng([99, index, seed]), HAND_S,
                             labels_all=False), [99, index, seed])
    return index, replay(counters_of(live), baseline=None, stated=HAND_STATED,
                         seconds=live.seconds)[0]


def hand_report(found: list[tuple[int, float | None]]) -> None:
    print("\nend to end, default settings, no flags: a version verified by hand, then a bad one "
          "(the real watch service, simulated clock)")
    for index, s in enumerate(HAND):
        times = np.array([math.inf if t is None else t for i, t in found if i == index], float)
        median = float(np.quantile(times, 0.5, method="higher"))
        hits = int(np.isfinite(times).sum())
        print(f"  {s.name:<44} rolled back: median {fmt_s(median)}, p90 "
              f"{fmt_s(float(np.quantile(times, 0.9, method='higher')))} ({hits}/{times.size}); "
              f"median <= 30 s: {'PASS' if median <= 30 else 'FAIL'}")


STATED_TOLERANCES = (0.2, 0.5)  # the policy's own p99 tolerance; STATED_LATENCY_RELATIVE
STATED_READ = 3000  # requests behind the p99 a person states: five healthy minutes
BUSIER = (1.1, 1.2, 1.3)  # the same healthy version on a host this much slower than at the read
StatedTask = tuple[int, int, float, float]


def stated_run(task: StatedTask) -> tuple[StatedTask, float | None, str]:
    """A version verified by hand with `--metric p99_ms=X --metric error_rate=0.01`, X read off
    five healthy minutes, then a stream of SCENARIOS[index] (its latency `busier` times the
    read's) through the real watch, the stated latency judged at `relative` tolerance."""
    index, seed, relative, busier = task
    health.STATED_LATENCY_RELATIVE = relative  # this worker's run only
    s = SCENARIOS[index]
    rng = np.random.default_rng([77, index, seed])
    read = generate(replace(Scenario("read", False), daily=s.daily), rng, BASE_S,
                    labels_all=True)
    p99_ms = float(np.quantile(rng.choice(read.latency, STATED_READ, replace=False), 0.99)) * 1e3
    live = arriving(generate(s, rng, RUN_S, labels_all=False), [77, index, seed])
    live = replace(live, latency=live.latency * busier)
    found, cause, _ = replay(counters_of(live), baseline=None,
                             stated={"error_rate": ERR, "p99_ms": round(p99_ms)},
                             seconds=live.seconds, gap=s.gap)
    return task, found, cause


def stated_tasks(seeds: int, healthy: int) -> list[StatedTask]:
    streams = [(i, 1.0) for i, s in enumerate(SCENARIOS) if not s.regression or s.slow_share]
    streams += [(4, b) for b in BUSIER]  # the noise stream on a busier host
    return [(i, seed, r, b) for i, b in streams
            for seed in range(seeds if SCENARIOS[i].regression else healthy)
            for r in STATED_TOLERANCES]


def stated_report(found: list[tuple[StatedTask, float | None, str]]) -> None:
    print("\nstated p99: a version verified by hand with p99_ms read off five healthy minutes "
          "(and error_rate=0.01), then each stream through the real watch, the stated p99 "
          "judged at each relative tolerance (latency: rollbacks on the latency signal)")
    print(f"  {'stream':<44}" + "".join(f"{f'tolerance {r:.0%}':>34}"
                                        for r in STATED_TOLERANCES))
    for index, busier in sorted({(t[0], t[3]) for t, *_ in found}):
        s, cells = SCENARIOS[index], []
        for relative in STATED_TOLERANCES:
            runs = [(t, c) for task, t, c in found if task[0] == index
                    and task[2] == relative and task[3] == busier]
            times = np.array([math.inf if t is None else t for t, _ in runs], float)
            hits = int(np.isfinite(times).sum())
            latency = sum("latency" in c for t, c in runs if t is not None)
            if s.regression:
                cells.append(f"median {fmt_s(float(np.quantile(times, 0.5, method='higher')))}"
                             f" ({hits}/{len(runs)})")
            else:
                cells.append(f"{hits}/{len(runs)} rolled back ({latency} latency)")
        name = s.name if busier == 1.0 else f"{s.name}, host x{busier:g} slower"
        print(f"  {name:<44}" + "".join(f"{c:>34}" for c in cells))


def interval_psi(scores: np.ndarray, edges: np.ndarray) -> float:
    live = np.bincount(np.searchsorted(edges, scores), minlength=10) + 0.5
    live = live / live.sum()
    return float(np.sum((live - 0.1) * np.log(live / 0.1)))


def flagger(s: Scenario, live: Stream, base: Baseline,
            threshold: int = FLAGGER_THRESHOLD) -> int | None:
    return next((t for t, failed in flagger_trace(s, live, base) if failed >= threshold), None)


def flagger_trace(s: Scenario, live: Stream, base: Baseline) -> list[tuple[int, int]]:
    """(minute end, failed checks so far): any threshold's detection time is read off it."""
    failed, trace = 0, []
    for t in range(INTERVAL_S, live.seconds + 1, INTERVAL_S):
        now = (live.sec >= t - INTERVAL_S) & (live.sec < t)
        got = (live.label_at >= t - INTERVAL_S) & (live.label_at < t)
        if in_gap(s, t) or not now.any():  # a failed query, or "no values found"
            failed += 1
        else:
            bad = (live.error[now].mean() > max(1.5 * base.err, base.err + 0.01)
                   or np.quantile(live.latency[now], 0.99) > 1.5 * base.p99
                   or (got.any() and live.label_ok[got].mean() < base.acc - 0.05)
                   or interval_psi(live.score[now], base.score_edges) > 0.2)
            failed += int(bad)
        trace.append((t, failed))
    return trace


def mann_whitney_p(live: np.ndarray, base_sorted: np.ndarray, alternative: str) -> float:
    """scipy's asymptotic Mann-Whitney U p-value (tie and continuity corrected), against a
    pre-sorted baseline: U counts live > base pairs (ties half) with two binary searches."""
    n1, n2 = live.size, base_sorted.size
    below = np.searchsorted(base_sorted, live, "left")
    u = float(np.sum(below + 0.5 * (np.searchsorted(base_sorted, live, "right") - below)))
    n = n1 + n2
    ties = np.unique(np.concatenate([live, base_sorted]), return_counts=True)[1].astype(float)
    var = n1 * n2 / 12 * ((n + 1) - np.sum(ties**3 - ties) / (n * (n - 1)))
    if var <= 0:
        return 1.0
    mean, sd = n1 * n2 / 2, math.sqrt(var)
    if alternative == "greater":
        return normal_sf((u - mean - 0.5) / sd)
    if alternative == "less":
        return normal_sf(-(u - mean + 0.5) / sd)
    return min(1.0, 2 * normal_sf((max(u, n1 * n2 - u) - mean - 0.5) / sd))


def normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def check_mann_whitney() -> None:
    """The fast U above must agree with scipy's before any number is printed."""
    rng = np.random.default_rng(0)
    for live, base in ((rng.normal(0.1, 1, 300), rng.normal(0, 1, 900)),
                       ((rng.random(300) < 0.05) * 1.0, (rng.random(900) < 0.01) * 1.0)):
        for alternative in ("greater", "less", "two-sided"):
            ours = mann_whitney_p(live, np.sort(base), alternative)
            theirs = stats.mannwhitneyu(live, base, alternative=alternative,
                                        method="asymptotic").pvalue
            assert math.isclose(ours, theirs, rel_tol=1e-6, abs_tol=1e-12), (ours, theirs)


def mann_whitney_fails(live: np.ndarray, base_sorted: np.ndarray, alternative: str) -> bool:
    return live.size > 0 and mann_whitney_p(live, base_sorted, alternative) < 0.05


def kayenta(s: Scenario, live: Stream, base: Baseline, runs: int = KAYENTA_N) -> int | None:
    return kayenta_at(kayenta_trace(s, live, base), runs)


def kayenta_at(trace: list[tuple[int, int]], runs: int) -> int | None:
    return next((t for t, consecutive in trace if consecutive >= runs), None)


def kayenta_trace(s: Scenario, live: Stream, base: Baseline) -> list[tuple[int, int]]:
    """(minute end, consecutive failed minutes): any run length's detection time."""
    consecutive, trace = 0, []
    for t in range(INTERVAL_S, live.seconds + 1, INTERVAL_S):
        now = (live.sec >= t - INTERVAL_S) & (live.sec < t)
        got = (live.label_at >= t - INTERVAL_S) & (live.label_at < t)
        if in_gap(s, t) or not now.any():
            continue  # NODATA: the interval is skipped
        fails = (mann_whitney_fails(live.error[now].astype(float), base.samples["errors"],
                                    "greater")
                 or mann_whitney_fails(live.latency[now], base.samples["latency"], "greater")
                 or mann_whitney_fails(live.label_ok[got].astype(float), base.samples["correct"],
                                       "less")
                 or mann_whitney_fails(live.score[now], base.samples["score"], "two-sided"))
        consecutive = consecutive + 1 if fails else 0
        trace.append((t, consecutive))
    return trace


DETECTORS: dict[str, Callable[[Scenario, Stream, Baseline], int | None]] = {
    "lastgood even split": lambda s, live, b: lastgood(s, live, b, policy("even split")),
    "lastgood errors first": lambda s, live, b: lastgood(s, live, b, policy("errors first")),
    "Flagger-style": flagger,
    "Kayenta-style": kayenta,
}


Result = tuple[int, dict[str, float | None], float, dict[str, float | None], str, int]


def tuned_runs(s: Scenario, live: Stream, base: Baseline) -> dict[str, float | None]:
    """Detection times of the classics at every setting of their grids."""
    flag, kay = flagger_trace(s, live, base), kayenta_trace(s, live, base)
    found: dict[str, float | None] = {
        f"Flagger-style {k} checks": next((t for t, f in flag if f >= k), None)
        for k in FLAGGER_GRID}
    found |= {f"Kayenta-style {n} minutes": kayenta_at(kay, n) for n in KAYENTA_GRID}
    return found


def one_run(task: tuple[int, int]) -> Result:
    """Replay one seeded stream through every detector; also time lastgood's assess calls."""
    index, seed = task
    s = SCENARIOS[index]
    rng = np.random.default_rng([index, seed])
    base = baseline(s, rng)
    live = arriving(generate(s, rng, RUN_S, labels_all=False), [index, seed])
    found: dict[str, float | None] = {}
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, detector in DETECTORS.items():
            found[name] = detector(s, live, base)
            if name == "lastgood even split":
                spent = time.perf_counter() - started
        found[OURS], cause, looks = watch_with_cause(s, live, base)
        tuned = tuned_runs(s, live, base)
        if index == 0:
            tuned[ORACLE] = oracle_sprt(s, live)
    return index, found, spent, tuned, cause, looks


def fmt_s(value: float) -> str:
    if math.isinf(value):
        return ">30m"
    if value < 30 and value != round(value):
        return f"{value:.1f} s"
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} m"


def share(k: int, n: int) -> str:
    """k/n as a percentage with its two-sided 95 % Clopper-Pearson interval."""
    low = float(stats.beta.ppf(0.025, k, n - k + 1)) if k else 0.0
    high = float(stats.beta.ppf(0.975, k + 1, n - k)) if k < n else 1.0
    return f"{k / n:.0%} [{low:.0%}-{high:.0%}]"


def upper95(k: int, n: int) -> float:
    """Clopper-Pearson one-sided 95 % upper bound of a rate seen k times in n."""
    return 1.0 if k >= n else float(stats.beta.ppf(0.95, k + 1, n - k))


def kl_bernoulli(p: float, q: float) -> float:
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def kl_density(live: Callable[[float], float], base: Callable[[float], float], low: float,
               high: float) -> float:
    from scipy import integrate

    def term(x: float) -> float:
        f = live(x)
        return f * math.log(f / base(x)) if f > 0 else 0.0

    return float(integrate.quad(term, low, high, limit=400)[0])


def oracle_floor(index: int) -> float:
    """Seconds an oracle SPRT knowing the true regression needs on average (Wald)."""
    s, pol = SCENARIOS[index], policy("errors first")
    share = {0: "error_rate", 1: "latency_p99", 2: "accuracy", 3: "drift"}[index]
    alpha = pol.alpha_for(next(x for x in pol.signals if x.name == share))
    need = math.log((1 - ORACLE_BETA) / alpha)
    if index == 0:
        return need / kl_bernoulli(s.err, ERR) / s.rps
    if index == 2:
        labels_per_s = s.rps * LABEL_SHARE
        return need / kl_bernoulli(s.acc, ACC) / labels_per_s + LABEL_DELAY_S + LABEL_MEAN_S
    if index == 1:
        factor = slow_factor(s.slow_share)
        healthy = stats.lognorm(LAT_SIGMA, scale=math.exp(LAT_MU))
        slow = stats.lognorm(LAT_SIGMA, scale=math.exp(LAT_MU) * factor)
        kl = kl_density(lambda x: (1 - s.slow_share) * healthy.pdf(x)
                        + s.slow_share * slow.pdf(x), healthy.pdf, 1e-4, 60.0)
        return need / kl / s.rps
    kl = kl_density(stats.beta(s.beta_a, BETA_B).pdf, stats.beta(BETA_A, BETA_B).pdf,
                    1e-9, 1 - 1e-9)
    return need / kl / s.rps


FLOOR_STEPS = (
    ("oracle", "oracle SPRT 1% vs 5%, checked after every request"),
    ("null", "+ lastgood's null: 5% vs the tolerated rate"),
    ("prior", "+ the mixture over the unknown rate (ERROR_PRIOR)"),
    ("seconds", "+ looked at once a second, not per request"),
    ("watch", OURS + " (1 s; 0.2 s while leaning)"),
)


def tolerated_rate(base: Summary) -> float:
    """The error rate the default policy tolerates over `base`, as `judges._judge_rate` does."""
    errors = base.errors
    assert errors is not None
    pol = policy("errors first")
    signal = next(x for x in pol.signals if x.name == "error_rate")
    return signal.tolerated((errors.events + 0.5) / (errors.trials + 1))


def mixture_log_e(failures: np.ndarray, trials: np.ndarray, tolerated: float) -> np.ndarray:
    """`sequential.rate_test`'s log evidence with ERROR_PRIOR, for many counts at once."""
    logit = math.log(tolerated / (1 - tolerated))
    logs = []
    for step, weight in ERROR_PRIOR:
        p = 1 / (1 + math.exp(-(logit + step)))
        logs.append(math.log(weight) + failures * math.log(p / tolerated)
                    + (trials - failures) * math.log((1 - p) / (1 - tolerated)))
    combined: np.ndarray = np.logaddexp.reduce(np.array(logs), axis=0)
    return combined


def check_mixture() -> None:
    """The vectorised mixture above must be lastgood's own before any number is printed."""
    for f, n, tol in ((0, 0, 0.0125), (3, 40, 0.0125), (9, 150, 0.02), (1, 700, 0.004)):
        ours = float(mixture_log_e(np.array([f]), np.array([n]), tol)[0])
        theirs = rate_test(f, n, null_rate=tol, alpha=0.05, prior=ERROR_PRIOR).log_e
        assert math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-9), (ours, theirs)


def floor_run(seed: int) -> dict[str, float]:
    """One error-rate stream through the watch service and the tests that explain its time."""
    s = SCENARIOS[0]
    rng = np.random.default_rng([0, seed])
    base = baseline(s, rng)
    live = arriving(generate(s, rng, RUN_S, labels_all=False), [0, seed])
    at, error = live.arrivals()
    f, n = np.cumsum(error), np.arange(1, error.size + 1)
    tol, alpha = tolerated_rate(base.summary), oracle_alpha()

    def first(hit: np.ndarray, when: np.ndarray) -> float:
        found = np.nonzero(hit)[0]
        return float(when[found[0]]) if found.size else math.inf

    point = f * math.log(s.err / tol) + (n - f) * math.log((1 - s.err) / (1 - tol))
    mix = mixture_log_e(f, n, tol)
    looks = np.arange(1, RUN_S + 1)
    last = np.searchsorted(at, looks, "left") - 1  # the last request before each look
    at_looks = np.where(last >= 0, mix[np.maximum(last, 0)], 0.0)
    oracle = oracle_sprt(s, live)
    watched = watch_with_cause(s, live, base)[0]
    return {"oracle": math.inf if oracle is None else oracle,
            "null": first(point >= math.log(1 / alpha), at),
            "prior": first(mix >= math.log(1 / alpha), at),
            "seconds": first(at_looks >= math.log(1 / alpha), looks.astype(float)),
            "watch": math.inf if watched is None else watched,
            "all alpha": first(mix >= math.log(1 / DEFAULT_ALPHA), at),
            "tolerated": tol}


def median_ci(values: np.ndarray) -> tuple[float, float, float]:
    """The median and its distribution-free 95 % interval (order statistics)."""
    ordered, n = np.sort(values), values.size
    low = int(stats.binom.ppf(0.025, n, 0.5))
    high = min(int(stats.binom.ppf(0.975, n, 0.5)), n - 1)
    return float(np.quantile(ordered, 0.5, method="higher")), float(ordered[low]), \
        float(ordered[high])


def floor_report(rows: list[dict[str, float]]) -> None:
    s, alpha = SCENARIOS[0], oracle_alpha()
    floor = oracle_floor(0)
    tol = float(np.median([r["tolerated"] for r in rows]))
    need = math.log((1 - ORACLE_BETA) / alpha)
    same_null = need / kl_bernoulli(s.err, tol) / s.rps
    print(f"\nerror rate 1% -> 5% at 10 req/s on {len(rows)} seeds (the first are the table's): "
          "where the time goes")
    print(f"  floor (the issue's formula): log((1-beta)/alpha) / KL(5% || 1%) / 10 req/s with "
          f"alpha {alpha:.4f} (the error rate's share of the default policy's {DEFAULT_ALPHA}; "
          f"the policy's own test has no beta: it stops at evidence 1/alpha) and beta "
          f"{ORACLE_BETA} = {floor:.2f} s")
    print(f"  the same floor against lastgood's null, the tolerated rate ({tol:.2%} median): "
          f"KL(5% || {tol:.2%}) gives {same_null:.2f} s = {same_null / floor:.2f}x; no test "
          "that keeps false alarms <= alpha at the tolerated rate can expect to beat it")
    print(f"  {'':<54}{'median [95% CI]':>22}{'mean':>9}{'median/floor':>14}")
    for key, label in FLOOR_STEPS:
        times = np.array([r[key] for r in rows])
        median, low, high = median_ci(times)
        mean = float(np.mean(times[np.isfinite(times)]))
        print(f"  {label:<54}{f'{median:.1f} s [{low:.1f}-{high:.1f}]':>22}{mean:>7.1f} s"
              f"{median / floor:>13.2f}x")
    whole = np.array([r["all alpha"] for r in rows])
    floor_all = math.log((1 - ORACLE_BETA) / DEFAULT_ALPHA) / kl_bernoulli(s.err, ERR) / s.rps
    third = median_ci(np.array([r["prior"] for r in rows]))[0]
    print(f"  (the mixture per request with all of alpha {DEFAULT_ALPHA}, not its share: median "
          f"{median_ci(whole)[0]:.1f} s against a floor of {floor_all:.2f} s at that alpha = "
          f"{median_ci(whole)[0] / floor_all:.2f}x, at its share {third / floor:.2f}x: the "
          "split moves the time and the floor together)")
    ours = median_ci(np.array([r["watch"] for r in rows]))
    oracle = median_ci(np.array([r["oracle"] for r in rows]))[0]
    print(f"  target: {OURS} median <= 1.3x the floor ({1.3 * floor:.1f} s) on {len(rows)} "
          f"seeds: {ours[0]:.1f} s = {ours[0] / floor:.2f}x "
          f"(95% CI {ours[1] / floor:.2f}x-{ours[2] / floor:.2f}x): "
          f"{'PASS' if ours[0] <= 1.3 * floor else 'MISS'}; the oracle itself "
          f"{oracle / floor:.2f}x")


def fair_comparison(results: list[Result], lastgood_rate: float) -> list[str]:
    """Each classic at the smallest setting whose healthy false-rollback rate is lastgood's or
    lower, on the error-rate regression."""
    lines, healthy = [], [r for r in results if not SCENARIOS[r[0]].regression]
    errors = [r for r in results if r[0] == 0]
    ours = float(np.quantile([math.inf if r[1][OURS] is None else r[1][OURS] for r in errors],
                             0.5, method="higher"))
    for family, grid, unit in (("Flagger-style", FLAGGER_GRID, "checks"),
                               ("Kayenta-style", KAYENTA_GRID, "minutes")):
        chosen = None
        for value in grid:
            key = f"{family} {value} {unit}"
            rate = sum(r[3][key] is not None for r in healthy) / max(len(healthy), 1)
            if rate <= lastgood_rate:
                chosen = (key, rate)
                break
        if chosen is None:
            lines.append(f"  {family}: no setting in {grid} reaches {lastgood_rate:.1%} false "
                         "rollbacks: FAIL (cannot be compared at lastgood's rate)")
            continue
        key, rate = chosen
        theirs = float(np.quantile([math.inf if r[3][key] is None else r[3][key]
                                    for r in errors], 0.5, method="higher"))
        ratio = theirs / ours if ours > 0 else math.inf
        lines.append(f"  {key:<28} false rollbacks {rate:.1%} (lastgood {lastgood_rate:.1%}); "
                     f"error rate 1%->5% median {fmt_s(theirs)} vs lastgood {fmt_s(ours)} = "
                     f"{ratio:.1f}x >= 5x: {'PASS' if ratio >= 5 else 'FAIL'}")
    return lines


def report(results: list[Result], seeds: int, healthy: int, elapsed: float) -> None:
    names = [*DETECTORS, OURS]
    width = 26
    print(f"\n{'scenario':<34}" + "".join(f"{n:>{width}}" for n in names))
    print("time to detect: median / p90 (detected)")
    medians: dict[tuple[int, str], float] = {}
    within: dict[str, int] = {}
    rates: dict[str, list[int]] = {n: [0, 0] for n in names}
    for index, s in enumerate(SCENARIOS):
        rows = [r[1] for r in results if r[0] == index]
        cells = []
        for name in names:
            times = np.array([math.inf if r[name] is None else r[name] for r in rows], float)
            hits = int(np.isfinite(times).sum())
            if s.regression:
                # "higher": an order statistic, so undetected runs (inf) never turn into nan
                medians[index, name] = float(np.quantile(times, 0.5, method="higher"))
                within.setdefault(name, int(np.sum(times <= 15)))  # first: error rate
                p90 = float(np.quantile(times, 0.9, method="higher"))
                cells.append(f"{fmt_s(medians[index, name])} / {fmt_s(p90)} "
                             f"({hits}/{len(rows)})")
            else:
                rates[name][0] += hits
                rates[name][1] += len(rows)
                hours = sum(min(t, RUN_S) for t in times) / 3600
                cells.append(f"{hits / hours:.2f}/h ({hits}/{len(rows)} runs)")
        if index == 4:
            print("healthy streams: false rollbacks per hour (runs of 30 min with one)")
        print(f"{s.name:<34}" + "".join(f"{c:>{width}}" for c in cells))
    print("\ntargets (issue 5)")
    for name in names:
        median = medians[0, name]
        k, n = rates[name]
        print(f"  {name:<22} error rate 1%->5% median {fmt_s(median):>6} <= 15 s: "
              f"{'PASS' if median <= 15 else 'MISS'} ({share(within[name], seeds)} of runs "
              "within 15 s);"
              f"  false rollbacks {k}/{n} runs of 30 min = {k / n:.1%} (95% upper bound "
              f"{upper95(k, n):.1%}) <= 1%: {'PASS' if k / n <= 0.01 else 'MISS'}")
    print("\nstatistical floor: an oracle SPRT knowing the true regression "
          f"(alpha = the signal's share of the default policy, beta {ORACLE_BETA})")
    for index in range(4):
        floor, median = oracle_floor(index), medians[index, OURS]
        verdict = ""
        if index == 0:
            verdict = f" <= 1.3x: {'PASS' if median <= 1.3 * floor else 'FAIL'}"
        print(f"  {SCENARIOS[index].name:<34} floor {fmt_s(floor):>6}; {OURS} "
              f"median {fmt_s(median)} = {median / floor:.2f}x the floor{verdict}")
        if index == 0:
            oracle = float(np.quantile([math.inf if r[3][ORACLE] is None else r[3][ORACLE]
                                        for r in results if r[0] == 0], 0.5, method="higher"))
            print(f"  {'':<34} the oracle SPRT itself (per request) on the same streams: "
                  f"median {fmt_s(oracle)} = {oracle / floor:.2f}x the floor; {OURS} = "
                  f"{median / oracle:.2f}x the oracle")
            if oracle > 1.3 * floor:
                print(f"  {'':<34} NOTE: on these {seeds} seeds the oracle itself needs "
                      f"{oracle / floor:.2f}x the floor, so the 1.3x target is below what "
                      "the oracle achieves here; see the many-seed floor below")
    k, n = rates[OURS]
    causes: dict[str, int] = {}
    for r in results:
        if not SCENARIOS[r[0]].regression and r[1][OURS] is not None:
            causes[r[4] or "?"] = causes.get(r[4] or "?", 0) + 1
    print(f"\nfalse rollbacks of the {OURS} by signal: "
          + (", ".join(f"{c} {k_}" for k_, c in sorted(causes.items())) or "none"))
    healthy_looks = [r[5] / (min(r[1][OURS] or RUN_S, RUN_S) / 60) for r in results
                     if not SCENARIOS[r[0]].regression]
    print(f"looks of the {OURS} on healthy streams: {np.mean(healthy_looks):.1f} a minute "
          f"on average (max {max(healthy_looks):.1f}; 60 = one a second)")
    print(f"\nclassics tuned to lastgood's false-rollback rate ({k}/{n} healthy runs)")
    for line in fair_comparison(results, k / n):
        print(line)
    spent = [r[2] for r in results]
    checks = len(results) * RUN_S // CHECK_S
    print(f"\n{seeds} seeds per regression, {healthy} x 30 min per healthy stream; "
          f"{elapsed:.0f} s wall; the even split spent ~{sum(spent) / checks * 1e3:.2f} "
          f"ms per check (4 signals, every {CHECK_S} s)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50, help="runs per regression")
    parser.add_argument("--healthy-runs", type=int, default=20, help="30-min runs per stream")
    parser.add_argument("--quick", action="store_true", help="5 seeds, 5 healthy runs")
    parser.add_argument("--stated-only", action="store_true",
                        help="only the stated-p99 table (healthy streams and the p99 regression)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--floor-seeds", type=int, default=1000,
                        help="error-rate streams for the floor's many-seed median")
    args = parser.parse_args(argv)
    seeds, healthy = (5, 5) if args.quick else (args.seeds, args.healthy_runs)
    floor_seeds = 50 if args.quick else args.floor_seeds
    for name, value in (("--seeds", seeds), ("--healthy-runs", healthy),
                        ("--floor-seeds", floor_seeds), ("--workers", args.workers)):
        if value < 1:
            parser.error(f"{name} {value} must be at least 1")
    if args.stated_only:
        with multiprocessing.Pool(args.workers) as pool:
            stated_report(list(pool.imap_unordered(stated_run, stated_tasks(seeds, healthy))))
        return
    check_mann_whitney()
    check_mixture()
    tasks = [(i, seed) for i, s in enumerate(SCENARIOS)
             for seed in range(seeds if s.regression else healthy)]
    started = time.perf_counter()
    with multiprocessing.Pool(args.workers) as pool:
        results: list[Any] = list(pool.imap_unordered(one_run, tasks, chunksize=2))
        hands = list(pool.imap_unordered(hand_run, [(i, seed) for i in range(len(HAND))
                                                    for seed in range(seeds)]))
        floors = list(pool.imap_unordered(floor_run, range(floor_seeds), chunksize=8))
        stated = list(pool.imap_unordered(stated_run, stated_tasks(seeds, healthy)))
    report(results, seeds, healthy, time.perf_counter() - started)
    hand_report(hands)
    floor_report(floors)
    stated_report(stated)


if __name__ == "__main__":
    main()
