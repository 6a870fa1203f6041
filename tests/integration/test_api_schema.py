"""schemathesis (its CLI, `--checks all`) against the control plane on a real uvicorn on
loopback, holding a real model history, with the dashboard mounted as `lastgood server` serves
it: no 5xx, every response documented, every schema-valid request accepted and every
schema-violating one refused, i.e. /openapi.json says what the server enforces.

`/api/v1/stream` is left out: it never ends by design (tested on a real server instead).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lastgood.dashboard import mount
from tests.helpers_models import train_iris, train_iris_skops
from tests.integration import schemathesis_cli
from tests.integration.api_harness import ENV, MODEL, ApiHarness
from tests.net import running

pytestmark = pytest.mark.slow

# The one place the run is told anything: an upload's bytes are a model and its metadata is
# judged against them (the flavor against the file's format, a signature against its digest),
# which no JSON Schema can say, so a generated upload that is well formed is refused 400 as
# "not a model" after every rule the schema does say (non-empty files, the meta part) passed.
CONFIG = """
[[operations]]
include-path = "/api/v1/models/{name}/versions"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409"]
"""


def seeded_world(folder: Path) -> ApiHarness:
    """A control plane with v1, v2 verified and v3 live, and a forensic archive."""
    world = ApiHarness(keys_dir=folder / "keys")
    for i in range(3):
        model = train_iris(feature_names=None)
        model.set_params(C=1.0 / (i + 1))
        path = train_iris_skops(folder / f"iris-{i}.skops", model=model)
        assert world.upload(path, tag=f"v{i + 1}.0").status_code == 201
    for n in (1, 2, 3, 2):
        world.clock.advance(60)
        world.as_("operator", "POST", f"/models/{MODEL}/deploy",
                  json={"version": n, "env": ENV, "reason": "seed"})
        world.as_("operator", "POST", f"/models/{MODEL}/verify",
                  json={"env": ENV, "baseline": {"p95_ms": 40.0}, "reason": "seed"})
    world.clock.advance(60)
    world.as_("operator", "POST", f"/models/{MODEL}/deploy",
              json={"version": 3, "env": ENV, "reason": "seed", "force": True})
    rolled = world.as_("operator", "POST", f"/models/{MODEL}/rollback",
                       json={"env": ENV, "reason": "s"})
    assert rolled.status_code == 200, rolled.text
    return world


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ApiHarness]]:
    world = seeded_world(tmp_path_factory.mktemp("world"))
    mount(world.app, world.services)  # as `lastgood server` serves it: with the dashboard
    with running(world.app) as base:
        yield base, world


def check(base: str, world: ApiHarness, workdir: Path, *, phases: str,
          extra: tuple[str, ...] = ()) -> schemathesis_cli.Run:
    (workdir / "schemathesis.toml").write_text(CONFIG)
    run = schemathesis_cli.run(
        f"{base}/openapi.json", workdir=workdir, config=workdir / "schemathesis.toml",
        headers={"Authorization": f"Bearer {world.tokens['admin']}"}, max_examples=8,
        phases=phases, extra=("--exclude-path", "/api/v1/stream", *extra))
    assert run.exit_code == 0, run.summary
    return run


def test_every_operation_does_what_the_openapi_document_says(
        control_plane: tuple[str, ApiHarness], tmp_path: Path) -> None:
    base, world = control_plane
    run = check(base, world, tmp_path, phases="examples,coverage,fuzzing")
    tested, selected = run.tested
    assert tested == selected > 25, run.summary


def test_sequences_of_operations_do_what_the_openapi_document_says(
        control_plane: tuple[str, ApiHarness], tmp_path: Path) -> None:
    """The stateful phase follows links between operations (a version listed, then shown,
    deployed, retired). Revoking a token is left out of it: the run would find and revoke its
    own, and every request after would be a 401; the other phases test that operation."""
    base, world = control_plane
    run = check(base, world, tmp_path, phases="stateful",
                extra=("--exclude-path", "/api/v1/tokens/{token_id}"))
    assert run.tested[0] >= 5, run.summary  # the operations some link leads to or from
