"""Inference params: a request's values checked against the version's params schema (MLflow's
ParamSchema), defaults filled, before the model runs. Every door names them its own way
(`params` at /invocations and the native route, `parameters` in OIP v2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lastgood.domain.versions import Param
from lastgood.serving.inputs import field_error

__all__ = ["checked_params"]

# MLflow's param types -> the JSON values that are one of them (bool is not a number here)
ACCEPTS: Mapping[str, tuple[type, ...]] = {
    "string": (str,), "datetime": (str,), "integer": (int,), "long": (int,),
    "float": (int, float), "double": (int, float), "boolean": (bool,), "object": (dict,)}


def checked_params(schema: tuple[Param, ...], given: Any, *, where: str) -> dict[str, Any]:
    """Every param of the schema: the request's value, checked, else its default. A model
    without a params schema takes none; an unknown name or a wrong type is refused naming it."""
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise field_error(where, "expected an object of param values",
                          f'send {where} as {{"name": value}}')
    if given and not schema:
        raise field_error(where, "this model takes no inference params",
                          f"leave {where} out: the version registered no params schema")
    known = {p.name: p for p in schema}
    for name in given:
        if name not in known:
            raise field_error(f"{where}.{name}", "unknown param",
                              f"send only {', '.join(map(repr, known))}")
    return {p.name: _value(p, given[p.name], where) if p.name in given else p.default
            for p in schema}


def _value(param: Param, value: Any, where: str) -> Any:
    values = value if param.shape else [value]
    if param.shape and not isinstance(value, list):
        raise field_error(f"{where}.{param.name}", f"expected a list of {param.dtype}",
                          f"send {param.name} as a JSON list")
    accepted = ACCEPTS.get(param.dtype, (object,))
    for item in values:
        wrong_bool = isinstance(item, bool) and bool not in accepted
        if wrong_bool or not isinstance(item, accepted):
            raise field_error(f"{where}.{param.name}",
                              f"expected {param.dtype}, got {type(item).__name__}",
                              f"send {param.name} as {param.dtype}")
    return value
