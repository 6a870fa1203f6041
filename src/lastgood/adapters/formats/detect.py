"""Which format an artifact is, by content first and extension second, and which flavors fit it."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path, PurePosixPath

from lastgood.domain.errors import InvalidInput


class Format(StrEnum):
    """How the bytes of a model are laid out; decides how they are validated and loaded."""

    SKOPS = "skops"  # a zip written by skops.io: loads only allow-listed types
    ONNX = "onnx"  # an ONNX protobuf: a graph, no code
    MLFLOW = "mlflow"  # a directory with an MLmodel file naming flavors and their files
    PICKLE = "pickle"  # pickle or joblib: loading it runs code from the file


EXTENSIONS = {".skops": Format.SKOPS, ".onnx": Format.ONNX, ".pkl": Format.PICKLE,
              ".pickle": Format.PICKLE, ".joblib": Format.PICKLE}
MLMODEL = "MLmodel"
ZIP_MAGIC = b"PK\x03\x04"

# The flavors each bare-file format can serve; the first is the default.
FORMAT_FLAVORS: dict[Format, tuple[str, ...]] = {
    Format.SKOPS: ("sklearn",),
    Format.ONNX: ("onnx",),
    Format.PICKLE: ("pickle", "sklearn"),
}
ALIASES = {"skops": "sklearn", "scikit-learn": "sklearn", "scikit_learn": "sklearn",
           "pyfunc": "python_function", "mlflow": "python_function", "joblib": "pickle"}
FIX_FORMAT = "use a .skops or .onnx file or an MLflow model directory (pickle needs --allow-pickle)"


def normal_flavor(flavor: str | None) -> str | None:
    """A flavor as lastgood names it (`skops` and `scikit-learn` are `sklearn`)."""
    if flavor is None or not flavor.strip():
        return None
    text = flavor.strip().lower()
    return ALIASES.get(text, text)


def choose_flavor(path: Path, found: Format, available: Sequence[str], given: str | None) -> str:
    """The given flavor if the artifact offers it, else the artifact's default flavor."""
    wanted = normal_flavor(given)
    if wanted is None:
        return available[0]
    if wanted not in available:
        raise InvalidInput(
            f"flavor {given!r} does not match {path.name}: it is a {found} artifact "
            f"offering {', '.join(repr(f) for f in available)}",
            fix=f"pass --flavor {available[0]}, or omit --flavor to detect it")
    return wanted


def detect(path: Path) -> tuple[Format, Path]:
    """The format of a file or directory, and the file (or directory) that holds the model."""
    if not path.exists():
        raise InvalidInput(f"{path} does not exist",
                           fix="pass the path of a model file or an MLflow model directory")
    if path.is_dir():
        if (path / MLMODEL).is_file():
            return Format.MLFLOW, path
        relative = [p.relative_to(path).as_posix() for p in sorted(path.rglob("*")) if p.is_file()]
        return detect_in(path, relative)
    return sniff(path), path


def detect_in(root: Path, relative: Sequence[str]) -> tuple[Format, Path]:
    """The format of the model among files at `relative` paths below `root` (a manifest)."""
    names = [p for p in relative if not PurePosixPath(p).name.startswith(".")]
    if MLMODEL in names:
        return Format.MLFLOW, root
    models = [p for p in names if PurePosixPath(p).suffix.lower() in EXTENSIONS]
    if len(models) != 1 and len(names) == 1:
        models = names
    if len(models) != 1:
        found = ", ".join(models[:5]) or "no model file"
        raise InvalidInput(f"cannot tell which file of {root} is the model ({found})",
                           fix="point at one model file, or at an MLflow model directory")
    target = root / models[0]
    return sniff(target), target


def sniff(path: Path) -> Format:
    """A file's format: pickle by content wins (it is the dangerous one), then the extension."""
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}",
                           fix="check the path and its permissions") from exc
    if not head:
        raise InvalidInput(f"{path.name} is empty",
                           fix="re-export the model; the file has no bytes")
    by_extension = EXTENSIONS.get(path.suffix.lower())
    if looks_like_pickle(head) or by_extension is Format.PICKLE:
        return Format.PICKLE
    if by_extension is not None:
        return by_extension
    if head.startswith(ZIP_MAGIC):
        return Format.SKOPS
    return Format.ONNX  # protobuf has no magic number; parsing it tells


def looks_like_pickle(head: bytes) -> bool:
    """Pickle protocol 2+ starts with PROTO (0x80) and the protocol number."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5
