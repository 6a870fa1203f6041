"""Where a version imported from MLflow lives there: its provenance keys and its UI page."""

from __future__ import annotations

from urllib.parse import quote

from lastgood.domain.versions import Version

PROVENANCE_PREFIX = "mlflow."


def mlflow_page(v: Version) -> str | None:
    """The version's page in the MLflow UI, when it came from an MLflow server reached over
    http(s) (a file: or sqlite: tracking URI has no UI to link to)."""
    uri = v.provenance.get(PROVENANCE_PREFIX + "tracking_uri", "")
    name = v.provenance.get(PROVENANCE_PREFIX + "model")
    number = v.provenance.get(PROVENANCE_PREFIX + "version")
    if not (name and number and uri.lower().startswith(("http://", "https://"))):
        return None
    return f"{uri.rstrip('/')}/#/models/{quote(name, safe='')}/versions/{quote(number)}"
