"""The FastAPI application, built by `create_app(runtime)`; nothing is built at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from huying import __version__, logs, metrics
from huying.alerts.router import router as alerts_router
from huying.api import docs, problems
from huying.api.body import BodyGuard
from huying.auth.router import router as auth_router
from huying.directory.router import router as directory_router
from huying.health import log_escalation_gaps
from huying.health import router as health_router
from huying.reports.router import router as reports_router
from huying.requests.router import router as requests_router
from huying.runtime import Runtime
from huying.web.routes import STATIC_DIR, unavailable_page
from huying.web.routes import router as web_router

DESCRIPTION = """Huying (呼应): enterprises order, departments serve (企业点单、部门服务).

Authenticate with `Authorization: Bearer <token>`: an API key made by `huying keys create`,
or a staff session token from `POST /api/v1/auth/login`. The console's session cookie is
accepted for GET only. Credentials and roles are checked before the body is read (401, 403);
a body larger than `server.max_body` (1 MiB by default) gets 413. Errors are
`application/problem+json` (RFC 9457)."""


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
    app.add_middleware(BodyGuard, max_body=rt.settings.server.max_body)
    api = APIRouter(prefix="/api/v1")
    api.include_router(auth_router)
    api.include_router(directory_router)
    api.include_router(requests_router)
    api.include_router(alerts_router)
    api.include_router(reports_router)
    app.include_router(api)
    app.include_router(health_router)
    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    metrics.install(app, rt)  # GET /metrics and the latency middleware
    logs.install(app)  # X-Request-ID, outermost
    return app
