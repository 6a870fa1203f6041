"""The one error → HTTP status table, read forwards by the faces and backwards by the remote
client: an error raised behind the API is raised again, with the same exit code, by a remote
command."""

from __future__ import annotations

import httpx
import pytest

from lastgood.cli.errors import exit_code_for
from lastgood.domain import errors
from lastgood.remote.client import error_from
from lastgood.services.http_statuses import class_for_status, error_name, status_for

TREE = [cls for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.LastGoodError)]


def raised(cls: type[errors.LastGoodError]) -> errors.LastGoodError:
    if cls is errors.IdenticalContent:
        return errors.IdenticalContent("same bytes as v3", fix="use v3", version=3, digest="ab")
    if cls is errors.NoEligibleTarget:
        return errors.NoEligibleTarget("none passed", fix="see refusals", refusals=[{"v": 2}])
    return cls("the problem", fix="the fix")


def answered(error: errors.LastGoodError) -> httpx.Response:
    """The answer the control plane's handler gives for `error`."""
    return httpx.Response(status_for(error), json={
        "error": error_name(error), "message": error.message, "fix": error.fix,
        "details": error.details})


@pytest.mark.parametrize("cls", TREE, ids=lambda c: c.__name__)
def test_every_error_comes_back_as_its_class_with_its_exit_code(cls):
    error = raised(cls)
    back = error_from(answered(error))
    assert type(back).__name__ == error_name(error)
    assert exit_code_for(back) == exit_code_for(error)
    assert (back.message, back.fix, back.details) == (error.message, error.fix, error.details)


def test_schema_mismatch_is_422_under_the_name_invalid_input():
    error = errors.SchemaMismatch("records[0].x: missing", fix="send x")
    assert (status_for(error), error_name(error)) == (422, "InvalidInput")
    assert status_for(errors.InvalidInput("empty reason")) == 400
    assert isinstance(error_from(answered(error)), errors.InvalidInput)


@pytest.mark.parametrize(("status", "code"), [
    (400, 2), (401, 6), (403, 7), (404, 2), (409, 2), (413, 2), (422, 2), (500, 1), (502, 1),
    (503, 1)])
def test_an_answer_without_a_name_is_read_by_its_status(status, code):
    back = error_from(httpx.Response(status, text="<html>bad gateway</html>"))
    assert type(back) is class_for_status(status)
    assert exit_code_for(back) == code
    assert str(status) in back.message


def test_details_that_are_not_an_object_are_dropped():
    back = error_from(httpx.Response(409, json={"error": "NoEligibleTarget", "message": "m",
                                                "details": ["not", "an", "object"]}))
    assert isinstance(back, errors.NoEligibleTarget)
    assert back.refusals == ()
