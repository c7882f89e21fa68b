"""Every error as `application/problem+json` (RFC 9457); each error type maps to one status here.

Besides RFC 9457's members, a problem carries `code`, the kind of failure (`errors.CODES`), and
the error's structured fields (`allowed`, `fields`, `refusals`, `current_version` …)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from huying import errors

log = logging.getLogger("huying.api")

STATUS: dict[type[errors.HuyingError], tuple[int, str]] = {
    errors.InvalidInput: (422, "Invalid input"),
    errors.NotAuthenticated: (401, "Not authenticated"),
    errors.Forbidden: (403, "Forbidden"),
    errors.NotFound: (404, "Not found"),
    errors.Conflict: (409, "Conflict"),
    errors.PreconditionFailed: (412, "Precondition failed"),
    errors.Unavailable: (503, "Service unavailable"),
    errors.TooLarge: (413, "Content too large"),
    errors.TooManyRequests: (429, "Too many requests"),
}
PROBLEM = "application/problem+json"
# Seconds a 503 asks the client to wait before it retries.
RETRY_AFTER = "5"
# The console's page for a browser that meets a 503 (`huying.web.routes.unavailable_page`),
# given to `install` by the app that serves the console.
UnavailablePage = Callable[[Request], Response]

# The code of a problem that is not one of Huying's errors, by status.
_STATUS_CODES = {status: kind.code for kind, (status, _) in STATUS.items()} | {
    405: "method_not_allowed",
    500: "internal_error",
}


def status_of(exc: errors.HuyingError) -> tuple[int, str]:
    """The status and title of an error: those of the kind it is (a subclass: of its base)."""
    return next((v for kind, v in STATUS.items() if isinstance(exc, kind)), (400, "Bad request"))


def problem(
    status: int, title: str, detail: str, *, code: str | None = None, **extra: Any
) -> JSONResponse:
    kind = code or _STATUS_CODES.get(status, "bad_request" if status < 500 else "internal_error")
    body = {
        **extra,
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "code": kind,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": RETRY_AFTER}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def answer(exc: errors.HuyingError) -> JSONResponse:
    """The problem document for one of Huying's errors, with the status STATUS gives it."""
    status, title = status_of(exc)
    response = problem(status, title, exc.detail, code=exc.code, **exc.extra)
    if isinstance(exc, errors.TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


class Refused(StarletteHTTPException):
    """One of Huying's errors raised while the body is read (from `receive`, by
    `huying.api.body`). FastAPI answers anything raised there with a bare 400 unless it is
    an HTTPException; this one is answered as its `error`."""

    def __init__(self, error: errors.HuyingError) -> None:
        super().__init__(status_of(error)[0], error.detail)
        self.error = error


def _unavailable(request: Request, detail: str, page: UnavailablePage | None) -> Response:
    """503: a problem document for the API and for clients that do not ask for HTML; the
    console's `page` for its browsers, when the app serves a console."""
    if (
        page is None
        or request.url.path.startswith("/api/")
        or "text/html" not in request.headers.get("accept", "")
    ):
        return problem(503, "Service unavailable", detail)
    response = page(request)
    response.headers["Retry-After"] = RETRY_AFTER
    return response


def _validation_detail(errs: list[dict[str, Any]]) -> str:
    located = []
    for e in errs[:10]:
        loc = [str(p) for p in e.get("loc", ())]
        if loc[:1] == ["body"] and len(loc) > 1 and not loc[1].isdigit():
            loc = loc[1:]  # body.title → title; a bare body stays "body"
        located.append({**e, "loc": loc})
    return errors.validation_detail(located) or "invalid request"


# The methods a 405's Allow header is worked out from (OPTIONS is answered on every path).
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed(request: Request, given: str | None) -> list[str]:
    """Every method some route takes on this path. Starlette's 405 names only the methods of
    the first route whose path matched (POST for /api/v1/requests, which GET serves too).
    A mount takes any method and refuses some itself: what it said (`given`) stands."""
    routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
    found = {m.strip().upper() for m in (given or "").split(",") if m.strip()}
    for method in _METHODS:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in routes):
            found.add(method)
    return [m for m in (*_METHODS, "OPTIONS") if m in found | {"OPTIONS"}]


