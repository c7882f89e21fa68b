"""The FastAPI application, built by `create_app(runtime)`; nothing is built at import time."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from huying import __version__
from huying.api import problems
from huying.auth.router import router as auth_router
from huying.directory.router import router as directory_router
from huying.health import router as health_router
from huying.requests.router import router as requests_router
from huying.runtime import Runtime

DESCRIPTION = """Huying (呼应): enterprises order, departments serve (企业点单、部门服务).

Authenticate with `Authorization: Bearer <token>`: an API key made by `huying keys create`,
or a staff session token from `POST /api/v1/auth/login`. Errors are
`application/problem+json` (RFC 9457)."""


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(
        title="Huying 呼应",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.runtime = rt
    problems.install(app)
    api = APIRouter(prefix="/api/v1")
    api.include_router(auth_router)
    api.include_router(directory_router)
    api.include_router(requests_router)
    app.include_router(api)
    app.include_router(health_router)
    return app
