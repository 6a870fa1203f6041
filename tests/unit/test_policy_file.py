"""Policy files: good YAML and TOML load; every bad input is refused with file, line and fix."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from lastgood.adapters.files.policy_file import find_policy, load_policies, parse_policies
from lastgood.domain.errors import InvalidInput, NotFound
from lastgood.domain.health import Direction, Mode

SOURCES = {"error_rate", "latency", "accuracy", "drift", "custom.revenue"}

GOOD_YAML = """\
policies:
  - model: fraud-detector
    env: production
    mode: pause
    bake_window: 10m
    cooldown: 1800
    alpha: 0.05
    signals:
      error_rate: {relative: 0.5, absolute: 0.002, min_samples: 200, limit: 0.2, weight: 2}
      latency_p99: {relative: 0.2}
      custom.revenue:
        direction: lower_is_worse
        relative: 0.1
  - model: fraud-detector
    env: staging
    signals:
      error_rate:
"""

GOOD_TOML = """\
[[policies]]
model = "fraud-detector"
env = "production"
mode = "observe"
max_staleness = "90s"

[policies.signals.error_rate]
relative = 0.5

[policies.signals."custom.revenue"]
direction = "lower_is_worse"

[[policies]]
model = "churn"
env = "production"
signals.accuracy = { absolute = 0.03 }
"""


def refusal(text: str, fmt: str = "yaml", available: set[str] = SOURCES) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_policies(textwrap.dedent(text), fmt=fmt, source=f"health.{fmt}",
                       available_signals=available)
    return caught.value


def test_a_good_yaml_file_loads_with_defaults_filled_in(tmp_path: Path) -> None:
    path = tmp_path / "health.yaml"
    path.write_text(GOOD_YAML)
    policies = load_policies(path, available_signals=SOURCES)
    production = find_policy(policies, model="fraud-detector", env="production")
    assert production.mode is Mode.PAUSE
    assert (production.bake_window, production.cooldown) == (timedelta(minutes=10),
                                                             timedelta(minutes=30))
    errors, p99, revenue = production.signals
    assert (errors.relative, errors.min_samples, errors.limit, errors.weight) == (0.5, 200, 0.2, 2)
    assert p99.relative == 0.2
    assert revenue.direction is Direction.LOWER_IS_WORSE
    staging = find_policy(policies, model="fraud-detector", env="staging")
    assert staging.signals[0].relative == 0.25  # the default for error_rate
    with pytest.raises(NotFound, match="fraud-detector/production"):
        find_policy(policies, model="churn", env="production")


def test_a_good_toml_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "health.toml"
    path.write_text(GOOD_TOML)
    first, second = load_policies(path, available_signals=SOURCES)
    assert first.mode is Mode.OBSERVE
    assert first.max_staleness == timedelta(seconds=90)
    assert [s.name for s in first.signals] == ["error_rate", "custom.revenue"]
    assert second.signals[0].absolute == 0.03


def test_a_single_policy_document_loads_too() -> None:
    (policy,) = parse_policies("model: m\nenv: e\nsignals: {drift: {absolute: 0.1}}\n",
                               fmt="yaml", source="p.yaml", available_signals={"drift"})
    assert policy.signals[0].absolute == 0.1


YAML_CASES = [
    ("unknown policy key", "model: m\nenv: e\ncooldwn: 5m\nsignals: {error_rate: {}}\n",
     3, "unknown key 'cooldwn'", "did you mean 'cooldown'"),
    ("unknown signal key", "model: m\nenv: e\nsignals:\n  error_rate:\n    tolerence: 0.1\n",
     5, "unknown key 'tolerence'", "allowed:"),
    ("negative tolerance", "model: m\nenv: e\nsignals:\n  error_rate:\n    relative: -0.1\n",
     5, "relative -0.1 must be a number >= 0", "e.g. relative"),
    ("alpha above one", "model: m\nenv: e\nalpha: 1.5\nsignals: {error_rate: {}}\n",
     3, "alpha 1.5 is outside (0, 1)", "0.05"),
    ("alpha zero", "model: m\nenv: e\nalpha: 0\nsignals: {error_rate: {}}\n",
     3, "alpha 0 is outside (0, 1)", "0.05"),
    ("min samples zero", "model: m\nenv: e\nsignals:\n  error_rate:\n    min_samples: 0\n",
     5, "min_samples 0 must be a whole number >= 1", "min_samples = 100"),
    ("unknown signal", "model: m\nenv: e\nsignals:\n  latency_p9x: {}\n",
     4, "unknown signal 'latency_p9x'", "did you mean 'latency_p99'"),
    ("unknown mode", "model: m\nenv: e\nmode: yolo\nsignals: {error_rate: {}}\n",
     3, "unknown mode 'yolo'", "auto (roll back)"),
    ("no source", "model: m\nenv: e\nsignals:\n  error_rate: {}\n  accuracy: {}\n",
     5, "signal 'accuracy' has no source", "configure a metric source"),
    ("bad duration", "model: m\nenv: e\nbake_window: soon\nsignals: {error_rate: {}}\n",
     3, "bake_window 'soon' is not a duration", "10m"),
    ("custom without direction", "model: m\nenv: e\nsignals:\n  custom.revenue: {}\n",
     4, "needs a direction", "lower_is_worse"),
    ("direction of a builtin", "model: m\nenv: e\nsignals:\n  error_rate:\n"
     "    direction: lower_is_worse\n", 4, "always higher_is_worse", "remove direction"),
    ("duplicate key", "model: m\nenv: e\nsignals: {error_rate: {}}\nenv: f\n",
     4, "duplicate key 'env' (first on line 2)", "keep only one"),
    ("bad model name", "model: Fraud Detector\nenv: e\nsignals: {error_rate: {}}\n",
     1, "invalid model name", "lowercase"),
    ("missing signals", "model: m\nenv: e\n", 1, "`signals` is missing", "error_rate"),
    ("syntax error", "model: m\nenv: [e\nsignals: {}\n", 3, "not valid YAML", "syntax"),
    ("same pair twice", "policies:\n  - {model: m, env: e, signals: {error_rate: {}}}\n"
     "  - {model: m, env: e, signals: {error_rate: {}}}\n", 3, "a second policy for m/e",
     "one policy"),
]


@pytest.mark.parametrize(("text", "line", "problem", "fix"),
                         [case[1:] for case in YAML_CASES], ids=[c[0] for c in YAML_CASES])
def test_bad_yaml_is_refused_with_line_and_fix(text: str, line: int, problem: str,
                                               fix: str) -> None:
    error = refusal(text, available=SOURCES - {"accuracy"})
    assert error.details["line"] == line, error.message
    assert f"health.yaml:{line}:" in error.message
    assert problem in error.message
    assert fix in error.fix


def test_a_signal_no_source_provides_is_refused() -> None:
    error = refusal("model: m\nenv: e\nsignals:\n  error_rate: {}\n  accuracy: {}\n",
                    available={"error_rate"})
    assert "health.yaml:5: signal 'accuracy' has no source" in error.message
    assert "error_rate" in error.message  # what the sources do provide


def test_every_problem_is_listed_not_only_the_first() -> None:
    error = refusal("model: m\nenv: e\nalpha: 2\nsignals:\n  error_rate: {relative: -1}\n")
    assert [p["line"] for p in error.details["problems"]] == [3, 5]
    assert "and 1 more" in error.message


TOML_CASES = [
    ("unknown key in a signal table", GOOD_TOML.replace("relative = 0.5", "relatve = 0.5"),
     8, "unknown key 'relatve'"),
    ("negative tolerance inline", GOOD_TOML.replace("absolute = 0.03", "absolute = -0.03"),
     16, "absolute -0.03 must be"),
    ("alpha in the second policy", GOOD_TOML + "alpha = 1.0\n", 17, "alpha 1.0 is outside"),
    ("unknown mode", GOOD_TOML.replace('"observe"', '"never"'), 4, "unknown mode 'never'"),
    ("min samples as a fraction",
     GOOD_TOML.replace("relative = 0.5", "relative = 0.5\nmin_samples = 0.5"), 9,
     "min_samples 0.5 must be a whole number"),
    ("unknown signal table", GOOD_TOML.replace("signals.error_rate]", "signals.errors]"),
     7, "unknown signal 'errors'"),
    ("syntax error", GOOD_TOML.replace('env = "production"\nmode', 'env = production\nmode'),
     3, "not valid TOML"),
]


@pytest.mark.parametrize(("text", "line", "problem"), [c[1:] for c in TOML_CASES],
                         ids=[c[0] for c in TOML_CASES])
def test_bad_toml_is_refused_with_the_line_found_by_scanning(text: str, line: int,
                                                             problem: str) -> None:
    error = refusal(text, fmt="toml")
    assert error.details["line"] == line, error.message
    assert f"health.toml:{line}:" in error.message
    assert problem in error.message
    assert error.fix


def test_files_of_unknown_type_or_missing_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"\*\.yaml"):
        load_policies(tmp_path / "health.json", available_signals=SOURCES)
    with pytest.raises(NotFound, match="does not exist"):
        load_policies(tmp_path / "absent.yaml", available_signals=SOURCES)
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    with pytest.raises(InvalidInput, match="holds no policy"):
        load_policies(empty, available_signals=SOURCES)
