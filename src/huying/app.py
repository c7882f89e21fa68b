"""The FastAPI application, built by `create_app(runtime)`; nothing is built at import time."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.types import Scope

from huying import __version__, logs, metrics
from huying.alerts.router import router as alerts_router
from huying.api import docs, problems
from huying.api.body import BodyGuard, LimitFor
from huying.api.deps import known_query
from huying.attachments.router import ENVELOPE_BYTES, UPLOAD_PATH
from huying.attachments.router import build_router as attachments_router
from huying.auth.router import routers as auth_routers
from huying.directory import import_router as directory_import
from huying.directory.router import router as directory_router
from huying.health import log_escalation_gaps
from huying.health import router as health_router
from huying.open311.router import router as open311_router
from huying.reports.router import router as reports_router
from huying.requests import service as requests
from huying.requests.router import router as requests_router
from huying.runtime import Runtime
from huying.settings import Settings
from huying.web.admin import enterprises as admin_enterprises
from huying.web.admin import routers as admin_routers
from huying.web.receipt import router as receipt_router
from huying.web.routes import STATIC_DIR, unavailable_page
from huying.web.routes import router as web_router

DESCRIPTION = """Huying (呼应): enterprises order, departments serve (企业点单、部门服务).

Authenticate with `Authorization: Bearer <token>`: an API key made by `huying keys create`,
or a staff session token from `POST /api/v1/auth/login`. The console's session cookie is
accepted for GET only. Credentials and roles are checked before the body is read (401, 403);
a body larger than `server.max_body` (1 MiB by default) gets 413, a file uploaded to
`/api/v1/attachments` larger than `attachments.max_bytes` (20 MiB) too. Errors are
`application/problem+json` (RFC 9457)."""


# The console's action forms: they carry the files to attach (multipart).
_CONSOLE_ACTION = re.compile(r"^/requests/[^/]+/actions/[^/]+$")


def _upload_limits(settings: Settings) -> LimitFor:
    """The bodies that carry files may be larger than `server.max_body`: an upload, at most
    one file of `attachments.max_bytes` and its framing; a multipart action form of the
    console, its files together at most `attachments.max_bytes` beside its text fields; an
    enterprise import (`huying.directory.imports.MAX_BYTES`), by the API or the console."""
    upload = settings.attachments.max_bytes + ENVELOPE_BYTES
    form = settings.attachments.max_bytes + settings.server.max_body
    # the console's import: the file on preview, and again as base64 in the confirm form
    console_import = directory_import.BODY_LIMIT + settings.server.max_body

    def limit_for(scope: Scope) -> int | None:
        if scope["method"] != "POST":
            return None
        if scope["path"] == UPLOAD_PATH:
            return upload
        if scope["path"] in admin_enterprises.IMPORT_PATHS:
            return console_import
        if (limit := directory_import.body_limit(scope)) is not None:
            return limit
        kind = Headers(scope=scope).get("content-type", "")
        if kind.startswith("multipart/form-data") and _CONSOLE_ACTION.match(scope["path"]):
            return form
        return None

    return limit_for


def create_app(rt: Runtime, *, run_worker: bool = False) -> FastAPI:
    """The API. With `run_worker`, the worker ticks in this process while it serves."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Every rung that would alert nobody, once per start; never stops the start.
        log_escalation_gaps(rt)
        scheduler = None
        if run_worker:
            from huying.worker import start_background

            scheduler = start_background(rt)
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=True)
                logging.getLogger("huying.worker").info("worker stopped")

    app = FastAPI(
        lifespan=lifespan,
        title="Huying 呼应",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # docs.install serves /docs with Swagger UI's files from this server
        redoc_url=None,
    )
    app.state.runtime = rt
    problems.install(app, unavailable_page=unavailable_page)  # the console's 503 page
    problems.document(app)
    docs.install(app)  # /docs, offline: no CDN
    # Bodies capped and checked; read only when a route asks, after the gate admitted the caller.
    app.add_middleware(
        BodyGuard, max_body=rt.settings.server.max_body, limit_for=_upload_limits(rt.settings)
    )
    # FastAPI tries the routes in the order they were included, one by one, and more than
    # once per call: the routes called most come first. The intake's dispatch cost 410–435 µs
    # of CPU behind the twenty-odd routes of auth and the directory, 225–230 µs in front of
    # them (bench/routing.py). No two routers here answer the same path and method, so the
    # order changes nothing else.
    # Every router is included in the app itself, none in another router (the API's each
    # with its prefix and `known_query`): FastAPI (0.165) keeps an included router as a
    # router and matches each level again, twice per call, walking its routers for their
    # version each time; a level less took 0.21 M instructions off a submit, 3%
    # (bench/intake_instructions.py), and 17–38% off the dispatch (bench/routing.py).
    # The prefix is given where a router is included: FastAPI walks every route of a router
    # included without one (to refuse an empty path), building each route's dependencies,
    # which took 60–70 ms of the app's 70–80 ms build (5 ms now; a test builds an app each).
    app.include_router(health_router)  # a load balancer's probe: not behind every route
    for router in (
        requests_router,  # the intake and the actions
        attachments_router(sees_request=requests.visible),
        *auth_routers,
        directory_router,
        directory_import.router,  # POST /enterprises/import
        alerts_router,
        reports_router,
    ):
        app.include_router(router, prefix="/api/v1", dependencies=[Depends(known_query)])
    app.include_router(open311_router)  # /open311/v2: GeoReport v2, its own errors
    app.include_router(web_router)
    for router in admin_routers:  # /admin/…: the console's admin pages
        app.include_router(router)
    app.include_router(receipt_router)  # /r/{token}: the enterprise's receipt, no login
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    metrics.install(app, rt)  # GET /metrics and the latency middleware
    logs.install(app)  # X-Request-ID, outermost
    return app
