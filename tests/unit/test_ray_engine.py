"""The Ray engine's refusals, decided before Ray starts anything."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lastgood.bootstrap import ray_serve
from lastgood.config import load_settings
from lastgood.domain.errors import InvalidInput, TransientError


def test_without_ray_the_refusal_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an uninstalled package looks like
    with pytest.raises(InvalidInput) as refused:
        ray_serve.import_ray()
    assert refused.value.fix == "pip install 'lastgood[ray]'"


@pytest.mark.parametrize("address", ["nohost", "127.0.0.1", "ray://:10001"])
def test_an_address_without_host_and_port_is_refused(address: str) -> None:
    with pytest.raises(InvalidInput, match="is not host:port"):
        ray_serve.check_address(address)


def test_an_address_nothing_listens_on_is_a_transient_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(TransientError, match=f"127.0.0.1:{port} does not answer"):
            ray_serve.check_address(f"127.0.0.1:{port}", timeout_s=1)


def fake_ray(nodes: int) -> Any:
    return SimpleNamespace(nodes=lambda: [{"Alive": True}] * nodes + [{"Alive": False}])


def test_a_cluster_of_several_nodes_needs_a_shared_registry_and_store(tmp_path: Path) -> None:
    local = load_settings({"LASTGOOD_HOME": str(tmp_path)})
    ray_serve._check_cluster(fake_ray(1), local)  # one node: a file and a folder are fine
    with pytest.raises(InvalidInput) as refused:
        ray_serve._check_cluster(fake_ray(3), local)
    assert "3 nodes" in str(refused.value)
    assert "LASTGOOD_DB_URL is a SQLite file" in str(refused.value)
    assert "LASTGOOD_STORE_URL is a local folder" in str(refused.value)
    shared = replace(local, db_url="postgresql://db/lastgood", store_url="s3://models/lg")
    ray_serve._check_cluster(fake_ray(3), shared)
    assert ray_serve.local_only_settings(shared) == []
