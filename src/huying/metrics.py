"""Prometheus metrics: `GET /metrics` in the text exposition format.

Each app has its own `CollectorRegistry` (never the process-global one), so tests and several
apps in one process do not collide. Two kinds of figures:

- HTTP latency: a histogram per method, route template (`/api/v1/requests/{request_id}`, not
  the raw path, so the label set stays small; `unmatched` for 404s) and status, observed by an
  ASGI middleware around the whole application;
- the state of the system, computed at scrape time with a few COUNT queries that the existing
  indexes answer: requests by state, open requests overdue and by escalation level, escalation
  events, the worker's tick lag, the outbox backlog and dead deliveries, the months the rates
  read from `requests` until they are folded again. If the database cannot
  be reached, `huying_database_up` is 0 and those figures are left out; the scrape still works.

`/metrics` needs credentials, checked before any query runs: `Authorization: Bearer <key>` (or
a staff session) of role `admin` or `monitor`, else 401 without credentials and 403 for another
role, as problem+json. Each scrape costs a handful of aggregate queries, and the figures tell
an outsider how busy and how late the district is. Make a key for Prometheus with `huying keys
create --role monitor` and give it as `authorization: credentials:` in the scrape config.
`metrics.public: true` opens it to anyone, for a scraper that cannot send a header on a network
nobody else reaches.

Checking a key needs the database. So that an outage still shows as `huying_database_up 0`
rather than as a failed scrape, a key this process accepted within the last hour is accepted
again while the database cannot be reached (only then: whenever it can, the key is checked,
so a revoked key is refused, and forgotten).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from huying import __version__
from huying.alerts import service as alerts
from huying.auth.deps import Auth, Credentials
from huying.auth.service import token_hash
from huying.deadlines import service as deadlines
from huying.errors import HuyingError, Unavailable
from huying.reports import rollups
from huying.requests import service as requests
from huying.runtime import Runtime

log = logging.getLogger("huying.metrics")
SCRAPERS = ("admin", "monitor")  # the roles that may read /metrics unless metrics.public
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"


class Metrics:
    """The registry of one app, with its HTTP histogram and the database collector."""

    def __init__(self, rt: Runtime) -> None:
        self.registry = CollectorRegistry()
        self.http_latency = Histogram(
            "huying_http_request_duration_seconds",
            "HTTP requests by method, route template and status: seconds to the last byte",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(DatabaseCollector(rt))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class ScrapeKeys:
    """Who may scrape: a key or session of a role in SCRAPERS, checked in the database; while
    the database is unreachable, one that passed that check within `TRUST`."""

    TRUST = timedelta(hours=1)

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._passed: dict[str, datetime] = {}  # SHA-256 of the token → when it last passed

    def check(self, credentials: Credentials) -> None:
        """Return quietly or raise NotAuthenticated, Forbidden, or the database's error."""
        now = self.rt.now()
        digest = token_hash(credentials.token)
        try:
            with self.rt.transaction() as s:
                credentials.principal(s, self.rt, SCRAPERS)
        except (SQLAlchemyError, Unavailable):
            passed = self._passed.get(digest)
            if passed is None or now - passed > self.TRUST:
                raise
            log.warning("metrics: database unavailable; scrape key accepted from memory")
            return
        except HuyingError:
            self._passed.pop(digest, None)
            raise
        self._passed = {d: at for d, at in self._passed.items() if now - at <= self.TRUST}
        self._passed[digest] = now


