"""The one error tree of lastgood.

    LastGoodError                      every error lastgood raises on purpose
     ├── InvalidInput                  the caller gave something malformed (flag, file, schema)
     │    ├── UnsafeFormat             a pickle/joblib artifact without --allow-pickle
     │    ├── SchemaMismatch           the body parsed but does not fit the schema it is read by
     │    ├── PayloadTooLarge          a request body over the configured byte limit
     │    ├── UnsupportedMediaType     a Content-Type or Content-Encoding the route does not read
     │    └── MethodNotAllowed         the path exists, the method does not
     ├── NotFound                      unknown model, version, tag, env, operation, archive
     ├── Conflict                      the world changed under the caller
     │    ├── AlreadyExists            a duplicate tag, name or key
     │    │    └── IdenticalContent    content already registered as another version
     │    ├── OperationInProgress      another operation holds the deployment's lease
     │    └── PlanChanged              what a confirmed plan stood on changed before it ran
     ├── PreconditionFailed            the request is well formed but not allowed now
     │    ├── NoEligibleTarget         no rollback candidate passed (carries every refusal)
     │    ├── Incompatible             a version does not fit the environment
     │    └── IllegalTransition        a state machine was asked for a move it forbids
     ├── Regressed                     the watch judged a deployment worse, or rolled it back
     ├── Escalated                     the switch happened but verification failed: page a human
     ├── IntegrityError                bytes or history do not match their digest or chain
     ├── Unauthorized                  no or unknown credentials
     ├── Forbidden                     known credentials, insufficient role
     └── TransientError                a store, database or source is unreachable: retry

Every message names the problem and the fix. Classes map to HTTP statuses in one table
(`lastgood.services.http_statuses`, used by the API, the dashboard, the data plane and the remote
client) and to exit codes in another (`lastgood.cli.errors`), each walking the class hierarchy;
nothing here knows about either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class LastGoodError(Exception):
    """Base of every error lastgood raises on purpose."""

    def __init__(self, message: str, *, fix: str = "", details: dict[str, Any] | None = None):
        self.message = message
        self.fix = fix
        self.details: dict[str, Any] = dict(details or {})
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The problem and its fix on one line."""
        return f"{self.message} — {self.fix}" if self.fix else self.message


class InvalidInput(LastGoodError):
    """The caller gave something malformed."""


class UnsafeFormat(InvalidInput):
    """An artifact that runs arbitrary code when loaded, without explicit consent."""


class SchemaMismatch(InvalidInput):
    """The body parsed, but a field does not fit the schema it is read by: the route's request
    model, a protocol's payload shape, or the live version's input schema."""


class PayloadTooLarge(InvalidInput):
    """A request body over the configured byte limit."""


class UnsupportedMediaType(InvalidInput):
    """The body's Content-Type or Content-Encoding is not one the route reads."""


class MethodNotAllowed(InvalidInput):
    """The path exists, the method does not."""


class NotFound(LastGoodError):
    """A named thing does not exist."""


class Conflict(LastGoodError):
    """The world changed under the caller."""


class AlreadyExists(Conflict):
    """A unique name, tag or key is taken."""


class IdenticalContent(AlreadyExists):
    """The artifacts hash to the digest of an existing version; `version` is its number."""

    def __init__(self, message: str, *, fix: str = "", version: int, digest: str):
        super().__init__(message, fix=fix, details={"version": version, "digest": digest})
        self.version, self.digest = version, digest


class OperationInProgress(Conflict):
    """Another operation holds the deployment's lease."""


class PlanChanged(Conflict):
    """What a confirmed plan stood on (desired state, candidates, the target's evidence) changed
    between the confirmation and the run; nothing moved."""


class PreconditionFailed(LastGoodError):
    """Well formed, but not allowed in the current state."""


class Incompatible(PreconditionFailed):
    """A version does not fit the environment."""


class IllegalTransition(PreconditionFailed):
    """A state machine was asked for a move its table forbids."""


class NoEligibleTarget(PreconditionFailed):
    """No rollback candidate passed; `refusals` holds each candidate's reasons."""

    def __init__(self, message: str, *, fix: str = "", refusals: Sequence[Any] = ()):
        super().__init__(message, fix=fix, details={"refusals": list(refusals)})
        self.refusals = tuple(refusals)


class Regressed(LastGoodError):
    """The watch judged a deployment DEGRADED or FAILED, or rolled it back (`lastgood wait`)."""


class Escalated(LastGoodError):
    """The target is live but replicas did not follow or verification failed."""


class IntegrityError(LastGoodError):
    """Bytes or history do not match their digest or hash chain."""


class Unauthorized(LastGoodError):
    """Missing or unknown credentials."""


class Forbidden(LastGoodError):
    """Known credentials without the role the action needs."""


class TransientError(LastGoodError):
    """A dependency is unreachable; the same call may succeed later."""
