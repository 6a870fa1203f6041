"""Settings: the only module that reads environment variables (all prefixed LASTGOOD_)."""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    """Where lastgood keeps its registry and artifacts, and who is acting."""

    home: Path
    db_url: str
    store_url: str
    actor: str
    remote_url: str = ""
    remote_token: str = ""
    s3_endpoint_url: str = ""
    webhook_url: str = ""  # LASTGOOD_WEBHOOK_URL: where watch decisions are POSTed
    webhook_secret: str = ""  # LASTGOOD_WEBHOOK_SECRET: key of the X-Lastgood-Signature HMAC
    prometheus_url: str = ""  # LASTGOOD_PROMETHEUS_URL: the PromQL metric source
    gateway_urls: tuple[str, ...] = ()  # LASTGOOD_GATEWAY_URLS: serving replicas, comma-separated
    lease_ttl_s: float = 30.0
    smoke_test: bool = True  # LASTGOOD_SMOKE_TEST=off skips it (reported as SKIP, never hidden)
    halt_after: str = ""  # crash drills: the engine stops after committing this phase
    api_max_body_bytes: int = 1024 * 1024  # control plane: largest JSON request
    api_max_upload_bytes: int = 4 * 1024**3  # control plane: largest artifact upload
    serve_token: str = ""  # when set, the prediction API requires it (Authorization: Bearer)
    readiness_interval_s: float = 60.0  # LASTGOOD_READINESS_INTERVAL_S: standby re-proofs
    readiness_evidence: bool = True  # LASTGOOD_READINESS_EVIDENCE=off: always run the smoke test
    # Replay limits of the rollback preflight: more failing recent requests than this refuse a
    # target (LASTGOOD_MAX_REPLAY_FAILURES, default 0), and, when set, agreement with the live
    # version below LASTGOOD_MIN_REPLAY_AGREEMENT (0..1; default unset: never refuses).
    max_replay_failures: int = 0
    min_replay_agreement: float | None = None
    mlflow_tracking_uri: str = ""  # MLFLOW_TRACKING_URI: the MLflow server to import from/mirror
    mlflow_webhook_secret: str = ""  # LASTGOOD_MLFLOW_WEBHOOK_SECRET: MLflow webhooks' HMAC key
    # LASTGOOD_ACCURACY_OUTPUT: the output feedback labels judge in a model answering several
    # (an ONNX graph's label and probabilities); default: its label output
    accuracy_output: str = ""

    @property
    def is_embedded(self) -> bool:
        return self.db_url.startswith("sqlite")


def os_user() -> str:
    """The operating-system user, recorded as the actor of local CLI use."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"uid:{os.getuid()}"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from LASTGOOD_* variables, with the embedded defaults under ./.lastgood/."""
    # An empty LASTGOOD_ variable (`LASTGOOD_DB_URL=` in a shell or a compose file) means unset,
    # not an empty URL or path.
    env = {k: v for k, v in (os.environ if environ is None else environ).items()
           if v.strip() or not k.startswith("LASTGOOD_")}
    home = Path(env.get("LASTGOOD_HOME", ".lastgood")).expanduser().absolute()
    return Settings(
        home=home,
        db_url=env.get("LASTGOOD_DB_URL", f"sqlite:///{home / 'registry.db'}"),
        store_url=env.get("LASTGOOD_STORE_URL", str(home / "artifacts")),
        actor=env.get("LASTGOOD_ACTOR", "") or os_user(),
        remote_url=env.get("LASTGOOD_URL", ""),
        remote_token=env.get("LASTGOOD_TOKEN", ""),
        s3_endpoint_url=env.get("LASTGOOD_S3_ENDPOINT_URL", ""),
        webhook_url=env.get("LASTGOOD_WEBHOOK_URL", ""),
        webhook_secret=env.get("LASTGOOD_WEBHOOK_SECRET", ""),
        prometheus_url=env.get("LASTGOOD_PROMETHEUS_URL", ""),
        gateway_urls=tuple(u.strip() for u in env.get("LASTGOOD_GATEWAY_URLS", "").split(",")
                           if u.strip()),
        lease_ttl_s=_positive(env, "LASTGOOD_LEASE_TTL_S", 30.0),
        halt_after=env.get("LASTGOOD_HALT_AFTER", ""),
        smoke_test=_switch(env, "LASTGOOD_SMOKE_TEST", default=True),
        api_max_body_bytes=int(_positive(env, "LASTGOOD_API_MAX_BODY_BYTES", 1024 * 1024)),
        api_max_upload_bytes=int(_positive(env, "LASTGOOD_API_MAX_UPLOAD_BYTES", 4 * 1024**3)),
        serve_token=env.get("LASTGOOD_SERVE_TOKEN", ""),
        readiness_interval_s=_positive(env, "LASTGOOD_READINESS_INTERVAL_S", 60.0),
        readiness_evidence=_switch(env, "LASTGOOD_READINESS_EVIDENCE", default=True),
        max_replay_failures=_count(env, "LASTGOOD_MAX_REPLAY_FAILURES"),
        min_replay_agreement=_share(env, "LASTGOOD_MIN_REPLAY_AGREEMENT"),
        mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI", ""),
        mlflow_webhook_secret=env.get("LASTGOOD_MLFLOW_WEBHOOK_SECRET", ""),
        accuracy_output=env.get("LASTGOOD_ACCURACY_OUTPUT", "").strip(),
    )


def _positive(env: Mapping[str, str], key: str, default: float) -> float:
    text = env.get(key, "")
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        from lastgood.domain.errors import InvalidInput

        raise InvalidInput(f"{key}={text!r} is not a positive number",
                           fix=f"set {key} to seconds, e.g. 30, or unset it")
    return value


def _count(env: Mapping[str, str], key: str) -> int:
    text = env.get(key, "").strip()
    if not text:
        return 0
    if not text.isdigit():
        from lastgood.domain.errors import InvalidInput

        raise InvalidInput(f"{key}={text!r} is not a whole number of requests",
                           fix=f"set {key} to 0 or more, or unset it")
    return int(text)


def _share(env: Mapping[str, str], key: str) -> float | None:
    text = env.get(key, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        from lastgood.domain.errors import InvalidInput

        raise InvalidInput(f"{key}={text!r} is not a share between 0 and 1",
                           fix=f"set {key} to e.g. 0.9 (90 %), or unset it")
    return value


def _switch(env: Mapping[str, str], key: str, *, default: bool) -> bool:
    text = env.get(key, "").strip().lower()
    if not text:
        return default
    if text in ("1", "on", "true", "yes"):
        return True
    if text in ("0", "off", "false", "no"):
        return False
    from lastgood.domain.errors import InvalidInput

    raise InvalidInput(f"{key}={text!r} is not on or off", fix=f"set {key}=on or {key}=off")
