"""MLflow's exceptions as lastgood errors: the only place that knows what MLflow raises."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from lastgood.domain.errors import InvalidInput, LastGoodError, NotFound, TransientError

INSTALL = "pip install 'lastgood[mlflow]'"
TRACKING_FIX = "set MLFLOW_TRACKING_URI to your MLflow server, e.g. http://127.0.0.1:5000"
CREDENTIALS_FIX = ("set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or "
                   "MLFLOW_TRACKING_TOKEN) to credentials the server accepts")


def require_mlflow() -> Any:
    """The mlflow module, imported on first use; a missing one is a one-line error."""
    try:
        import mlflow
    except ImportError as exc:
        raise InvalidInput("the MLflow integration needs the mlflow package",
                           fix=INSTALL) from exc
    return mlflow


def unreachable(tracking_uri: str, exc: BaseException) -> TransientError:
    detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
    return TransientError(f"the MLflow tracking server {tracking_uri} is unreachable ({detail})",
                          fix=f"start it or {TRACKING_FIX}")


@contextmanager
def translated(tracking_uri: str, *, missing: Callable[[], LastGoodError] | None = None
               ) -> Iterator[None]:
    """Run MLflow calls; their exceptions leave as lastgood errors (`raise ... from exc`)."""
    require_mlflow()
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    try:
        yield
    except MlflowException as exc:
        raise _from_mlflow(tracking_uri, exc, missing) from exc
    except RequestException as exc:
        raise unreachable(tracking_uri, exc) from exc
    except OSError as exc:  # a local artifact store MLflow could not read
        raise TransientError(f"MLflow's artifacts could not be read: {exc}",
                             fix="check the artifact store the tracking server uses") from exc


def _from_mlflow(tracking_uri: str, exc: Any,
                 missing: Callable[[], LastGoodError] | None) -> LastGoodError:
    code = str(getattr(exc, "error_code", ""))
    text = str(getattr(exc, "message", exc)).splitlines()[0][:200]
    if code == "RESOURCE_DOES_NOT_EXIST" and missing is not None:
        return missing()
    if code == "RESOURCE_DOES_NOT_EXIST":
        return NotFound(f"MLflow: {text}", fix="check the name (lastgood sync mlflow lists them)")
    if code in ("UNAUTHENTICATED", "PERMISSION_DENIED") or "401" in text or "403" in text:
        return LastGoodError(f"the MLflow server {tracking_uri} refused the credentials ({text})",
                             fix=CREDENTIALS_FIX)
    if "Max retries exceeded" in text or "Connection" in text or "timed out" in text:
        return unreachable(tracking_uri, exc)
    if code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"):
        return InvalidInput(f"MLflow refused the request: {text}",
                            fix="check the model URI (models:/NAME/VERSION, models:/NAME@ALIAS "
                                "or runs:/RUN_ID/PATH)")
    return TransientError(f"MLflow failed: {text}", fix="retry; if it persists, check the "
                                                        "MLflow server's log")
