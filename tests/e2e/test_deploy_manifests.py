"""The shipped deployment files (deploy/): they parse, their ports and probe paths are routes a
real `lastgood serve` answers, and the container entrypoint runs as a container would run it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from lastgood.sdk import Lastgood
from tests.e2e.test_cli_rollback import fill_history
from tests.helpers_models import IRIS_COLUMNS, iris_records
from tests.net import free_port, wait_for

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ENTRYPOINT = DEPLOY / "docker" / "entrypoint.sh"
# Kubernetes objects (Ray's serve config, deploy/ray, is checked on its own)
MANIFESTS = sorted(path for folder in ("kubernetes", "kserve")
                   for path in (DEPLOY / folder).glob("*.y*ml"))


def documents() -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                found.append((path, doc))
    return found


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers of a Deployment (pod template) or of a KServe ServingRuntime."""
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", spec)
    return list(pod.get("containers", []))


def serve_containers() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, c) for path, doc in documents() for c in containers(doc)
            if c.get("args", [None])[0] == "serve"]


def http_probes(container: dict[str, Any]) -> list[dict[str, Any]]:
    return [container[key]["httpGet"] for key in ("readinessProbe", "livenessProbe",
                                                  "startupProbe")
            if "httpGet" in container.get(key, {})]


def port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container["ports"] if "name" in p}
    return int(named[port])


def test_every_manifest_parses_with_a_kind() -> None:
    assert len(MANIFESTS) >= 3
    docs = documents()
    kinds = {doc["kind"] for _, doc in docs}
    assert {"Deployment", "Service", "ServingRuntime", "InferenceService"} <= kinds
    for path, doc in docs:
        assert doc.get("apiVersion"), path
        assert doc.get("metadata", {}).get("name"), path
    sagemaker = json.loads((DEPLOY / "sagemaker" / "model.json").read_text())
    env = sagemaker["PrimaryContainer"]["Environment"]
    assert env["LASTGOOD_SERVE_PORT"] == "8080"  # SageMaker's fixed container port


def test_the_ray_serve_config_builds_the_lastgood_application() -> None:
    import importlib

    config = yaml.safe_load((DEPLOY / "ray" / "serve_config.yaml").read_text())
    (app,) = config["applications"]
    module, _, name = app["import_path"].partition(":")
    assert (module, name) == ("lastgood.bootstrap.ray_replica", "build_app")
    assert app["args"]["env"]
    if importlib.util.find_spec("ray") is not None:  # the builder and the deployment's name,
        # in a process of their own (Ray's import warns about its own pydantic use)
        done = subprocess.run([sys.executable, "-c", f"from {module} import {name}, REPLICA; "
                               "print(REPLICA.name)"], capture_output=True, text=True,
                              timeout=120, check=True)
        assert done.stdout.strip() == app["deployments"][0]["name"]


def test_services_select_the_pods_of_a_deployment() -> None:
    docs = [doc for _, doc in documents()]
    pod_labels = [doc["spec"]["template"]["metadata"]["labels"] for doc in docs
                  if doc["kind"] == "Deployment"]
    for service in (doc for doc in docs if doc["kind"] == "Service"):
        selector = service["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in pod_labels), selector


def test_serve_containers_expose_the_port_they_serve_on() -> None:
    found = serve_containers()
    assert len(found) >= 2  # Kubernetes Deployment and KServe ServingRuntime
    for path, container in found:
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        ports = [p["containerPort"] for p in container["ports"]]
        assert ports == [int(env["LASTGOOD_SERVE_PORT"])], path
        for probe in http_probes(container):
            assert port_number(container, probe["port"]) == ports[0], (path, probe)


def test_dockerfile_runs_the_entrypoint_on_the_manifests_port() -> None:
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    copied = re.search(r"^COPY deploy/docker/entrypoint\.sh (\S+)$", text, re.M)
    assert copied is not None
    assert f'ENTRYPOINT ["{copied.group(1)}"]' in text
    assert re.search(r"^EXPOSE 8080$", text, re.M)
    assert "LASTGOOD_SERVE_PORT=8080" in text


def test_entrypoint_without_an_environment_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LASTGOOD_")}
    done = subprocess.run(["sh", str(ENTRYPOINT)], env=env | {"PATH": _path()},
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "LASTGOOD_SERVE_ENV" in done.stderr


def test_entrypoint_passes_other_commands_to_lastgood(tmp_path: Path) -> None:
    done = subprocess.run(["sh", str(ENTRYPOINT), "--version"], env=os.environ | {
        "PATH": _path()}, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("lastgood, version ")


def _path() -> str:
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture
def entrypoint_server(tmp_path: Path, models: list[Path]) -> Iterator[str]:
    """`entrypoint.sh serve` as a container runs it, on a registry with iris deployed."""
    home = tmp_path / "home"
    with Lastgood(home=home, actor="setup") as lg:
        fill_history(lg, models, verify_second=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LASTGOOD_")} | {
        "PATH": _path(), "LASTGOOD_HOME": str(home), "LASTGOOD_SMOKE_TEST": "off",
        "LASTGOOD_SERVE_ENV": "production", "LASTGOOD_SERVE_HOST": "127.0.0.1",
        "LASTGOOD_SERVE_PORT": str(port)}
    proc = subprocess.Popen(["sh", str(ENTRYPOINT), "serve"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        ready = wait_for(lambda: httpx.get(f"{url}/readyz", timeout=1).status_code == 200,
                         timeout_s=120, poll_s=0.2)
        assert ready, "the entrypoint's server never became ready"
        yield url
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        # `exec` makes lastgood the container's process, so SIGTERM (what Kubernetes sends)
        # reaches uvicorn itself, which drains and then exits by the same signal
        assert proc.returncode in (0, -15), err
        assert "Traceback" not in err


@pytest.mark.slow
def test_probe_paths_and_sagemaker_contract_answer_on_the_real_server(
        entrypoint_server: str) -> None:
    url = entrypoint_server
    paths = {probe["path"] for _, container in serve_containers()
             for probe in http_probes(container)}
    assert {"/readyz", "/healthz", "/v2/health/ready", "/v2/health/live"} <= paths
    for path in sorted(paths):
        assert httpx.get(f"{url}{path}", timeout=5).status_code == 200, path
    assert httpx.get(f"{url}/no-such-probe", timeout=5).status_code == 404
    # SageMaker: GET /ping, POST /invocations in MLflow's scoring format
    assert httpx.get(f"{url}/ping", timeout=5).status_code == 200
    records = iris_records(2)
    body = {"dataframe_split": {"columns": IRIS_COLUMNS,
                                "data": [[r[c] for c in IRIS_COLUMNS] for r in records]}}
    answer = httpx.post(f"{url}/invocations", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 2
    assert answer.headers["x-model-version"] == "3"
