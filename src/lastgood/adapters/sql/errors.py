"""Translate SQLAlchemy and driver errors into lastgood's error tree, at the adapter's edge.

Nothing above the SQL adapter ever sees a `sqlalchemy.*`, `sqlite3.*` or `psycopg.*` exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from lastgood.adapters import registry_rules as rules
from lastgood.domain.errors import LastGoodError, TransientError

# SQLSTATE classes: 08 connection exception, 57P0x server shutting down, 53 insufficient
# resources, 40001 serialization failure, 40P01 deadlock — all worth a retry.
_TRANSIENT_STATES = ("08", "57P", "53", "40001", "40P01")


def safe_url(url: str) -> str:
    """The URL with any password masked, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return "<unparseable database URL>"


def unreachable(url: str) -> TransientError:
    return rules.unreachable_database(safe_url(url))


def _sqlstate(error: sa_exc.DBAPIError) -> str:
    return str(getattr(error.orig, "sqlstate", "") or "")


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def translate(error: sa_exc.SQLAlchemyError, url: str) -> LastGoodError:
    """The lastgood error for a SQLAlchemy error raised while talking to `url`."""
    if isinstance(error, sa_exc.IntegrityError):
        return _integrity(error)
    if isinstance(error, sa_exc.TimeoutError):
        return TransientError(f"no free connection to the registry database at {safe_url(url)}",
                              fix="retry; raise the pool size if this persists")
    if isinstance(error, sa_exc.DBAPIError):
        return _dbapi(error, url)
    return LastGoodError(f"registry database error: {_first_line(error)}",
                         fix="report this as a lastgood bug with the command you ran")


def _integrity(error: sa_exc.IntegrityError) -> LastGoodError:
    return rules.refused_change(_first_line(error), _sqlstate(error))


def _dbapi(error: sa_exc.DBAPIError, url: str) -> LastGoodError:
    state, text = _sqlstate(error), _first_line(error)
    if "database is locked" in text or "database is busy" in text or state == "55P03":
        return rules.busy_database()
    if state.startswith(("40001", "40P01")):
        return rules.transient_abort(text)
    if _is_unreachable(error, state, text, sqlite=url.startswith("sqlite")):
        return unreachable(url)
    return rules.database_error(text)


@contextmanager
def translated(url: str) -> Iterator[None]:
    """Run a block, re-raising any SQLAlchemy error as the matching lastgood error."""
    try:
        yield
    except sa_exc.SQLAlchemyError as exc:
        raise translate(exc, url) from exc


def _is_unreachable(error: sa_exc.DBAPIError, state: str, text: str, *, sqlite: bool) -> bool:
    if sqlite:  # a file: only a missing or unreadable one is "unreachable"
        return "unable to open database file" in text or "disk I/O error" in text
    # psycopg reports a failed connect (refused, timeout, bad host) without a SQLSTATE
    return (error.connection_invalidated or state.startswith(_TRANSIENT_STATES)
            or isinstance(error, sa_exc.InterfaceError)
            or (isinstance(error, sa_exc.OperationalError) and not state))
