"""pickle and joblib: refused unless the registrant accepts that loading them runs their code."""

from __future__ import annotations

import importlib
import pickle
import pickletools
from pathlib import Path
from typing import Any

from lastgood.adapters.formats.detect import looks_like_pickle
from lastgood.adapters.formats.records import unreadable
from lastgood.domain.errors import UnsafeFormat
from lastgood.domain.flavors import Inspection

FIX_PICKLE = ("convert it to skops or ONNX, or pass --allow-pickle to accept the risk "
              "(the version is marked unsafe_format)")


def refuse(path: Path, what: str = "a pickle/joblib file") -> UnsafeFormat:
    """The refusal for an artifact whose loading executes code from the file."""
    return UnsafeFormat(
        f"{path.name} is {what}: loading a pickle runs arbitrary code from the file",
        fix=FIX_PICKLE, details={"path": str(path)})


def check_stream(path: Path) -> None:
    """Walk a plain pickle's opcodes without executing any, so a cut file is refused.

    joblib files interleave raw array bytes with the opcodes (or are compressed), so those are
    walked only up to the first joblib marker.
    """
    with path.open("rb") as handle:
        head = handle.read(2)
        if path.suffix.lower() == ".joblib" or not looks_like_pickle(head):
            return
        handle.seek(0)
        last = ""
        try:
            for op, arg, _pos in pickletools.genops(handle):
                if isinstance(arg, str) and arg.startswith("joblib."):
                    return  # joblib.dump's raw array bytes follow: the walk cannot go on
                last = op.name
        except Exception as exc:  # genops raises ValueError and others on a cut stream
            raise unreadable(path, "pickle", exc) from exc
    if last != "STOP":
        raise unreadable(path, "pickle", "the stream ends before its STOP opcode")


def inspect_pickle(path: Path, flavor: str, *, allow_pickle: bool) -> Inspection:
    """Accept a pickle only with consent, and then without loading it."""
    if not allow_pickle:
        raise refuse(path)
    check_stream(path)
    return Inspection(flavor=flavor, unsafe=True,
                      notes=("not loaded while inspecting: loading a pickle runs its code; "
                             "pass --input-schema to check the data contract",))


def load_pickle(path: Path) -> Any:
    """Unpickle with joblib (which also reads plain pickles); only for unsafe_format versions."""
    joblib = importlib.import_module("joblib")
    try:
        return joblib.load(path)
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, ImportError, AttributeError,
            KeyError) as exc:
        raise unreadable(path, "pickle", exc) from exc
