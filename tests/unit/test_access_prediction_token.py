"""The prediction API's own token: /v1/... refused without it, probes and metrics left open."""

from __future__ import annotations

import asyncio
from functools import partial

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lastgood.serving.guard import chain, require_token


async def ok(request: Request) -> JSONResponse:
    return JSONResponse({"path": request.url.path})


def app() -> Starlette:
    return Starlette(routes=[Route("/v1/models/{name}/predict", ok, methods=["POST"]),
                             Route("/healthz", ok), Route("/metrics", ok)])


def call(target: Starlette, method: str, path: str, **headers: str) -> httpx.Response:
    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=target),
                                     base_url="http://serve") as client:
            return await client.request(method, path, headers=headers)

    return asyncio.run(send())


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic s3cret", "Bearer", "s3cret"])
def test_predictions_need_the_token(header: str | None) -> None:
    guarded = require_token(app(), token="s3cret")
    headers = {"Authorization": header} if header is not None else {}
    r = call(guarded, "POST", "/v1/models/iris/predict", **headers)
    assert (r.status_code, r.json()["error"]) == (401, "Unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


def test_the_token_opens_predictions_and_probes_stay_open() -> None:
    guarded = chain(app(), wrappers=[partial(require_token, token="s3cret")])
    r = call(guarded, "POST", "/v1/models/iris/predict", Authorization="Bearer s3cret")
    assert r.json() == {"path": "/v1/models/iris/predict"}
    assert call(guarded, "GET", "/healthz").status_code == 200
    assert call(guarded, "GET", "/metrics").status_code == 200
