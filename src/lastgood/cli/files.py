"""Read the user's JSON/YAML documents with errors that name the file, the line and the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lastgood.domain.errors import InvalidInput


def read_document(path: Path, *, what: str) -> Any:
    """Parse a JSON or YAML file (by extension; JSON otherwise)."""
    if not path.is_file():
        raise InvalidInput(f"{what} file {str(path)!r} does not exist", fix="check the path")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {what} file {str(path)!r}: {exc}",
                           fix="pass a readable UTF-8 JSON or YAML file") from exc
    if not text.strip():
        raise InvalidInput(f"{what} file {str(path)!r} is empty", fix="fill it in")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml  # only for YAML files: most commands read none

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" line {mark.line + 1}" if mark is not None else ""
            raise InvalidInput(f"{what} file {str(path)!r}{line} is not valid YAML",
                               fix="fix the syntax there") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} file {str(path)!r} line {exc.lineno} is not valid JSON: "
                           f"{exc.msg}", fix="fix the syntax there") from exc
