"""The web dashboard, served by the control plane: one page for the engineer on call.

    from lastgood.dashboard import mount
    mount(app)                      # services from app.state.services, read per request
    mount(app, services)            # or given explicitly
    mount(app, services, live_stats=serving_stats(state))   # charts from an in-process replica
    mount(app, services, live_stats=metric_source_stats(source, live))  # or any MetricSource

`mount(app, services=None, *, live_stats=None)` adds, on the control plane's FastAPI `app`:

- `GET /dashboard/` the page (and `/dashboard` -> `/dashboard/`, `/` -> `/dashboard/` when the
  app has no root route); static files under `/dashboard/static/`, all shipped in this package;
- `GET /api/v1/models/{name}/metrics?env=` live points of the live version and the verified
  baseline they are judged against. It authenticates the bearer token through
  `app.state.access`, else `services.access` (role viewer or above; denials audited). Points
  come only from a real stats source (`live_stats`, else `app.state.live_stats`); with none,
  `points` is [] and `source` is null;
- `GET /api/v1/models/{name}/metrics/history?env=&since=1h[&buckets=]` the metric history the
  replicas wrote to the registry (what the page's charts draw): per-version points, the
  baseline each deployment was judged against, deploy/rollback/verify markers; `since` is
  1m..30d (else 400), the same authentication.

Errors raised by the metrics route are rendered by the app's handler for `LastGoodError` when it
has one (the control plane's status table), else as `{"error", "message", "fix"}`.
"""

from lastgood.dashboard.metrics import LiveStats, ServedStats, VersionCounters
from lastgood.dashboard.stats import metric_source_stats, serving_stats
from lastgood.dashboard.web import mount

__all__ = ["LiveStats", "ServedStats", "VersionCounters", "metric_source_stats", "mount",
           "serving_stats"]
