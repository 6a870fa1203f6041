"""Content-addressed artifact stores: a local directory or any fsspec URL."""

from lastgood.adapters.artifacts.factory import open_artifact_store, s3_options
from lastgood.adapters.artifacts.local import LocalArtifactStore
from lastgood.adapters.artifacts.remote import FsspecArtifactStore

__all__ = ["FsspecArtifactStore", "LocalArtifactStore", "open_artifact_store", "s3_options"]
