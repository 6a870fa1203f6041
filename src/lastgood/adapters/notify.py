"""Notifiers: a log line for every decision, and a signed JSON webhook.

Webhook wire format: `POST <url>` with the JSON body of `notice_body(notice)` and the headers

    Content-Type: application/json
    X-Lastgood-Event: watch.decision
    X-Lastgood-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes, key = shared secret>

A receiver recomputes the HMAC over the raw body and compares in constant time. Delivery runs on a
background thread with a timeout per attempt and retries with backoff on network errors, 429 and
5xx, so a slow or dead receiver never holds the watch up; a failed delivery is logged, never
raised.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from lastgood.domain.decisions import Notice
from lastgood.ports import Notifier

log = logging.getLogger("lastgood.notify")

SIGNATURE_HEADER = "X-Lastgood-Signature"
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}


def notice_body(notice: Notice) -> dict[str, Any]:
    """The JSON document a webhook receives."""
    return {"kind": notice.kind, "model": notice.model, "env": notice.env,
            "version": notice.version, "decision": notice.decision, "verdict": notice.verdict,
            "severity": notice.severity, "summary": notice.summary, "at": notice.at.isoformat(),
            "evidence": dict(notice.evidence)}


def sign(body: bytes, secret: str) -> str:
    """The signature header's value for `body`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_valid(body: bytes, header: str, secret: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(sign(body, secret), header)


def log_level(notice: Notice) -> int:
    """The level of a notice's log line follows its consequence: ERROR when a watch decision
    changed production (a rollback) or a rollback that was due could not run; a regression that
    changes nothing (handed to a human, recorded in observe mode) is a WARNING, never an ERROR;
    other notices follow their severity."""
    if notice.kind != "watch.decision":
        return _LEVELS.get(notice.severity, logging.INFO)
    action = str(notice.evidence.get("action", ""))
    if notice.decision == "rollback" or action.startswith("rollback "):
        return logging.ERROR
    if notice.verdict in ("DEGRADED", "FAILED"):
        return logging.WARNING
    return logging.INFO


class LogNotifier:
    """One log line per decision, at a level that follows its consequence (`log_level`)."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self._log = logger

    def notify(self, notice: Notice) -> None:
        self._log.log(log_level(notice), "%s [decision=%s verdict=%s]",
                      notice.summary, notice.decision, notice.verdict)


class FanOut:
    """Tells every notifier; one failing never stops the others."""

    def __init__(self, notifiers: Sequence[Notifier]) -> None:
        self._notifiers = tuple(notifiers)

    def notify(self, notice: Notice) -> None:
        for notifier in self._notifiers:
            try:
                notifier.notify(notice)
            except Exception:  # a notifier must never break the watch
                log.exception("notifier %s failed", type(notifier).__name__)


class WebhookNotifier:
    """POSTs each notice, signed, from a background thread (see the module doc)."""

    def __init__(self, url: str, *, secret: str, timeout_s: float = 5.0, retries: int = 3,
                 backoff_s: float = 0.5, client: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep, queue_size: int = 1000) -> None:
        self.url, self._secret, self._retries, self._backoff = url, secret, retries, backoff_s
        self._client = client or httpx.Client(timeout=timeout_s)
        self._sleep = sleep
        self._queue: queue.Queue[Notice | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.delivered = self.failed = 0
        if not secret:
            log.warning("webhook %s is unsigned: set LASTGOOD_WEBHOOK_SECRET", url)

    def notify(self, notice: Notice) -> None:
        """Queue the notice; drops it (logged) when the queue is full."""
        self._start()
        try:
            self._queue.put_nowait(notice)
        except queue.Full:
            self.failed += 1
            log.error("webhook queue full; dropped: %s", notice.summary)

    def deliver(self, notice: Notice) -> bool:
        """Send one notice now, with retries; True when the receiver answered 2xx."""
        body = json.dumps(notice_body(notice), sort_keys=True, default=str).encode()
        headers = {"Content-Type": "application/json", "X-Lastgood-Event": notice.kind,
                   "User-Agent": "lastgood-watch"}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(body, self._secret)
        for attempt in range(self._retries + 1):
            if attempt:
                self._sleep(self._backoff * 2 ** (attempt - 1))
            outcome = self._post(body, headers)
            if outcome == "ok":
                self.delivered += 1
                return True
            if outcome == "final":
                break
        self.failed += 1
        log.error("webhook %s: giving up on %s", self.url, notice.summary)
        return False

    def _post(self, body: bytes, headers: dict[str, str]) -> str:
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("webhook %s unreachable: %s", self.url, exc)
            return "retry"
        if response.is_success:
            return "ok"
        log.warning("webhook %s answered %s", self.url, response.status_code)
        retriable = response.status_code == 429 or response.status_code >= 500
        return "retry" if retriable else "final"

    def close(self, *, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (up to `timeout_s`), then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout_s)
        self._client.close()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._drain, daemon=True,
                                                name="lastgood-webhook")
                self._thread.start()

    def _drain(self) -> None:
        while (notice := self._queue.get()) is not None:
            try:
                self.deliver(notice)
            except Exception:  # never let one bad notice stop delivery
                log.exception("webhook delivery failed")
