"""`lastgood metrics` as a user types it, on SQLite and PostgreSQL: the history the replicas
wrote, with gaps, markers and baselines, in 80 columns or as JSON; bad spans and unknown names
refused in one line (exit 2); the rollback archive carries the history around the incident."""

from __future__ import annotations

import json
import math
import tarfile
from datetime import UTC, datetime
from pathlib import Path

from lastgood.domain.history import HistoryPoint, epoch_s
from lastgood.domain.measurements import LATENCY_BOUNDS, Histogram, Moments, RateCounts, Summary
from tests.e2e.cli import Cli, assert_clean_error
from tests.e2e.test_cli_rollback import ENV, cli, sdk, setup_history

__all__ = ["cli"]  # the fixture, on both databases


def write_history(cli: Cli) -> None:
    """Two replicas' points of v3: 30 to 20 minutes ago, then nothing, then the last 8 minutes."""
    now = epoch_s(datetime.now(UTC)) // 10 * 10
    seconds = [*range(1800, 1200, -10), *range(480, 0, -10)]
    with sdk(cli) as lg, lg.services.ports.uow() as uow:
        uow.history.add([HistoryPoint("iris", "production", 3, replica, 10, now - s, Summary(
            errors=RateCounts(2, 40), accuracy=RateCounts(7, 10),
            latency=Histogram.of([0.012] * 40, LATENCY_BOUNDS)))
            for s in seconds for replica in ("a", "b")])
        uow.commit()


def test_metrics_table_json_and_the_archive(cli: Cli, models: list[Path],
                                            tmp_path: Path) -> None:
    setup_history(cli, models, verify_second=False)
    write_history(cli)
    done = cli("rollback", "iris", *ENV, "--reason", "errors up", "--yes", "--json")
    assert done.code == 0, done.err

    table = cli("metrics", "iris", *ENV, "--since", "1h", env={"COLUMNS": "80"})
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert max(len(line) for line in lines) <= 80, table.out
    assert "rollback v3 -> v1" in table.out
    assert "deploy v3" in table.out
    assert "v1 from" in table.out  # the restored version's span and its own baseline
    assert "judged against v1's record" in table.out
    assert any("gap" in line for line in lines)  # ten minutes without points
    assert "Z" in lines[0]  # times with their zone
    rows = [line for line in lines if " v3 " in line and " 480 " in line]  # 6 x 2 x 40 a min
    assert rows, table.out

    data = cli("metrics", "iris", *ENV, "--since", "1h", "--json").json()
    assert data["resolution_s"] == 10
    assert len(data["points"]) == 60 + 48
    assert {p["requests"] for p in data["points"]} == {80}
    assert {p["error_rate"] for p in data["points"]} == {0.05}
    assert [m["kind"] for m in data["markers"]][-1] == "rollback"

    archive = cli("archive", "list", "--json").json()[0]
    exported = tmp_path / "incident.tar"
    assert cli("archive", "export", archive["id"], str(exported)).code == 0
    with tarfile.open(exported) as tar:
        handle = tar.extractfile("history.json")
        assert handle is not None
        kept = json.loads(handle.read())
    assert kept["resolution_s"] == 60  # more than an hour: the one-minute tier
    assert sum(p["requests"] for p in kept["points"]) == 108 * 80  # every request kept
    assert {p["version"] for p in kept["points"]} == {3}
    assert kept["markers"][-1]["kind"] == "rollback"  # archived after the switch


def test_bad_input_is_one_line_with_the_fix(cli: Cli, models: list[Path]) -> None:
    setup_history(cli, models, verify_second=False)
    assert_clean_error(cli("metrics", "iris", *ENV, "--since", "yesterday"), 2,
                       "cannot read the span", "30m, 1h, 1d or 1w")
    assert_clean_error(cli("metrics", "iris", *ENV, "--since", "90d"), 2, "1m to 30d")
    assert_clean_error(cli("metrics", "irsi", *ENV), 2, "irsi")
    assert_clean_error(cli("metrics", "iris", "--env", "prod"), 2, "prod")
    empty = cli("metrics", "iris", *ENV, "--since", "5m")
    assert empty.code == 0
    assert "no metric history" in empty.out


def hand_psi(baseline: list[int], live: list[int]) -> float:
    """The population stability index worked out here, half a count added to every bin."""
    b = [(c + 0.5) / (sum(baseline) + 0.5 * len(baseline)) for c in baseline]
    x = [(c + 0.5) / (sum(live) + 0.5 * len(live)) for c in live]
    return sum((xi - bi) * math.log(xi / bi) for bi, xi in zip(b, x, strict=True))


def test_drift_and_custom_metrics_are_kept_per_version(cli: Cli, models: list[Path]) -> None:
    """v3 verified with a measured record (its predictions 50/50); its replicas then see 90/10
    and feedback revenue: the history keeps both, the table and --json show them."""
    from lastgood.domain.baselines import summary_to_dict
    from lastgood.domain.deployments import VerifiedRecord

    setup_history(cli, models, verify_second=False)
    now = datetime.now(UTC)
    base = [50, 50, 0]
    with sdk(cli) as lg, lg.services.ports.uow() as uow:
        live = uow.deployments.live("iris", "production")
        assert live is not None
        uow.deployments.set_verified(live.id, VerifiedRecord(
            baseline={"error_rate": 0.0}, window_start=live.started_at, window_end=now,
            approver="ana", at=now, reason="baked", distribution=summary_to_dict(Summary(
                errors=RateCounts(0, 100), predictions=Histogram((0.5, 1.5), tuple(base))))))
        at = epoch_s(now) // 10 * 10  # the bucket of now: v3 (deployed just now) is live
        uow.history.add([HistoryPoint("iris", "production", 3, replica, 10, at, Summary(
            errors=RateCounts(0, 50), predictions=Histogram((0.5, 1.5), (45, 5, 0)),
            custom={"revenue": Moments(5, mean, 0.0)})) for replica, mean in (("a", 10.0),
                                                                             ("b", 20.0))])
        uow.commit()
    data = cli("metrics", "iris", *ENV, "--since", "1h", "--json").json()
    [point] = data["points"]
    assert point["drift_psi"] == round(hand_psi(base, [90, 10, 0]), 4)
    assert point["custom"] == {"revenue": 15.0}  # both replicas' means, weighted by count
    table = cli("metrics", "iris", *ENV, "--since", "1h", env={"COLUMNS": "80"})
    assert table.code == 0, table.err
    assert max(len(line) for line in table.out.splitlines()) <= 80, table.out
    assert "drift and custom metrics" in table.out
    assert "custom.revenue" in table.out
    row = next(line for line in table.out.splitlines() if f"{point['drift_psi']:.3f}" in line)
    assert " 15 " in row
