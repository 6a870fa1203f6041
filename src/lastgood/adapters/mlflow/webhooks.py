"""MLflow's webhook signature (MLflow 3.3+): HMAC-SHA256 over `delivery_id.timestamp.payload`,
sent as `v1,<base64>` in X-MLflow-Signature. The installed MLflow's own signer is used when
there is one, so lastgood verifies exactly the scheme the server signs with."""

from __future__ import annotations

import base64
import hashlib
import hmac


def mlflow_signature(secret: str, delivery_id: str, timestamp: str, payload: str) -> str:
    """The signature MLflow sends for this delivery."""
    try:
        from mlflow.webhooks.delivery import _generate_hmac_signature
    except ImportError:  # no mlflow here (or an older one): the documented v1 scheme
        digest = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.{payload}".encode(),
                          hashlib.sha256).digest()
        return "v1," + base64.b64encode(digest).decode()
    return str(_generate_hmac_signature(secret, delivery_id, timestamp, payload))
