"""The HTTP status of every error in lastgood's tree: the one table of every HTTP face.

The REST API, the dashboard, the data plane (`lastgood serve`, through all of its protocols) and
the remote client that reads the API's answers back all look a status up here, by walking the
error's class hierarchy, so a refusal means the same through every door and a remote command
re-raises what the control plane raised.

Why this module sits in the services layer: serving, adapters and remote are sibling layers that
may not import each other, and api/dashboard/cli sit above them, so the one table they all
import has to live in services or below. It is not in the domain: the domain's error tree knows
nothing of transports (the CLI's exit codes are a face's table too, `lastgood.cli.errors`), and
putting statuses into the exception module is the trap mlflow's `MlflowException` fell into. It
is plain data keyed by domain classes, so the services stay free of any web framework.
"""

from __future__ import annotations

from collections.abc import Mapping

from lastgood.domain.errors import (
    Conflict,
    Escalated,
    Forbidden,
    IntegrityError,
    InvalidInput,
    LastGoodError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    SchemaMismatch,
    TransientError,
    Unauthorized,
    UnsupportedMediaType,
)

__all__ = ["STATUS", "class_for_status", "error_name", "status_for"]

# Rows are written most general first: `class_for_status` reads a status back as the first row
# that has it (an answer without an error name, say from a proxy, is still raised as a class).
STATUS: Mapping[type[LastGoodError], int] = {
    # A failure lastgood knows but did not classify is not the caller's to fix: 500, as the API
    # and the data plane always answered. (The dashboard, mounted without the API's handlers,
    # answered 400; its own refusals are all classified: 401, 403, 404, 503.)
    LastGoodError: 500,
    # InvalidInput is 400 everywhere: malformed input, fix the request (a flag, a name, an empty
    # reason, a body that is not JSON). The data plane used to give InvalidInput 422 and the API
    # 400; what both meant by 422 is the narrower SchemaMismatch below, which the API answers
    # for a body that fails the route's request model and the data plane for a body that fails
    # the live version's input schema or the protocol's payload shape. Every protocol test pins
    # those as 422 and the bodies that are not JSON as 400, so both keep their status.
    InvalidInput: 400,
    SchemaMismatch: 422,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    MethodNotAllowed: 405,
    NotFound: 404,
    # Read back without a name, 409 is PreconditionFailed (exit 2) as it always was; a held
    # lease travels by name (OperationInProgress, exit 3).
    PreconditionFailed: 409,  # well formed but not allowed in the current state
    Conflict: 409,  # the world changed under the caller (duplicate, lease held)
    Escalated: 424,  # the switch happened but verification failed: page a human
    IntegrityError: 500,  # stored bytes or history do not match their digest
    Unauthorized: 401,
    Forbidden: 403,
    TransientError: 503,  # a dependency is down: retry
}

# SchemaMismatch is told apart from InvalidInput only for its status: every face has always
# named these refusals InvalidInput (bodies, the rejected-request counter), and a client that
# re-raises InvalidInput exits with the same code.
WIRE_NAMES: Mapping[type[LastGoodError], str] = {SchemaMismatch: "InvalidInput"}


def status_for(error: BaseException) -> int:
    """The status of the nearest class in the table along the error's MRO (500 if none)."""
    return next((STATUS[c] for c in type(error).__mro__ if c in STATUS), 500)


def class_for_status(status: int) -> type[LastGoodError]:
    """The error class an answer without an error name stands for: the first row with it."""
    return next((cls for cls, code in STATUS.items() if code == status), LastGoodError)


def error_name(error: LastGoodError) -> str:
    """The class name an error travels under (what a client re-raises)."""
    return WIRE_NAMES.get(type(error), type(error).__name__)
