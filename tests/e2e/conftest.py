"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers_models import three_iris_skops


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three distinct iris models, each with golden examples from its own predictions."""
    return three_iris_skops(tmp_path_factory.mktemp("models"))
