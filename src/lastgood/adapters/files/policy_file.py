"""Health policies from a YAML or TOML file, refused at load time with the line and the fix.

A file holds one policy, or several under `policies` (YAML list, TOML `[[policies]]`):

    model: fraud-detector          # or [[policies]] / model = "fraud-detector" in TOML
    env: production
    mode: auto                     # auto | pause | observe
    bake_window: 10m               # seconds, or a number with ms, s, m, h, d
    cooldown: 30m
    alpha: 0.05                    # false-alarm budget over the deployment's life
    max_staleness: 60s             # older data makes every signal INCONCLUSIVE
    signals:
      error_rate: {relative: 0.25, absolute: 0.002, min_samples: 100, limit: 0.2, weight: 2}
      latency_p99: {relative: 0.2}
      custom.revenue: {direction: lower_is_worse, relative: 0.1}

Every problem is reported as `file:line: what is wrong` with a fix. YAML lines come from the
parser's marks; TOML has none, so its lines are found by scanning the text for tables and keys.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from lastgood.domain.errors import InvalidInput, LastGoodError, NotFound
from lastgood.domain.health import (
    Direction,
    HealthPolicy,
    Mode,
    SignalKind,
    SignalPolicy,
    default_signal,
    known_signals,
    signal_kind,
)
from lastgood.domain.versions import check_name

Key = tuple[str | int, ...]
FORMATS = {".yaml": "yaml", ".yml": "yaml", ".toml": "toml"}
POLICY_KEYS = ("model", "env", "mode", "bake_window", "cooldown", "alpha", "max_staleness",
               "signals")
SIGNAL_KEYS = ("direction", "relative", "absolute", "min_samples", "limit", "weight")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def load_policies(path: Path, *, available_signals: Collection[str]) -> tuple[HealthPolicy, ...]:
    """Every policy in a .yaml/.yml/.toml file; InvalidInput names the file, line and fix.

    `available_signals` are the signals the configured metric sources provide: names such as
    "error_rate" or "custom.revenue", "latency" for every latency quantile, or "custom" for every
    custom.<metric>.
    """
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInput(f"{path}: unknown policy file type {path.suffix!r}",
                           fix="name the file *.yaml, *.yml or *.toml")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise NotFound(f"policy file {path} does not exist", fix="check the path") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot be read: {exc}",
                           fix="make it a readable UTF-8 text file") from exc
    return parse_policies(text, fmt=fmt, source=str(path), available_signals=available_signals)


def parse_policies(text: str, *, fmt: str, source: str,
                   available_signals: Collection[str]) -> tuple[HealthPolicy, ...]:
    """Policies from the text of a policy file in format "yaml" or "toml"."""
    doc = _read_yaml(text, source) if fmt == "yaml" else _read_toml(text, source)
    checker = _Checker(doc, frozenset(available_signals))
    policies = checker.policies()
    checker.raise_if_any(source)
    return policies


def find_policy(policies: Collection[HealthPolicy], *, model: str, env: str) -> HealthPolicy:
    """The policy of (model, env); NotFound names the pairs the file does cover."""
    for policy in policies:
        if (policy.model, policy.env) == (model, env):
            return policy
    known = ", ".join(f"{p.model}/{p.env}" for p in policies) or "none"
    raise NotFound(f"no health policy for {model}/{env}",
                   fix=f"add one to the policy file (it covers: {known})")


@dataclass(slots=True)
class _Doc:
    data: Any
    lines: dict[Key, int]
    problems: list[tuple[int, str, str]] = field(default_factory=list)

    def line(self, key: Key) -> int:
        """The line of `key`, or of its nearest ancestor that has one."""
        for end in range(len(key), -1, -1):
            if key[:end] in self.lines:
                return self.lines[key[:end]]
        return 1


def _read_yaml(text: str, source: str) -> _Doc:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidInput(f"{source}:{line}: not valid YAML: {problem}",
                           fix="fix the syntax at that line", details={"line": line}) from exc
    doc = _Doc(data, {(): 1})
    if node is not None:
        _yaml_lines(node, (), doc)
    return doc


def _yaml_lines(node: yaml.Node, key: Key, doc: _Doc) -> None:
    """Record the line of every key and list item; a repeated key is a problem."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            name, line = str(key_node.value), key_node.start_mark.line + 1
            if (*key, name) in doc.lines:
                first = doc.lines[(*key, name)]
                doc.problems.append((line, f"duplicate key {name!r} (first on line {first})",
                                     "keep only one of them"))
            doc.lines[(*key, name)] = line
            _yaml_lines(value_node, (*key, name), doc)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            doc.lines[(*key, index)] = item.start_mark.line + 1
            _yaml_lines(item, (*key, index), doc)


_TOML_KEY = r"(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
_TOML_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_TOML_KEY}(?:\s*\.\s*{_TOML_KEY})*)\s*\]\]?")
_TOML_ASSIGN = re.compile(rf"^\s*({_TOML_KEY}(?:\s*\.\s*{_TOML_KEY})*)\s*=(.*)$")
_TOML_INLINE = re.compile(rf"[{{,]\s*({_TOML_KEY})\s*=")


