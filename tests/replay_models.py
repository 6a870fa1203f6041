"""A city pipeline in three versions, written by MLflow's own `save_model`, for replay tests.

    v1  OneHotEncoder(handle_unknown="ignore") on paris/lyon/lille: answers any city
    v2  OneHotEncoder(handle_unknown="error") on paris/lyon/lille: raises on marseille
    v3  OneHotEncoder(handle_unknown="ignore") on the four cities: the version live today

Today's traffic carries `city = "marseille"`, which v2's encoder never saw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tests.mlflow_zoo import Versions, save_sklearn

OLD_CITIES = ("paris", "lyon", "lille")
TODAY_CITIES = (*OLD_CITIES, "marseille")


def city_frame(cities: tuple[str, ...], rows: int = 120) -> tuple[pd.DataFrame, pd.Series]:
    """`city` (string) and `size` (float) with a label that depends on both."""
    index = np.arange(rows)
    city = pd.Series(np.array(cities)[index % len(cities)], dtype=object)
    size = pd.Series((index * 37 % 100) / 10.0, dtype="float64")
    label = ((size > 5.0) ^ (city == "lyon")).astype("int64")
    return pd.DataFrame({"city": city, "size": size}), label


def city_pipeline(*, unknown: str) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer([("city", OneHotEncoder(handle_unknown=unknown), ["city"]),
                                 ("size", StandardScaler(), ["size"])])
    return Pipeline([("columns", columns), ("classify", LogisticRegression(max_iter=1000))])


def build_city_versions(root: Path) -> list[Path]:
    """The three MLflow directories, v1..v3."""
    versions = Versions(root, "city")
    for unknown, cities in (("ignore", OLD_CITIES), ("error", OLD_CITIES),
                            ("ignore", TODAY_CITIES)):
        frame, label = city_frame(cities)
        save_sklearn(versions, city_pipeline(unknown=unknown).fit(frame, label), frame,
                     fmt="skops")
    return list(versions.dirs)


def todays_records(count: int) -> list[dict[str, Any]]:
    """`count` requests' worth of today's records: one in four from marseille."""
    frame, _ = city_frame(TODAY_CITIES, rows=count)
    return [{"city": str(c), "size": float(s)} for c, s in zip(frame["city"], frame["size"],
                                                              strict=True)]
