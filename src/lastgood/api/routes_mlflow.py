"""POST /api/mlflow/webhook: MLflow's signed webhook deliveries (no bearer token: the HMAC
signature is the credential)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from lastgood.api.deps import ServicesDep
from lastgood.services.mlflow_webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Delivery,
)

routes = APIRouter()


@routes.post("/api/mlflow/webhook", include_in_schema=False)  # not a bearer-token route
async def mlflow_webhook(request: Request, services: ServicesDep) -> dict[str, Any]:
    body = await request.body()
    delivery = Delivery(signature=request.headers.get(SIGNATURE_HEADER, ""),
                        timestamp=request.headers.get(TIMESTAMP_HEADER, ""),
                        delivery_id=request.headers.get(DELIVERY_HEADER, ""), body=body)
    from starlette.concurrency import run_in_threadpool

    outcomes = await run_in_threadpool(services.mlflow_webhooks.receive, delivery)
    return {"accepted": True, "followed": [dict(o) for o in outcomes]}