def _split_key(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in re.findall(_TOML_KEY, dotted))


def _read_toml(text: str, source: str) -> _Doc:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = int(found.group(1)) if found else 1
        raise InvalidInput(f"{source}:{line}: not valid TOML: {exc}",
                           fix="fix the syntax at that line", details={"line": line}) from exc
    return _Doc(data, _toml_lines(text))


def _toml_lines(text: str) -> dict[Key, int]:
    """Lines of tables, array-of-table items and keys (inline tables one level deep)."""
    lines: dict[Key, int] = {(): 1}
    arrays: dict[Key, int] = {}
    table: Key = ()

    def resolve(keys: tuple[str, ...]) -> Key:
        out: list[str | int] = []
        for part in keys:
            out.append(part)
            if tuple(out) in arrays:
                out.append(arrays[tuple(out)] - 1)
        return tuple(out)

    for number, raw in enumerate(text.splitlines(), start=1):
        if header := _TOML_HEADER.match(raw):
            keys = _split_key(header.group(2))
            if header.group(1) == "[[":
                array = (*resolve(keys[:-1]), keys[-1])
                arrays[array] = arrays.get(array, 0) + 1
                lines.setdefault(array, number)
                table = (*array, arrays[array] - 1)
            else:
                table = resolve(keys)
            lines[table] = number
        elif assign := _TOML_ASSIGN.match(raw):
            key = table + _split_key(assign.group(1))
            lines[key] = number
            for inner in _TOML_INLINE.finditer(assign.group(2)):
                lines[key + _split_key(inner.group(1))] = number
    return lines


