"""An empty LASTGOOD_ setting (`LASTGOOD_DB_URL=` in a shell or a compose file) means unset."""

from __future__ import annotations

from pathlib import Path

from lastgood.config import load_settings


def test_empty_settings_are_unset(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = load_settings({"LASTGOOD_HOME": str(home), "LASTGOOD_DB_URL": "",
                              "LASTGOOD_STORE_URL": "  ", "LASTGOOD_LEASE_TTL_S": "",
                              "LASTGOOD_ACTOR": "", "LASTGOOD_SMOKE_TEST": ""})
    assert settings.db_url == f"sqlite:///{home / 'registry.db'}"
    assert settings.store_url == str(home / "artifacts")
    assert settings.lease_ttl_s == 30.0
    assert settings.actor  # the OS user, not ""
    assert settings.smoke_test is True


def test_an_empty_home_is_the_default_home() -> None:
    assert load_settings({"LASTGOOD_HOME": ""}).home == load_settings({}).home


def test_set_values_are_kept() -> None:
    settings = load_settings({"LASTGOOD_DB_URL": "postgresql+psycopg://u@h/db"})
    assert settings.db_url == "postgresql+psycopg://u@h/db"
