"""The one serialisation of each record: what the views show is what the SQL rows keep, and rows
written before it (older spellings) still read back as the same records."""

from __future__ import annotations

from datetime import timedelta

from lastgood.adapters import registry_rows as rows
from lastgood.domain import codec
from lastgood.domain.deployments import Deployment, RuntimeDrift, VerifiedRecord
from lastgood.domain.versions import Column, GoldenExample, GoldenSource
from lastgood.testing import EPOCH, make_environment


def verified_deployment() -> Deployment:
    record = VerifiedRecord(baseline={"error_rate": 0.01}, window_start=EPOCH,
                            window_end=EPOCH + timedelta(minutes=10), approver="bob",
                            at=EPOCH + timedelta(minutes=10), reason="bake passed",
                            distribution={"format": "lastgood-summary/1",
                                          "errors": {"events": 5, "trials": 500}})
    return Deployment(id=7, model="fraud-detector", env="production", version=2,
                      started_at=EPOCH, deployed_by="alice", reason="ship v2", verified=record)


def test_the_view_keeps_the_distribution_the_rows_keep() -> None:
    dep = verified_deployment()
    view = codec.deployment_to_json(dep)["verified"]
    assert view["distribution"] == {"format": "lastgood-summary/1",
                                    "errors": {"events": 5, "trials": 500}}
    assert dep.verified is not None
    assert view == codec.verified_to_json(dep.verified)
    assert codec.deployment_from_json(codec.deployment_to_json(dep)) == dep


def test_golden_examples_stored_under_their_field_names_still_read() -> None:
    older = {"inputs": {"amount": 1.0}, "expected": 0, "tolerance": 0.5, "source": "recorded"}
    assert codec.golden_from_json(older) == GoldenExample({"amount": 1.0}, 0, 0.5,
                                                          GoldenSource.RECORDED)
    now = codec.golden_to_json(codec.golden_from_json(older))
    assert now == {"input": {"amount": 1.0}, "output": 0, "tolerance": 0.5,
                   "source": "recorded"}


def test_environment_settings_keep_an_empty_feature_schema_apart_from_none() -> None:
    for schema in ((), None, (Column("x", "float64", (3,), optional=True),)):
        env = make_environment("production", feature_schema=schema, mlflow_alias="prod")
        again = rows.to_environment("production", rows.environment_settings(env))
        assert again == env
        assert codec.environment_from_json(codec.environment_to_json(env)) == env


def test_older_environment_settings_read_with_full_columns_and_defaults() -> None:
    older = {"feature_schema": [{"name": "x", "dtype": "float64", "shape": [], "optional": False}],
             "runtime_drift": "exact"}
    env = rows.to_environment("staging", older)
    assert env == make_environment("staging", feature_schema=(Column("x", "float64"),),
                                   runtime_drift=RuntimeDrift.EXACT)
