"""The runtime check judges the pins the flavor's loader imports, and only reports the rest."""

from __future__ import annotations

from datetime import UTC, datetime

from lastgood.domain.compatibility import HostFacts
from lastgood.domain.deployments import Environment, RuntimeDrift
from lastgood.domain.operations import CheckStatus
from lastgood.domain.versions import Resources, Runtime, Version
from lastgood.services.preflight import CheckContext, RuntimeCheck
from lastgood.testing import make_manifest

HOST = {"scikit-learn": "1.9.1", "numpy": "2.4.6", "scipy": "1.17.1", "skops": "0.16.0"}


def judge(flavor: str, pins: dict[str, str], host: dict[str, str] = HOST,
          policy: RuntimeDrift = RuntimeDrift.MINOR) -> tuple[CheckStatus, str, dict[str, object]]:
    manifest = make_manifest(seed=flavor)
    version = Version(model="m", number=1, manifest=manifest, digest=manifest.digest,
                      flavor=flavor, created_at=datetime(2026, 1, 1, tzinfo=UTC), created_by="t",
                      runtime=Runtime(python="3.11", packages=pins))
    facts = HostFacts(python="3.11.7", packages=host, resources=Resources(8000, 2, 0),
                      hostname="h", platform="linux")
    result = RuntimeCheck().run(CheckContext(version, Environment("prod", runtime_drift=policy),
                                             None, facts))
    return result.status, result.summary, dict(result.evidence)


def test_a_pin_the_loader_never_imports_is_reported_not_refused() -> None:
    status, summary, evidence = judge("sklearn", {"scikit-learn": "1.9.1", "pandas": "3.1.1",
                                                  "pytest": "9.2.0"})
    assert status is CheckStatus.WARN
    assert "pandas: not installed" in summary
    assert "pytest: not installed" in summary
    assert evidence["not_imported_by_loader"] == {"pandas": "not installed",
                                                  "pytest": "not installed"}
    assert evidence["drift"] == {}


def test_a_pin_the_loader_imports_still_fails_beyond_the_policy() -> None:
    status, summary, _ = judge("sklearn", {"scikit-learn": "1.4.0"})
    assert status is CheckStatus.FAIL
    assert "scikit-learn" in summary


def test_a_package_the_flavor_needs_and_the_host_lacks_names_the_extra() -> None:
    status, summary, evidence = judge("xgboost", {"xgboost": "3.2.0", "numpy": "2.4.6"})
    assert status is CheckStatus.FAIL
    assert "xgboost: not installed; pip install 'lastgood[xgboost]'" in summary
    assert "xgboost" in evidence["drift"]  # type: ignore[operator]


def test_an_unpinned_requirement_missing_on_the_host_fails_too() -> None:
    status, summary, _ = judge("lightgbm", {}, host=HOST)
    assert status is CheckStatus.FAIL
    assert "lightgbm: not installed; pip install 'lastgood[lightgbm]'" in summary


def test_model_code_makes_every_pin_matter() -> None:
    status, summary, _ = judge("python_function", {"mlflow": "3.17.2", "pandas": "3.1.1"},
                               host={**HOST, "mlflow": "3.17.2"})
    assert status is CheckStatus.FAIL
    assert "pandas: not installed" in summary


def test_everything_in_place_passes() -> None:
    status, summary, _ = judge("sklearn", {"scikit-learn": "1.9.1", "numpy": "2.4.6"})
    assert status is CheckStatus.PASS
    assert "2 pin(s) the sklearn loader uses fit the host" in summary


def test_package_names_compare_as_pep_503_does() -> None:
    from lastgood.domain.compatibility import runtime_drift

    assert runtime_drift({"ruamel.yaml": "0.18.6", "PyYAML": "6.0"},
                         {"ruamel-yaml": "0.18.6", "pyyaml": "6.0"}, RuntimeDrift.EXACT) == {}
