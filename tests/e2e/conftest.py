"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers_models import train_iris, train_iris_skops


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three distinct iris models, each with golden examples from its own predictions."""
    folder = tmp_path_factory.mktemp("models")
    out = []
    for i in range(3):
        model = train_iris(feature_names=None)
        model.set_params(C=1.0 / (i + 1))
        path = train_iris_skops(folder / f"iris-{i}.skops", model=model)
        out.append(path)
    return out
