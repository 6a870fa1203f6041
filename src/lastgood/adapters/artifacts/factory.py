"""Choose the artifact store by URL: a path or file:// is local, anything else goes to fsspec."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lastgood.adapters.artifacts.local import LocalArtifactStore
from lastgood.domain.errors import InvalidInput
from lastgood.ports import ArtifactStore

S3_SCHEMES = frozenset({"s3", "s3a"})


def open_artifact_store(
    url: str,
    *,
    endpoint_url: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    connect_timeout_s: float = 5.0,
    read_timeout_s: float = 60.0,
    max_attempts: int = 3,
    spool_dir: Path | None = None,
) -> ArtifactStore:
    """The store for LASTGOOD_STORE_URL: `/path`, `file:///path`, `s3://bucket/prefix`, ….

    For s3 the timeouts and attempts bound how long an unreachable store can stall a caller;
    `endpoint_url` points at an S3-compatible server (MinIO, Ceph). Credentials come from the
    standard AWS chain (AWS_* variables, profiles, instance roles) unless given in
    `storage_options`, which win over every default here. Remote uploads are hashed into a
    spool file first: `spool_dir` (default: the system temp dir) needs room for the largest model.
    """
    text = url.strip()
    if not text:
        raise InvalidInput("the artifact store URL is empty",
                           fix="set LASTGOOD_STORE_URL to a directory or an s3://bucket/prefix")
    scheme = urlparse(text).scheme
    if scheme == "file":
        return LocalArtifactStore(Path(unquote(urlparse(text).path)))
    if not scheme or (len(scheme) == 1 and text[1:3] in (":\\", ":/")):  # a plain or drive path
        return LocalArtifactStore(Path(text))
    options: dict[str, Any] = {}
    if scheme in S3_SCHEMES:
        options = s3_options(endpoint_url=endpoint_url, connect_timeout_s=connect_timeout_s,
                             read_timeout_s=read_timeout_s, max_attempts=max_attempts)
    options.update(storage_options or {})
    from lastgood.adapters.artifacts.remote import FsspecArtifactStore  # fsspec: only for URLs

    return FsspecArtifactStore(text, spool_dir=spool_dir, **options)


def s3_options(*, endpoint_url: str | None = None, connect_timeout_s: float = 5.0,
               read_timeout_s: float = 60.0, max_attempts: int = 3) -> dict[str, Any]:
    """s3fs options: bounded timeouts and retries, and no listing cache.

    The listing cache is off because other processes write the same bucket: a cached listing
    would report a blob they just stored as missing.
    """
    options: dict[str, Any] = {
        "use_listings_cache": False,
        "skip_instance_cache": True,
        "config_kwargs": {
            "connect_timeout": connect_timeout_s,
            "read_timeout": read_timeout_s,
            "retries": {"max_attempts": max_attempts, "mode": "standard"},
        },
    }
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    return options
