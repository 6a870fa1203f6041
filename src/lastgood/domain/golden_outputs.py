"""Golden outputs compared output by output: a version with several outputs (an ONNX graph's
label and probabilities, a DataFrame's columns) has each held to its own tolerance, labels
exactly, and a difference names the output and says by how much it is off.

Pure functions over plain values (lists, mappings, numbers, strings); numpy values are made
plain through their `tolist`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["OutputDifference", "golden_matches", "output_differences", "plain_value"]

ONE = ""
"""The name of the one output of a version whose answer per record is not a mapping."""


def plain_value(value: Any) -> Any:
    """numpy-like scalars and arrays (anything with `tolist`) as plain Python values."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and not isinstance(value, str | bytes | int | float | bool):
        return tolist()
    if isinstance(value, tuple):
        return list(value)
    return value


def golden_matches(expected: Any, actual: Any, tolerance: float) -> bool:
    """Whether a prediction reproduces a golden output.

    Floats within `tolerance` relative to the expected value's size (absolute below 1), NaN
    only by NaN; integers (labels) and booleans exactly; lists and mappings element by element,
    the rest equal.
    """
    expected, actual = plain_value(expected), plain_value(actual)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int) and isinstance(actual, int):
        return expected == actual  # a label is right or wrong, whatever its size
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        if math.isnan(expected) or math.isnan(actual):
            return math.isnan(expected) and math.isnan(actual)
        return abs(float(actual) - float(expected)) <= tolerance * max(1.0, abs(float(expected)))
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(
            golden_matches(e, a, tolerance) for e, a in zip(expected, actual, strict=True))
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        keys = {str(k): v for k, v in expected.items()}, {str(k): v for k, v in actual.items()}
        return keys[0].keys() == keys[1].keys() and all(
            golden_matches(v, keys[1][k], tolerance) for k, v in keys[0].items())
    return bool(expected == actual)


@dataclass(frozen=True, slots=True)
class OutputDifference:
    """One output of one record that did not reproduce its golden value."""

    output: str  # the output's name; "" for the one output of a version that has one
    expected: Any
    actual: Any
    difference: float | None  # the largest numeric difference; None: not numbers, or shapes
    tolerance: float  # what it was held to; 0 for labels, strings and booleans (exact)

    def line(self) -> str:
        """`expected …, got … (off by …, tolerance …)`, for a person."""
        held = "exact" if self.tolerance == 0 else f"tolerance {self.tolerance:g}"
        off = f"off by {self.difference:.3g}, {held}" if self.difference is not None else held
        return f"expected {self.expected!r:.120}, got {self.actual!r:.120} ({off})"

    def to_json(self) -> dict[str, Any]:
        """The difference as evidence (the values kept short)."""
        return {"output": self.output, "expected": _short(self.expected),
                "got": _short(self.actual), "difference": self.difference,
                "tolerance": self.tolerance}


def output_differences(expected: Any, actual: Any, tolerance: float,
                       tolerances: Mapping[str, float] | None = None) -> list[OutputDifference]:
    """The outputs of one record that do not reproduce the golden ones ([] when all do).

    A mapping answer is one output per key (each held to `tolerances[name]`, else
    `tolerance`); anything else is one output. An output whose golden value holds no float
    (a label, a string, a boolean) is held exactly.
    """
    expected, actual = _deep_plain(expected), _deep_plain(actual)
    given = tolerances or {}
    if isinstance(expected, Mapping) and isinstance(actual, Mapping) \
            and {str(k) for k in expected} == {str(k) for k in actual}:
        mine = {str(k): v for k, v in actual.items()}
        return [d for name, want in ((str(k), v) for k, v in expected.items())
                for d in _one(name, want, mine[name], given.get(name, tolerance))]
    return _one(ONE, expected, actual, given.get(ONE, tolerance))


def _one(name: str, expected: Any, actual: Any, tolerance: float) -> list[OutputDifference]:
    held = tolerance if _has_float(expected) else 0.0
    if golden_matches(expected, actual, held):
        return []
    return [OutputDifference(name, expected, actual, _largest(expected, actual), held)]


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    if isinstance(value, Mapping):
        return any(_has_float(v) for v in value.values())
    return False


def _largest(expected: Any, actual: Any) -> float | None:
    """The largest absolute difference between two numbers or same-shaped containers of
    numbers; None when they are not both."""
    numbers = (int, float)
    if isinstance(expected, numbers) and isinstance(actual, numbers) \
            and not isinstance(expected, bool) and not isinstance(actual, bool):
        return abs(float(actual) - float(expected))
    pairs: list[tuple[Any, Any]] = []
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        pairs = list(zip(expected, actual, strict=True))
    elif isinstance(expected, Mapping) and isinstance(actual, Mapping) \
            and {str(k) for k in expected} == {str(k) for k in actual}:
        mine = {str(k): v for k, v in actual.items()}
        pairs = [(v, mine[str(k)]) for k, v in expected.items()]
    else:
        return None
    found = [_largest(e, a) for e, a in pairs]
    if not found or any(f is None for f in found):
        return None
    return max(f for f in found if f is not None)


def _deep_plain(value: Any) -> Any:
    value = plain_value(value)
    if isinstance(value, Mapping):
        return {k: _deep_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_plain(v) for v in value]
    return value


def _short(value: Any) -> Any:
    text = repr(value)
    return value if len(text) <= 200 else text[:197] + "..."
