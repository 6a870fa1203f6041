"""Contract: environments, deployments and the generation counter on every registry backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lastgood.domain.deployments import (
    CustomCheck,
    DeploymentEnd,
    Environment,
    RuntimeDrift,
    SwitchMode,
)
from lastgood.domain.errors import Conflict, NotFound
from lastgood.domain.versions import Column
from lastgood.ports import UnitOfWorkFactory
from lastgood.testing import EPOCH, make_new_version, make_verified_record

LATER = EPOCH + timedelta(hours=1, microseconds=42)


@pytest.fixture
def seeded(registry: UnitOfWorkFactory) -> UnitOfWorkFactory:
    """A registry with fraud@1..3."""
    with registry() as uow:
        for _ in range(3):
            uow.versions.add(make_new_version("fraud"), at=EPOCH, actor="ana")
        uow.commit()
    return registry


def test_environments_round_trip_every_setting(registry: UnitOfWorkFactory) -> None:
    env = Environment(
        name="production", feature_schema=(Column("amount", "float64", (3,)),),
        expected_outputs=(Column("score", "float32"),), runtime_drift=RuntimeDrift.EXACT,
        switch_mode=SwitchMode.COMMAND, deploy_command="make deploy",
        checks=(CustomCheck("latency", command="./check.sh", timeout_s=5.0),
                CustomCheck("fair", entry_point="team.checks:fairness")),
        require_signature=True, trusted_keys=("k1", "k2"), switch_timeout_s=12.5,
    )
    with registry() as uow:
        assert uow.environments.put(env) == env
        uow.environments.put(Environment(name="staging"))
        uow.commit()
    with registry() as uow:
        assert uow.environments.get("production") == env
        assert uow.environments.get("staging") == Environment(name="staging")
        assert [e.name for e in uow.environments.list()] == ["production", "staging"]


def test_put_replaces_an_environment(registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        uow.environments.put(Environment(name="staging", deploy_command="old"))
        uow.environments.put(Environment(name="staging", deploy_command="new"))
        uow.commit()
    with registry() as uow:
        assert [e.deploy_command for e in uow.environments.list()] == ["new"]


def test_unknown_environment_names_the_known_ones(registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        uow.environments.put(Environment(name="staging"))
        with pytest.raises(NotFound, match="unknown environment 'prod' — known environments: "
                                           "staging; create one with `lastgood env set NAME`"):
            uow.environments.get("prod")


def test_a_deployment_starts_live_and_ends(seeded: UnitOfWorkFactory) -> None:
    with seeded() as uow:
        assert uow.deployments.live("fraud", "production") is None
        dep = uow.deployments.start(model="fraud", env="production", version=2, at=EPOCH,
                                    actor="ana", reason="release", operation_id="op-1")
        uow.commit()
    assert (dep.version, dep.started_at, dep.deployed_by, dep.reason, dep.operation_id) == (
        2, EPOCH, "ana", "release", "op-1")
    assert dep.is_live
    assert not dep.is_verified
    with seeded() as uow:
        assert uow.deployments.live("fraud", "production") == dep
        assert uow.deployments.live("fraud", "staging") is None
        uow.deployments.end(dep.id, at=LATER, end=DeploymentEnd.ROLLED_BACK, reason="errors")
        uow.commit()
    with seeded() as uow:
        ended = uow.deployments.get(dep.id)
        assert uow.deployments.live("fraud", "production") is None
    assert (ended.ended_at, ended.end, ended.end_reason) == (
        LATER, DeploymentEnd.ROLLED_BACK, "errors")


def test_history_is_newest_first_per_model_and_env(seeded: UnitOfWorkFactory) -> None:
    with seeded() as uow:
        ids = []
        for version in (1, 2, 3):
            live = uow.deployments.live("fraud", "production")
            if live is not None:
                uow.deployments.end(live.id, at=EPOCH, end=DeploymentEnd.SUPERSEDED, reason="")
            ids.append(uow.deployments.start(model="fraud", env="production", version=version,
                                             at=EPOCH, actor="ana", reason="",
                                             operation_id=None).id)
        uow.deployments.start(model="fraud", env="staging", version=1, at=EPOCH, actor="ana",
                              reason="", operation_id=None)
        uow.commit()
    with seeded() as uow:
        history = uow.deployments.history("fraud", "production")
        assert [d.id for d in history] == ids[::-1]
        assert [d.version for d in history] == [3, 2, 1]
        assert [d.is_live for d in history] == [True, False, False]
        assert uow.deployments.history("churn", "production") == []


def test_verified_record_round_trips(seeded: UnitOfWorkFactory) -> None:
    record = make_verified_record(at=LATER, baseline={"error_rate": 0.02})
    with seeded() as uow:
        dep = uow.deployments.start(model="fraud", env="production", version=1, at=EPOCH,
                                    actor="ana", reason="", operation_id=None)
        verified = uow.deployments.set_verified(dep.id, record)
        uow.commit()
    with seeded() as uow:
        assert uow.deployments.get(dep.id) == verified
    assert verified.verified == record


def test_missing_or_ended_deployments_are_refused(seeded: UnitOfWorkFactory) -> None:
    with seeded() as uow:
        with pytest.raises(NotFound, match="no deployment #99"):
            uow.deployments.get(99)
        with pytest.raises(NotFound, match="no deployment #99"):
            uow.deployments.end(99, at=EPOCH, end=DeploymentEnd.UNDEPLOYED, reason="")
        dep = uow.deployments.start(model="fraud", env="production", version=1, at=EPOCH,
                                    actor="ana", reason="", operation_id=None)
        uow.deployments.end(dep.id, at=EPOCH, end=DeploymentEnd.UNDEPLOYED, reason="")
        with pytest.raises(Conflict, match=f"deployment #{dep.id} has already ended"):
            uow.deployments.end(dep.id, at=EPOCH, end=DeploymentEnd.UNDEPLOYED, reason="")


def test_a_deployment_needs_a_registered_version(seeded: UnitOfWorkFactory) -> None:
    with seeded() as uow:
        with pytest.raises(NotFound, match="model 'fraud' has no version 9"):
            uow.deployments.start(model="fraud", env="production", version=9, at=EPOCH,
                                  actor="ana", reason="", operation_id=None)
        with pytest.raises(NotFound, match="unknown model 'churn'"):
            uow.deployments.start(model="churn", env="production", version=1, at=EPOCH,
                                  actor="ana", reason="", operation_id=None)


def test_generation_grows_when_the_desired_state_of_an_env_changes(
        seeded: UnitOfWorkFactory) -> None:
    with seeded() as uow:
        assert uow.deployments.generation("production") == 0
        dep = uow.deployments.start(model="fraud", env="production", version=1, at=EPOCH,
                                    actor="ana", reason="", operation_id=None)
        uow.commit()
    with seeded() as uow:
        assert uow.deployments.generation("production") == 1
        uow.deployments.end(dep.id, at=EPOCH, end=DeploymentEnd.SUPERSEDED, reason="")
        uow.deployments.start(model="fraud", env="production", version=2, at=EPOCH,
                              actor="ana", reason="", operation_id=None)
        uow.deployments.start(model="fraud", env="staging", version=2, at=EPOCH,
                              actor="ana", reason="", operation_id=None)
        uow.commit()
    with seeded() as uow:
        assert uow.deployments.generation("production") == 3
        assert uow.deployments.generation("staging") == 1
        uow.deployments.start(model="fraud", env="staging", version=3, at=EPOCH,
                              actor="ana", reason="", operation_id=None)
    with seeded() as uow:  # rolled back with its deployment
        assert uow.deployments.generation("staging") == 1
