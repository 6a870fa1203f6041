"""The MLflow Model Registry through MlflowClient: an importer and a mirror (ports.py).

mlflow is imported when the first call needs it, so lastgood runs without it installed. MLflow
retries a refused connection for minutes by default; lastgood asks for a short, bounded retry
(unless the user set MLflow's own variables), because a mirror that is down must never hold up
a deploy or a rollback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lastgood.adapters.mlflow.errors import TRACKING_FIX, require_mlflow, translated
from lastgood.adapters.mlflow.uris import ModelUri, parse_uri
from lastgood.domain.errors import InvalidInput, NotFound
from lastgood.domain.outside import OutsideVersion

BOUNDED_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
                "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
PAGE = 1000


class MlflowRegistry:
    """One MLflow tracking server's model registry (ModelImporter and RegistryMirror)."""

    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri.rstrip("/")
        self._client: Any = None

    @property
    def client(self) -> Any:
        if not self.tracking_uri:
            raise InvalidInput("importing from MLflow needs its tracking server",
                               fix=TRACKING_FIX)
        if self._client is None:
            require_mlflow()
            for key, value in BOUNDED_HTTP.items():
                os.environ.setdefault(key, value)  # MLflow reads these per request
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri,
                                        registry_uri=self.tracking_uri)
        return self._client

    # -- ModelImporter ---------------------------------------------------------------------------

    def resolve(self, uri: str) -> OutsideVersion:
        parsed = parse_uri(uri)
        if parsed.run_id:
            return self._run_version(parsed)
        mv = self._model_version(parsed)
        return self.with_metrics(self._outside(mv, uri=uri))

    def versions(self, model: str) -> list[OutsideVersion]:
        self._registered_model(model)
        found: list[Any] = []
        token = None
        with translated(self.tracking_uri):
            while True:
                page = self.client.search_model_versions(
                    filter_string=f"name = '{_quoted(model)}'", max_results=PAGE,
                    page_token=token)
                found.extend(page)
                token = page.token
                if not token:
                    break
        return sorted((self._outside(mv) for mv in found), key=lambda v: int(v.version))

    def models(self) -> list[str]:
        names: list[str] = []
        token = None
        with translated(self.tracking_uri):
            while True:
                page = self.client.search_registered_models(max_results=PAGE, page_token=token)
                names.extend(m.name for m in page)
                token = page.token
                if not token:
                    return sorted(names)

    def download(self, found: OutsideVersion, dest: Path) -> Path:
        self.client  # noqa: B018 — checks the tracking URI and sets the bounded retries
        from mlflow.artifacts import download_artifacts

        no_model = InvalidInput(f"{found.uri} holds no MLflow model",
                                fix="point at the artifact path the model was logged under, "
                                    "e.g. runs:/RUN_ID/model")
        # A registered version's source is where MLflow keeps its artifacts: downloading it
        # directly skips the registry's own look-ups (two calls fewer per version).
        source = found.source if found.version and found.source else found.uri
        with translated(self.tracking_uri, missing=lambda: no_model):
            local = download_artifacts(artifact_uri=source, dst_path=str(dest),
                                       tracking_uri=self.tracking_uri)
        path = Path(local)
        if not (path / "MLmodel").is_file():
            raise no_model
        return path

    # -- RegistryMirror --------------------------------------------------------------------------

    def alias(self, model: str, alias: str) -> str | None:
        require_mlflow()
        from mlflow.exceptions import MlflowException

        try:
            with translated(self.tracking_uri):
                try:
                    return str(self.client.get_model_version_by_alias(model, alias).version)
                except MlflowException as exc:
                    if str(getattr(exc, "error_code", "")) in ("RESOURCE_DOES_NOT_EXIST",
                                                               "INVALID_PARAMETER_VALUE"):
                        return None
                    raise
        except NotFound:
            return None

    def set_alias(self, model: str, alias: str, version: str) -> None:
        with translated(self.tracking_uri):
            self.client.set_registered_model_alias(model, alias, version)

    def set_tags(self, model: str, version: str, tags: Mapping[str, str]) -> None:
        with translated(self.tracking_uri):
            for key, value in tags.items():
                self.client.set_model_version_tag(model, version, key, value)

    # -- reading MLflow's records ----------------------------------------------------------------

    def _registered_model(self, name: str) -> Any:
        with translated(self.tracking_uri, missing=lambda: self._unknown_model(name)):
            return self.client.get_registered_model(name)

    def _model_version(self, parsed: ModelUri) -> Any:
        model = self._registered_model(parsed.model)
        if parsed.alias:
            known = dict(getattr(model, "aliases", {}) or {})
            if parsed.alias not in known:
                raise NotFound(f"MLflow model {parsed.model!r} has no alias {parsed.alias!r}",
                               fix=f"its aliases: {_listing(sorted(known))}")
            version = str(known[parsed.alias])
        elif parsed.latest:
            versions = self.versions(parsed.model)
            if not versions:
                raise NotFound(f"MLflow model {parsed.model!r} has no versions",
                               fix="log and register one first")
            version = versions[-1].version
        else:
            version = parsed.version
        with translated(self.tracking_uri,
                        missing=lambda: self._unknown_version(parsed.model, version)):
            return self.client.get_model_version(parsed.model, version)

    def _unknown_model(self, name: str) -> NotFound:
        try:
            known = self.models()[:10]
        except Exception:
            known = []
        return NotFound(f"MLflow has no registered model {name!r}",
                        fix=f"registered models: {_listing(known)}")

    def _unknown_version(self, model: str, version: str) -> NotFound:
        known = [v.version for v in self.versions(model)]
        return NotFound(f"MLflow model {model!r} has no version {version}",
                        fix=f"its versions: {_listing(known[-20:])}")

    def _outside(self, mv: Any, *, uri: str = "") -> OutsideVersion:
        name, version = str(mv.name), str(mv.version)
        return OutsideVersion(
            origin=f"mlflow:{name}/{version}", uri=f"models:/{name}/{version}",
            model=name, version=version, run_id=str(mv.run_id or ""),
            source=str(mv.source or ""), aliases=tuple(getattr(mv, "aliases", ()) or ()),
            tags={str(k): str(v) for k, v in (mv.tags or {}).items()},
            url=f"{self.tracking_uri}/#/models/{quote(name)}/versions/{version}")

    def with_metrics(self, found: OutsideVersion) -> OutsideVersion:
        if not found.run_id:
            return found
        run = self._run(found.run_id)
        metrics = {str(k): float(v) for k, v in run.data.metrics.items()}
        from dataclasses import replace

        return replace(found, metrics=metrics)

    def _run(self, run_id: str) -> Any:
        with translated(self.tracking_uri, missing=lambda: NotFound(
                f"MLflow has no run {run_id!r}", fix="copy the run id from the MLflow UI")):
            return self.client.get_run(run_id)

    def _run_version(self, parsed: ModelUri) -> OutsideVersion:
        run = self._run(parsed.run_id)
        registered = self._registered_from(parsed.run_id)
        if len(registered) == 1:  # the run's model is one MLflow version: import it as that
            return self.with_metrics(self._outside(registered[0]))
        tags = {str(k): str(v) for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        return OutsideVersion(
            origin=f"mlflow-run:{parsed.run_id}/{parsed.path}",
            uri=f"runs:/{parsed.run_id}/{parsed.path}", run_id=parsed.run_id,
            source=str(run.info.artifact_uri or ""), tags=tags,
            metrics={str(k): float(v) for k, v in run.data.metrics.items()},
            url=f"{self.tracking_uri}/#/experiments/{run.info.experiment_id}/runs/"
                f"{parsed.run_id}")


    def _registered_from(self, run_id: str) -> list[Any]:
        with translated(self.tracking_uri):
            return list(self.client.search_model_versions(
                filter_string=f"run_id = '{_quoted(run_id)}'", max_results=10))


def _quoted(text: str) -> str:
    return text.replace("'", "\\'")


def _listing(names: list[str]) -> str:
    return ", ".join(names) if names else "none"
