"""Metric sources: the gateway's own counters (in-process or over HTTP) and Prometheus (PromQL)."""

from __future__ import annotations

from collections.abc import Sequence

from lastgood.adapters.metrics.discovery import RegistryReplicas, registry_source
from lastgood.adapters.metrics.gateway import (
    GATEWAY_SIGNALS,
    GatewaySource,
    http_source,
    in_process_source,
)
from lastgood.adapters.metrics.prometheus import PROMETHEUS_SIGNALS, PrometheusSource, PromNames
from lastgood.domain.errors import InvalidInput
from lastgood.ports import Clock, MetricSource, UnitOfWorkFactory

__all__ = ["GATEWAY_SIGNALS", "PROMETHEUS_SIGNALS", "GatewaySource", "PromNames",
           "PrometheusSource", "RegistryReplicas", "http_source", "in_process_source",
           "open_metric_source", "registry_source", "signals_of"]

SOURCES = ("gateway", "prometheus")


def signals_of(kind: str) -> frozenset[str]:
    """The signals a kind of source provides (no connection needed)."""
    return GATEWAY_SIGNALS if kind == "gateway" else PROMETHEUS_SIGNALS


def open_metric_source(kind: str, *, clock: Clock, gateway_urls: Sequence[str] = (),
                       prometheus_url: str = "",
                       registry: UnitOfWorkFactory | None = None) -> MetricSource:
    """A source by name: "gateway" over `gateway_urls` (without them, every replica that
    reports to `registry`), or "prometheus" at `prometheus_url`."""
    if kind == "gateway":
        if not gateway_urls and registry is not None:
            return registry_source(registry, clock=clock)
        if not gateway_urls:
            raise InvalidInput("the gateway source needs at least one replica URL",
                               fix="pass --gateway http://127.0.0.1:8080 (or set "
                                   "LASTGOOD_GATEWAY_URLS)")
        return http_source(gateway_urls, clock=clock)
    if kind == "prometheus":
        if not prometheus_url:
            raise InvalidInput("the prometheus source needs the server's URL",
                               fix="pass --prometheus-url http://127.0.0.1:9090 (or set "
                                   "LASTGOOD_PROMETHEUS_URL)")
        return PrometheusSource(prometheus_url, clock=clock)
    raise InvalidInput(f"unknown metric source {kind!r}", fix=f"use one of {', '.join(SOURCES)}")