class DatabaseCollector(Collector):
    """Gauges read from the database at each scrape."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        states = {
            state.name: state.final
            for compiled in rt.workflows.workflows.values()
            for state in compiled.spec.states.values()
        }
        self.states = sorted(states)
        self.open_states = sorted(name for name, final in states.items() if not final)

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("huying_info", "Huying's version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        up = GaugeMetricFamily("huying_database_up", "1 if the scrape could query the database")
        try:
            figures = list(self._from_database())
        except SQLAlchemyError as exc:
            log.warning("metrics: database unavailable: %s", exc.__class__.__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from figures

    def _from_database(self) -> Iterable[Metric]:
        now = self.rt.now()
        with self.rt.sessions() as s:
            by_state = requests.count_by_state(session=s)
            overdue = requests.count_overdue(session=s, states=self.open_states)
            levels = requests.count_by_level(session=s, states=self.open_states)
            escalations = alerts.escalations(session=s)
            workers, last_tick = deadlines.ticks(session=s)
            backlog = alerts.backlog(session=s)
            unfolded = rollups.months_to_fold(s.connection(), now=now, tz=self.rt.calendar.tz)

        states = GaugeMetricFamily("huying_requests", "Requests by state", labels=["state"])
        for state in sorted({*self.states, *by_state}):
            states.add_metric([state], by_state.get(state, 0))
        yield states
        yield GaugeMetricFamily(
            "huying_requests_overdue",
            "Open requests past a deadline now (overdue)",
            value=overdue,
        )
        escalated = GaugeMetricFamily(
            "huying_requests_escalated",
            "Open requests by their escalation level",
            labels=["level"],
        )
        for level in sorted({*levels, *(rung.level for rung in self.rt.settings.escalation)}):
            escalated.add_metric([str(level)], levels.get(level, 0))
        yield escalated
        yield CounterMetricFamily(
            "huying_escalations",
            "Escalations recorded (request.escalated events)",
            value=escalations,
        )
        yield GaugeMetricFamily(
            "huying_workers", "Worker processes that have ever ticked", value=workers
        )
        if last_tick is not None:
            yield GaugeMetricFamily(
                "huying_worker_tick_lag_seconds",
                "Seconds since the most recent tick of any worker",
                value=max(0.0, (now - last_tick).total_seconds()),
            )
        yield GaugeMetricFamily(
            "huying_outbox_events_pending",
            "Events not yet fanned out to their subscriptions",
            value=backlog.events_not_fanned_out,
        )
        yield GaugeMetricFamily(
            "huying_outbox_deliveries_pending",
            "Deliveries waiting for an attempt or a retry",
            value=backlog.deliveries_pending,
        )
        yield GaugeMetricFamily(
            "huying_report_months_unfolded",
            "Months ended that the rates read from requests until the next fold "
            "(changed since their fold, or never folded)",
            value=len(unfolded),
        )
        yield GaugeMetricFamily(
            "huying_deliveries_dead",
            "Deliveries that exhausted their attempts (visible and redeliverable)",
            value=backlog.deliveries_dead,
        )


class LatencyMiddleware:
    """Times every HTTP request to its last byte; labels it with the matched route template."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.histogram.labels(scope["method"], route_template(scope), str(status)).observe(
                time.perf_counter() - started
            )


def route_template(scope: Scope) -> str:
    """The path template of the route the router matched, e.g. `/api/v1/requests/{request_id}`.

    The router leaves the matched route in the scope; a route of an included router may carry
    its path without the router's prefix, so the prefix is taken from the request's path: the
    part before the suffix that the route's own pattern matches.
    """
    route: Any = scope.get("route")
    template = getattr(route, "path_format", None)
    pattern = getattr(route, "path_regex", None)
    if not template:
        return UNMATCHED
    path = str(scope.get("path", ""))
    if pattern is None or pattern.match(path):
        return str(template)
    for i, char in enumerate(path):
        if char == "/" and pattern.match(path[i:]):
            return path[:i] + str(template)
    return str(template)


def install(app: FastAPI, rt: Runtime) -> Metrics:
    """Add the latency middleware and `GET /metrics` to `app` (once); returns its metrics."""
    existing: Metrics | None = getattr(app.state, "metrics", None)
    if existing is not None:
        return existing
    metrics = Metrics(rt)
    app.state.metrics = metrics
    app.add_middleware(LatencyMiddleware, histogram=metrics.http_latency)

    def exposition(request: Request) -> Response:
        found: Metrics = request.app.state.metrics
        return Response(found.exposition(), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    if rt.settings.metrics.public:

        @app.get("/metrics", include_in_schema=False)
        def scrape_public(request: Request) -> Response:
            return exposition(request)

    else:
        keys = ScrapeKeys(rt)

        @app.get("/metrics", include_in_schema=False)
        def scrape(request: Request, auth: Auth) -> Response:
            """401 without credentials (the Auth dependency), 403 for a role not in SCRAPERS:
            both before the collector runs a single aggregate query."""
            keys.check(auth)
            return exposition(request)

    return metrics
