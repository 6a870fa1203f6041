"""A plain Ray Serve deployment of one model file (what a Ray Serve user writes), for
benchmarks/ray_switch.py: `reconfigure` loads the file its user_config names, the constructor
the file it is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray import serve
from starlette.requests import Request


def _load(path: str) -> Any:
    import skops.io

    return skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))


@serve.deployment(name="plain")
class PlainModel:
    def __init__(self, path: str) -> None:
        self.name, self.model = Path(path).name, _load(path)

    def reconfigure(self, config: dict[str, Any]) -> None:
        self.name, self.model = Path(config["path"]).name, _load(config["path"])

    async def __call__(self, request: Request) -> dict[str, Any]:
        records = (await request.json())["records"]
        columns = ("sepal_length", "sepal_width", "petal_length", "petal_width")
        rows = [[r[c] for c in columns] for r in records]
        return {"model": self.name, "predictions": self.model.predict(rows).tolist()}