def _not_allowed(request: Request, exc: StarletteHTTPException) -> Response:
    """OPTIONS: 204 with the complete Allow header, as RFC 9110 section 9.3.7 has a server
    describe a resource, and as clients probing what a URL takes expect (a 405 would say
    the method OPTIONS is unknown here). Any other method: 405 with the complete Allow
    header, which RFC 9110 section 15.5.6 requires."""
    allow = ", ".join(_allowed(request, (exc.headers or {}).get("Allow")))
    if request.method == "OPTIONS":
        return Response(status_code=204, headers={"Allow": allow})
    response = problem(
        405, "Method not allowed", f"{request.method} is not allowed here; allowed: {allow}"
    )
    response.headers["Allow"] = allow
    return response


def install(app: FastAPI, *, unavailable_page: UnavailablePage | None = None) -> None:
    """Answer every error as a problem document; a 503 for a browser as `unavailable_page`."""

    @app.exception_handler(errors.HuyingError)
    async def _huying(_: Request, exc: errors.HuyingError) -> JSONResponse:
        return answer(exc)

    @app.exception_handler(Refused)
    async def _refused(_: Request, exc: Refused) -> JSONResponse:
        return answer(exc.error)

    @app.exception_handler(errors.Unavailable)
    async def _pool(request: Request, exc: errors.Unavailable) -> Response:
        log.warning("database unavailable: %s", exc.detail)
        return _unavailable(request, exc.detail, unavailable_page)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errs = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        detail = _validation_detail(errs)
        return problem(422, "Invalid input", detail, code="invalid_fields", errors=errs)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            return _not_allowed(request, exc)
        detail = exc.detail if isinstance(exc.detail, str) else "error"
        response = problem(exc.status_code, detail, detail)
        for k, v in (exc.headers or {}).items():
            response.headers[k] = v
        return response

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity conflict: %s", exc.orig.__class__.__name__)
        return problem(
            409, "Conflict", "a concurrent change conflicts with this one; reload and retry"
        )

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> Response:
        log.warning("database unavailable: %s", exc.orig.__class__.__name__)
        return _unavailable(request, "the database is unavailable; retry shortly", unavailable_page)

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        return problem(
            422, "Invalid input", "a value is out of range or not storable; nothing was written"
        )

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> Response:
        if exc.connection_invalidated:
            return _unavailable(
                request, "the database connection was lost; retry shortly", unavailable_page
            )
        log.exception("database error")
        return problem(500, "Internal error", "an unexpected database error occurred")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(500, "Internal error", "an unexpected error occurred; it has been logged")


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "An error, as RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {
            "type": "string",
            "description": "what went wrong, in words a person can act on",
        },
        "code": {
            "type": "string",
            "enum": list(errors.CODES),
            "description": "the kind of failure, stable for programs (`detail` is for people):\n"
            + "\n".join(f"- `{code}`: {meaning}" for code, meaning in errors.CODES.items()),
        },
        "allowed": {
            "type": "array",
            "items": {"type": "string"},
            "description": "403, 404, 409: the actions allowed now",
        },
        "errors": {
            "type": "array",
            "items": {"type": "object"},
            "description": "422: each invalid field",
        },
        "fields": {
            "type": "array",
            "items": {"type": "string"},
            "description": "422 `missing_fields`: the fields the action needs",
        },
        "kind": {
            "type": "string",
            "description": "422 `unknown_reference`: what kind of thing is unknown, e.g. department",
        },
        "codes": {
            "type": "array",
            "items": {"type": "string"},
            "description": "422 `unknown_reference`: the unknown codes (or request numbers)",
        },
        "field": {
            "type": "string",
            "description": "422 `unknown_reference`: the input field that names them",
        },
        "refusals": {
            "type": "array",
            "items": {"type": "string"},
            "description": "409 `refused`: the workflow's guards that refused, e.g. under_reopen_limit",
        },
        "current_version": {
            "type": "integer",
            "description": "412 `stale_version`: the request's current version",
        },
    },
    "additionalProperties": True,
}


def document(app: FastAPI) -> None:
    """Describe errors in the OpenAPI document as they are sent: application/problem+json."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        components["Problem"] = PROBLEM_SCHEMA
        content = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, item in schema.get("paths", {}).items():
            for op in item.values():
                responses = op.setdefault("responses", {})
                if "422" in responses:
                    responses["422"] = {
                        "description": "Invalid input; nothing was written",
                        "content": content,
                    }
                if path == "/healthz":
                    continue
                responses["4XX"] = {"description": "A problem: see `detail`", "content": content}
                responses["503"] = {
                    "description": "The database is unavailable; retry",
                    "content": content,
                }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
