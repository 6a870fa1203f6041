"""Exit codes: one table, looked up by walking the error's class hierarchy.

Every exit code a command returns comes from here: a command that ends with a code without
raising (a rollback plan with no target, a sync round with failures) names the error class
whose code it shares.
"""

from __future__ import annotations

from lastgood.domain.errors import (
    AlreadyExists,
    Conflict,
    Escalated,
    Forbidden,
    IntegrityError,
    InvalidInput,
    LastGoodError,
    NoEligibleTarget,
    NotFound,
    PreconditionFailed,
    Regressed,
    TransientError,
    Unauthorized,
)

EXIT_CODES: dict[type[LastGoodError], int] = {
    LastGoodError: 1,  # any other failure
    TransientError: 1,  # a dependency is down: retry
    IntegrityError: 1,  # bytes or history do not match
    InvalidInput: 2,  # bad input: fix the command
    NotFound: 2,
    AlreadyExists: 2,
    PreconditionFailed: 2,
    Conflict: 3,  # another operation holds the deployment
    NoEligibleTarget: 4,  # every rollback candidate was refused
    Escalated: 5,  # switched, but verification failed: page a human
    Unauthorized: 6,
    Forbidden: 7,
    Regressed: 9,  # `lastgood wait`: the watch judged the deployment worse, or rolled it back
}
SUCCESS = 0
FAILURE = EXIT_CODES[LastGoodError]  # an unexpected exception, or a run with failures in it
ABORTED = 8  # a person declined the confirmation: nothing changed
INTERRUPTED = 130  # Ctrl-C: the shell's 128 + SIGINT


def exit_code_for(error: LastGoodError) -> int:
    """The code of the nearest class in the table along the error's MRO."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1


def error_document(error: LastGoodError) -> dict[str, object]:
    """What `--json` prints on stdout for a lastgood error (with its exit code)."""
    return {"error": {"type": type(error).__name__, "message": error.message, "fix": error.fix,
                      "exit_code": exit_code_for(error)}}


def usage_document(message: str, code: int) -> dict[str, object]:
    """What `--json` prints on stdout for a usage error click refused (exit 2)."""
    return {"error": {"type": "UsageError", "message": message, "fix": "see --help",
                      "exit_code": code}}


def nearest(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    """The choice a typo most likely meant, or None (for "did you mean")."""
    import difflib

    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return found[0] if found else None
