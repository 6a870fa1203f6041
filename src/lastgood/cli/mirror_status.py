"""The MLflow mirror's lines of `status` and `sync`: light, so `status` does not import the
sync loop."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from lastgood.services.views import iso

if TYPE_CHECKING:
    from lastgood.cli.app import CliContext
    from lastgood.services.mlflow_mirror import MirrorState


def mirror_view(s: MirrorState) -> dict[str, Any]:
    return {"model": s.model, "env": s.env, "alias": s.alias, "mode": str(s.mode),
            "mlflow_model": s.outside_model, "wanted": s.wanted, "mirrored": s.mirrored,
            "in_sync": s.in_sync, "behind_since": iso(s.behind_since),
            "last_error": s.last_error}


def mirror_line(s: MirrorState) -> str:
    where = f"MLflow alias {s.outside_model or s.model}@{s.alias}"
    if s.wanted is None:
        return f"{where}: not mirrored (the live version did not come from MLflow)"
    if s.in_sync:
        return f"{where} → v{s.wanted}: in sync"
    lag = time.time() - s.behind_since.timestamp() if s.behind_since else 0.0
    error = f"; last error: {s.last_error}" if s.last_error else ""
    return (f"[yellow]{where} should name v{s.wanted}[/] (names v{s.mirrored or '—'}): "
            f"{lag:.0f}s behind{error}")


def status_mirror(cli: CliContext, model: str, env: str) -> MirrorState | None:
    """The mirror's state for `status`, None when the env mirrors nothing or is remote."""
    mirror = getattr(cli.services, "mlflow_mirror", None)
    if mirror is None:
        return None
    state: MirrorState = mirror.state(model, env)
    return None if str(state.mode) == "off" else state
