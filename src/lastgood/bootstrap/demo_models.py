"""The demo's models and data: wine classifiers trained on the spot on the data set that ships
inside scikit-learn, saved with skops, with their schema and golden examples, and the held-out
rows the demo's load generator sends with their true labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lastgood.domain.versions import Column, GoldenExample, Schema

__all__ = ["Sample", "train", "train_mislabelled", "wine_samples"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One request the load generator sends, with the label it reports as feedback."""

    record: dict[str, float]
    label: int


def train(folder: Path) -> list[dict[str, Any]]:
    """Three small models: a solid one, a better one, and one trained on corrupted labels."""
    import numpy as np
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from skops.io import dump

    data = load_wine()
    names = [str(n).replace("/", "_") for n in data.feature_names]
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=7, stratify=data.target)
    noisy = np.random.default_rng(3).permutation(np.asarray(y_train))  # labels broken upstream
    recipes = [
        ("v1.0", make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)), y_train),
        ("v2.0", RandomForestClassifier(n_estimators=50, random_state=0), y_train),
        ("v3.0", RandomForestClassifier(n_estimators=50, random_state=0), noisy),
    ]
    built = []
    for tag, estimator, labels in recipes:
        estimator.fit(x_train, labels)
        path = folder / f"wine-{tag}.skops"
        dump(estimator, path)
        accuracy = float((estimator.predict(x_test) == y_test).mean())
        rows = x_test[:5]
        golden = tuple(GoldenExample(dict(zip(names, map(float, row), strict=True)), int(pred))
                       for row, pred in zip(rows, estimator.predict(rows), strict=True))
        built.append({"tag": tag, "path": path, "accuracy": accuracy, "golden": golden,
                      "schema": Schema(inputs=tuple(Column(n, "float64") for n in names),
                                       outputs=(Column("class", "int64"),))})
    return built


def train_mislabelled(folder: Path) -> dict[str, Any]:
    """v4.0: the same recipe as v2.0, trained after a label-mapping bug shifted every class."""
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split
    from skops.io import dump

    data = load_wine()
    names = [str(n).replace("/", "_") for n in data.feature_names]
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=7, stratify=data.target)
    model = RandomForestClassifier(n_estimators=50, random_state=0).fit(x_train, (y_train + 1) % 3)
    path = folder / "wine-v4.0.skops"
    dump(model, path)
    golden = tuple(GoldenExample(dict(zip(names, map(float, row), strict=True)), int(pred))
                   for row, pred in zip(x_test[:5], model.predict(x_test[:5]), strict=True))
    return {"tag": "v4.0", "path": path, "golden": golden,
            "accuracy": float((model.predict(x_test) == y_test).mean()),
            "schema": Schema(inputs=tuple(Column(n, "float64") for n in names),
                             outputs=(Column("class", "int64"),))}


def wine_samples() -> list[Sample]:
    """The held-out wine rows (the same split the demo trains on) with their true labels."""
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    data = load_wine()
    names = [str(n).replace("/", "_") for n in data.feature_names]
    _, x_test, _, y_test = train_test_split(data.data, data.target, test_size=0.3,
                                            random_state=7, stratify=data.target)
    return [Sample(dict(zip(names, map(float, row), strict=True)), int(label))
            for row, label in zip(x_test, y_test, strict=True)]
