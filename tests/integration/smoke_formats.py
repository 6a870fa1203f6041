"""Model formats the smoke child imports in tests: a version's model name says what its loader
does (answers, hangs, or kills the process), so a batch can be driven through a real child."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lastgood.domain.versions import Version


class DoubleIt:
    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        return [2 * r["x"] for r in records]


class ScriptedFormats:
    def load(self, version: Version, directory: Path) -> DoubleIt:
        if version.model == "hangs":
            time.sleep(600)
        if version.model == "dies":
            os._exit(3)
        return DoubleIt()
