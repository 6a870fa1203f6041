"""How MLflow model names become lastgood model names in `sync mlflow`."""

from __future__ import annotations

import pytest

from lastgood.services.mlflow_sync import lastgood_name, sync_names


@pytest.mark.parametrize(("mlflow", "lastgood"), [
    ("fraud", "fraud"),
    ("Fraud Detector", "fraud-detector"),
    ("team/Fraud  v2", "team-fraud-v2"),
    ("_private", "private"),
    ("%%%", None),
    ("Ünïcode", "n-code"),
])
def test_lastgood_name(mlflow: str, lastgood: str | None) -> None:
    assert lastgood_name(mlflow) == lastgood


def test_a_valid_name_wins_a_clash_and_the_other_is_skipped() -> None:
    names, skipped = sync_names(["Churn Model", "churn-model", "Fraud", "%%%"])
    assert names == {"churn-model": "churn-model", "fraud": "Fraud"}
    assert [line.split(" skipped")[0] for line in skipped] == ["MLflow model '%%%'",
                                                               "MLflow model 'Churn Model'"]


def test_a_clash_without_a_valid_name_skips_both() -> None:
    names, skipped = sync_names(["Churn Model", "churn model"])
    assert names == {}
    assert len(skipped) == 2
    assert all("rename one of them" in line for line in skipped)
