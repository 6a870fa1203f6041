"""The control plane's REST API (FastAPI): every CLI operation over HTTP, token-guarded."""

from lastgood.api.app import ApiOptions, create_app

__all__ = ["ApiOptions", "create_app"]
