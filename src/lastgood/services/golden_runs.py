"""Running a version's golden examples: one definition for the registration's recording, the
preflight smoke test, a replica's warm-up and its readiness proof.

Examples run in batches of the same inference params: those without any as one `predict` (the
params schema's defaults, as a request without params gets), those with params through the
predictor's `predict_with_params`, their values over the schema's defaults.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from lastgood.domain.errors import InvalidInput
from lastgood.domain.versions import GoldenExample, Param

__all__ = ["golden_outputs"]


def golden_outputs(predictor: Any, golden: Sequence[GoldenExample],
                   params: Sequence[Param] = ()) -> list[Any]:
    """One output per golden example, in order, each run with its own params."""
    if not any(g.params for g in golden):
        return list(predictor.predict([dict(g.inputs) for g in golden]))
    outputs: list[Any] = [None] * len(golden)
    for given, indices in _groups(golden):
        records = [dict(golden[i].inputs) for i in indices]
        answers = (predictor.predict(records) if not given
                   else _with_params(predictor, records, _merged(params, given)))
        for index, answer in zip(indices, answers, strict=True):
            outputs[index] = answer
    return outputs


def _groups(golden: Sequence[GoldenExample]) -> list[tuple[dict[str, Any], list[int]]]:
    """(params, the indices of the examples run with them), in order of first use."""
    groups: dict[str, tuple[dict[str, Any], list[int]]] = {}
    for index, g in enumerate(golden):
        key = json.dumps(dict(g.params), sort_keys=True, default=str)
        groups.setdefault(key, (dict(g.params), []))[1].append(index)
    return list(groups.values())


def _merged(params: Sequence[Param], given: Mapping[str, Any]) -> dict[str, Any]:
    return {**{p.name: p.default for p in params}, **given}


def _with_params(predictor: Any, records: list[dict[str, Any]],
                 params: Mapping[str, Any]) -> list[Any]:
    call = getattr(predictor, "predict_with_params", None)
    if not callable(call):
        raise InvalidInput(f"a golden example runs with params {dict(params)}, which this "
                           "version's loader cannot pass",
                           fix="register the golden examples without params, or serve the "
                               "version through mlflow.pyfunc")
    return list(call(records, params))
