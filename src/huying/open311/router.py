"""The Open311 GeoReport v2 routes at /open311/v2, each in `.json` and `.xml`.

Open311 has its own error answer and statuses, so this router answers its errors itself
rather than through `huying.api.problems`: 403 for a missing, unknown or wrong `api_key`,
404 for a service code, request or jurisdiction not found, 400 for anything else the
client sent wrong (where the JSON API says 422), 413 for a body past `server.max_body`,
503 while the database is unreachable. The routes read their parameters themselves, so no
input is answered by FastAPI's own 422. They are not in /openapi.json: GeoReport v2 is
their documentation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from huying import errors
from huying.api.deps import runtime
from huying.api.problems import Refused
from huying.open311 import forms, service
from huying.open311.formats import Format, format_of, respond
from huying.open311.formats import errors as error_answer

log = logging.getLogger("huying.open311")
router = APIRouter(prefix="/open311/v2", include_in_schema=False)

# Open311's status for each kind of Huying error (GeoReport v2, "Errors").
STATUS: tuple[tuple[type[errors.HuyingError], int], ...] = (
    (errors.NotAuthenticated, 403),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.TooLarge, 413),
    (errors.Unavailable, 503),
)


def status_of(exc: errors.HuyingError) -> int:
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 400)


def _failed(fmt: Format, exc: errors.HuyingError) -> Response:
    problems = exc.extra.get("problems") or [exc.detail]
    response = error_answer(fmt, status_of(exc), [str(p) for p in problems])
    if isinstance(exc, errors.Unavailable):
        response.headers["Retry-After"] = "5"
    return response


def _answer(suffix: str, work: Callable[[Format], Response]) -> Response:
    """`work` in the format the path names, its errors as Open311's; 404 (in JSON) for a
    format that is neither json nor xml."""
    fmt = format_of(suffix)
    if fmt is None:
        return error_answer("json", 404, [f".{suffix[:16]}: not a format; use .json or .xml"])
    try:
        return work(fmt)
    except errors.HuyingError as exc:
        return _failed(fmt, exc)
    except OperationalError:
        log.warning("database unavailable (open311)")
        return _failed(fmt, errors.Unavailable("the database is unavailable; retry shortly"))


def _query(request: Request, allowed: frozenset[str]) -> dict[str, str]:
    return forms.fields(request.query_params.multi_items(), allowed=allowed)


@router.get("/services.{fmt}")
def get_services(fmt: str, request: Request) -> Response:
    """GET Service List: the active categories of the call list."""

    def work(f: Format) -> Response:
        rt = runtime(request)
        given = _query(request, forms.COMMON)
        with rt.transaction() as s:
            service.reader(rt=rt, session=s, given=given)
            found = service.services(session=s)
        return respond(f, "services", found)

    return _answer(fmt, work)


@router.get("/services/{code}.{fmt}")
def get_service_definition(code: str, fmt: str, request: Request) -> Response:
    """GET Service Definition: the attribute every service asks for, enterprise_uscc."""

    def work(f: Format) -> Response:
        rt = runtime(request)
        given = _query(request, forms.COMMON)
        with rt.transaction() as s:
            service.reader(rt=rt, session=s, given=given)
            found = service.definition(session=s, code=code)
        return respond(f, "service_definition", found)

    return _answer(fmt, work)


@router.post("/requests.{fmt}")
async def post_request(fmt: str, request: Request) -> Response:
    """POST Service Request: form-encoded, `api_key` an integration key (in the form or the
    query); answers `[{service_request_id, service_notice, account_id}]`."""
    refused: errors.HuyingError | None = None
    try:
        body = await request.body()
    except Refused as exc:  # past server.max_body, sent without a Content-Length
        body, refused = b"", exc.error

    def work(f: Format) -> Response:
        if refused is not None:
            raise refused
        rt = runtime(request)
        pairs = [
            *request.query_params.multi_items(),
            *forms.form_pairs(body, request.headers.get("content-type")),
        ]
        given = forms.fields(pairs, allowed=forms.POST_FIELDS)
        with rt.transaction() as s:
            who = service.writer(rt=rt, session=s, given=given)
            created = service.submit(rt=rt, session=s, principal=who, given=given)
        return respond(f, "service_requests", [created])

    return await run_in_threadpool(_answer, fmt, work)


@router.get("/requests.{fmt}")
def get_requests(fmt: str, request: Request) -> Response:
    """GET Service Requests: by `service_request_id` (comma list), or by `service_code`,
    `status` and `start_date`/`end_date` (at most 90 days apart; the last 90 days by
    default); newest first, at most 1000."""

    def work(f: Format) -> Response:
        rt = runtime(request)
        given = _query(request, forms.QUERY_FIELDS)
        with rt.transaction() as s:
            service.reader(rt=rt, session=s, given=given)
            query = forms.request_query(given, tz=rt.calendar.tz, now=rt.now())
            found = service.find(rt=rt, session=s, query=query)
        return respond(f, "service_requests", found)

    return _answer(fmt, work)


@router.get("/requests/{number}.{fmt}")
def get_request(number: str, fmt: str, request: Request) -> Response:
    """GET Service Request: one request by its number, as a list of one."""

    def work(f: Format) -> Response:
        rt = runtime(request)
        given = _query(request, forms.COMMON)
        with rt.transaction() as s:
            service.reader(rt=rt, session=s, given=given)
            found = service.one(rt=rt, session=s, number=number)
        return respond(f, "service_requests", [found])

    return _answer(fmt, work)