class _Checker:
    """Walks the parsed document, collecting every problem with its line, building policies."""

    def __init__(self, doc: _Doc, available: frozenset[str]):
        self.doc, self.available = doc, available

    def problem(self, key: Key, what: str, fix: str) -> None:
        self.doc.problems.append((self.doc.line(key), what, fix))

    def raise_if_any(self, source: str) -> None:
        if not self.doc.problems:
            return
        found = sorted(self.doc.problems)
        line, what, fix = found[0]
        more = f" (and {len(found) - 1} more: " + "; ".join(
            f"line {n}: {w}" for n, w, _ in found[1:]) + ")" if len(found) > 1 else ""
        raise InvalidInput(f"{source}:{line}: {what}{more}", fix=fix, details={
            "file": source, "line": line,
            "problems": [{"line": n, "problem": w, "fix": f} for n, w, f in found]})

    def policies(self) -> tuple[HealthPolicy, ...]:
        data = self.doc.data
        if not isinstance(data, Mapping) or not data:
            self.problem((), "the file holds no policy", "start with model:, env: and signals:")
            return ()
        if "policies" not in data:
            one = self.policy((), data)
            return (one,) if one else ()
        self.unknown((), data, ("policies",), "a file with `policies` holds nothing else")
        items = data["policies"]
        if not isinstance(items, list) or not items:
            self.problem(("policies",), "`policies` must be a non-empty list",
                         "write each policy as a list item (TOML: [[policies]])")
            return ()
        built = [self.policy(("policies", i), item) for i, item in enumerate(items)]
        return self.distinct([p for p in built if p is not None])

    def distinct(self, policies: list[HealthPolicy]) -> tuple[HealthPolicy, ...]:
        seen: set[tuple[str, str]] = set()
        for index, policy in enumerate(policies):
            pair = (policy.model, policy.env)
            if pair in seen:
                self.problem(("policies", index), f"a second policy for {pair[0]}/{pair[1]}",
                             "keep one policy per (model, env)")
            seen.add(pair)
        return tuple(policies)

    def unknown(self, key: Key, data: Mapping[str, Any], allowed: tuple[str, ...],
                where: str) -> None:
        for name in data:
            if name not in allowed:
                close = difflib.get_close_matches(str(name), allowed, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                self.problem((*key, str(name)), f"unknown key {name!r} ({where})",
                             f"{hint}allowed: {', '.join(allowed)}")

    def policy(self, key: Key, data: Any) -> HealthPolicy | None:
        if not isinstance(data, Mapping):
            self.problem(key, "a policy must be a table of keys", "write model:, env:, signals:")
            return None
        self.unknown(key, data, POLICY_KEYS, "policy")
        names = [self.name(key, data, part) for part in ("model", "env")]
        signals = self.signals((*key, "signals"), data.get("signals"))
        options = self.options(key, data)
        if None in names or signals is None or options is None:
            return None
        try:
            return HealthPolicy(str(names[0]), str(names[1]), signals, **options)
        except LastGoodError as exc:  # a rule the domain knows that the checks above missed
            self.problem(key, exc.message, exc.fix)
            return None

    def name(self, key: Key, data: Mapping[str, Any], part: str) -> str | None:
        value = data.get(part)
        if not isinstance(value, str):
            example = "fraud-detector" if part == "model" else "production"
            self.problem((*key, part), f"`{part}` is missing or not text",
                         f"add {part}, e.g. {part} = {example!r}")
            return None
        try:
            return check_name(part, value)
        except InvalidInput as exc:
            self.problem((*key, part), exc.message, exc.fix)
            return None

    def options(self, key: Key, data: Mapping[str, Any]) -> dict[str, Any] | None:
        options: dict[str, Any] = {}
        ok = True
        if "mode" in data:
            if data["mode"] in tuple(Mode):
                options["mode"] = Mode(data["mode"])
            else:
                ok = False
                self.problem((*key, "mode"), f"unknown mode {data['mode']!r}",
                             "use auto (roll back), pause (alert a human) or observe (record)")
        for part in ("bake_window", "cooldown", "max_staleness"):
            if part in data:
                duration = _duration(data[part])
                ok = ok and duration is not None
                if duration is None:
                    self.problem((*key, part), f"{part} {data[part]!r} is not a duration",
                                 "use seconds (600) or a number with ms, s, m, h, d (10m)")
                options[part] = duration
        if "alpha" in data:
            alpha = data["alpha"]
            if not _number(alpha) or not 0 < alpha < 1:
                ok = False
                self.problem((*key, "alpha"), f"alpha {alpha!r} is outside (0, 1)",
                             "use a false-alarm budget such as 0.05")
            options["alpha"] = alpha
        return options if ok else None

    def signals(self, key: Key, data: Any) -> tuple[SignalPolicy, ...] | None:
        if not isinstance(data, Mapping) or not data:
            self.problem(key, "`signals` is missing or empty",
                         f"add signals, e.g. error_rate: {{}} (known: {known_signals()})")
            return None
        built = [self.signal((*key, str(name)), str(name), spec) for name, spec in data.items()]
        return tuple(s for s in built if s is not None) if None not in built else None

    def signal(self, key: Key, name: str, spec: Any) -> SignalPolicy | None:
        kind = signal_kind(name)
        if kind is None:
            close = difflib.get_close_matches(name, _SIGNAL_NAMES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            self.problem(key, f"unknown signal {name!r}", f"{hint}use {known_signals()}")
            return None
        if not self.provided(name, kind):
            given = ", ".join(sorted(self.available)) or "nothing"
            self.problem(key, f"signal {name!r} has no source (the sources provide: {given})",
                         "remove it, or configure a metric source that provides it")
            return None
        spec = {} if spec is None else spec
        if not isinstance(spec, Mapping):
            self.problem(key, f"signal {name!r} must be a table of settings",
                         f"e.g. {name}: {{relative: 0.2}}")
            return None
        self.unknown(key, spec, SIGNAL_KEYS, f"signal {name}")
        values = {k: v for k, v in spec.items() if k in SIGNAL_KEYS}
        if not self.values(key, name, kind, values):
            return None
        try:
            return default_signal(name, **values)
        except LastGoodError as exc:
            self.problem(key, exc.message, exc.fix)
            return None

    def provided(self, name: str, kind: SignalKind) -> bool:
        family = {SignalKind.LATENCY: "latency", SignalKind.CUSTOM: "custom"}.get(kind)
        return name in self.available or family in self.available

    def values(self, key: Key, name: str, kind: SignalKind, values: dict[str, Any]) -> bool:
        before = len(self.doc.problems)
        for part in ("relative", "absolute", "weight"):
            if part in values and (not _number(values[part]) or values[part] < 0):
                self.problem((*key, part), f"{part} {values[part]!r} must be a number >= 0",
                             f"tolerated regression, e.g. {part} = 0.2")
        if "min_samples" in values and (type(values["min_samples"]) is not int
                                        or values["min_samples"] < 1):
            self.problem((*key, "min_samples"),
                         f"min_samples {values['min_samples']!r} must be a whole number >= 1",
                         "e.g. min_samples = 100")
        if "limit" in values and not _number(values["limit"]):
            self.problem((*key, "limit"), f"limit {values['limit']!r} is not a number",
                         "a hard limit in the signal's unit, e.g. limit = 0.2")
        direction = values.get("direction")
        if direction is not None and direction not in tuple(Direction):
            self.problem((*key, "direction"), f"unknown direction {direction!r}",
                         "use higher_is_worse or lower_is_worse")
        elif kind is SignalKind.CUSTOM and direction is None:
            self.problem(key, f"custom signal {name!r} needs a direction",
                         "add direction = higher_is_worse or lower_is_worse")
        elif direction is not None:
            values["direction"] = Direction(direction)
        return len(self.doc.problems) == before


_SIGNAL_NAMES = ("error_rate", "latency_p50", "latency_p95", "latency_p99", "accuracy", "drift")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _duration(value: Any) -> timedelta | None:
    if _number(value) and value >= 0:
        return timedelta(seconds=float(value))
    found = _DURATION.match(value) if isinstance(value, str) else None
    return timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2)]) if found else None
