"""The composition root picks the live verifier only when a metric source is configured."""

from __future__ import annotations

from pathlib import Path

from lastgood.adapters.null import NoVerifier
from lastgood.bootstrap import open_verifier
from lastgood.config import load_settings
from lastgood.services.live_verifier import LiveVerifier
from lastgood.testing import MemoryRegistry


def test_without_a_source_verification_is_left_to_the_watch(tmp_path: Path) -> None:
    settings = load_settings({"LASTGOOD_HOME": str(tmp_path)})
    assert isinstance(open_verifier(settings, MemoryRegistry()), NoVerifier)


def test_a_configured_source_gives_the_live_verifier(tmp_path: Path) -> None:
    settings = load_settings({"LASTGOOD_HOME": str(tmp_path),
                              "LASTGOOD_GATEWAY_URLS": "http://127.0.0.1:8080, http://b:8080",
                              "LASTGOOD_WEBHOOK_URL": "http://hooks",
                              "LASTGOOD_WEBHOOK_SECRET": "k"})
    assert settings.gateway_urls == ("http://127.0.0.1:8080", "http://b:8080")
    assert (settings.webhook_url, settings.webhook_secret) == ("http://hooks", "k")
    assert isinstance(open_verifier(settings, MemoryRegistry()), LiveVerifier)
    prometheus = load_settings({"LASTGOOD_HOME": str(tmp_path),
                                "LASTGOOD_PROMETHEUS_URL": "http://127.0.0.1:9090"})
    assert isinstance(open_verifier(prometheus, MemoryRegistry()), LiveVerifier)
