"""Model formats the smoke child imports in tests: a version's model name says what its loader
does (answers, hangs, kills the process, names the process, or reads its own file), so versions
can be driven through a real child."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lastgood.domain.versions import Version


class DoubleIt:
    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        return [2 * r["x"] for r in records]


@dataclass(frozen=True)
class Constant:
    value: Any

    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        return [self.value for _ in records]


class ScriptedFormats:
    def load(self, version: Version, directory: Path) -> DoubleIt | Constant:
        if version.model == "hangs":
            time.sleep(600)
        if version.model == "dies":
            os._exit(3)
        if version.model == "pid":
            return Constant(os.getpid())
        if version.model == "reads":
            return Constant((directory / version.manifest.files[0].path).read_text())
        return DoubleIt()
