from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from huying import roles
from huying.api.deps import IfMatch, Rt
from huying.api.types import Instant
from huying.auth.deps import Auth
from huying.auth.gate import GatedRoute, allow
from huying.errors import InvalidInput
from huying.requests import service
from huying.requests.presenters import present
from huying.requests.schemas import ActionsOut, RequestOut, RequestPage, SubmitIn

router = APIRouter(prefix="/requests", tags=["requests"], route_class=GatedRoute)
RequestId = Annotated[int, Path(ge=1, le=2**62, description="the request's id")]
STAFF = allow(*roles.REQUEST_WORKERS)


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RequestOut,
    dependencies=[allow(*roles.SUBMITTERS, doing="submit requests")],
    responses={
        200: {
            "model": RequestOut,
            "description": "replayed: the request made earlier with this Idempotency-Key",
        }
    },
)
def submit(
    body: SubmitIn,
    rt: Rt,
    auth: Auth,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            description="retries with the same key and body return the same request",
        ),
    ] = None,
) -> Any:
    """Submit a request from the call list; it is routed at once."""
    try:
        with rt.transaction() as s:
            who = auth.principal(s, rt)
            req, created = service.submit(
                rt=rt, session=s, principal=who, body=body, idempotency_key=idempotency_key
            )
            out = present(s, [req], tz=rt.calendar.tz, with_timeline=True)[0]
    except IntegrityError:
        if idempotency_key is None:
            raise
        with (
            rt.transaction() as s
        ):  # a concurrent retry with the same key won: answer with its request
            who = auth.principal(s, rt)
            found = service.replay(
                session=s, principal=who, body=body, idempotency_key=idempotency_key
            )
            if found is None:
                raise
            out, created = present(s, [found], tz=rt.calendar.tz, with_timeline=True)[0], False
    return JSONResponse(
        out.model_dump(mode="json"),
        status_code=201 if created else 200,
        headers={"ETag": f'"{out.version}"', "Location": f"/api/v1/requests/{out.id}"},
    )


@router.get("", response_model=RequestPage, dependencies=[STAFF])
def list_requests(
    rt: Rt,
    auth: Auth,
    state: Annotated[
        list[str] | None, Query(max_length=20, description="one or more states")
    ] = None,
    department: Annotated[
        str | None, Query(max_length=64, description="lead department code")
    ] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    enterprise: Annotated[str | None, Query(max_length=18, description="USCC")] = None,
    grid: Annotated[str | None, Query(max_length=32, description="grid-code prefix")] = None,
    chain: Annotated[str | None, Query(max_length=64)] = None,
    overdue: bool | None = None,
    created_from: Annotated[
        Instant | None, Query(alias="from", description="created at or after")
    ] = None,
    created_to: Annotated[Instant | None, Query(alias="to", description="created before")] = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> RequestPage:
    """Requests the caller may see, newest first. Department staff, and a dispatcher or
    supervisor bound to a department, see those that department or one below it leads,
    co-handles or has a task of; a request outside that subtree is 404 on every route."""
    unknown = sorted(set(state or ()) - rt.workflows.state_names())
    if unknown:
        raise InvalidInput(
            f"state: no state {', '.join(map(repr, unknown))}; "
            f"one of {', '.join(sorted(rt.workflows.state_names()))}"
        )
    for name, moment in (("from", created_from), ("to", created_to)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput(f"{name}: give an offset, e.g. 2026-11-01T00:00:00+08:00")
        if moment is not None and not 1970 <= moment.year <= 9000:
            raise InvalidInput(f"{name}: a year between 1970 and 9000, please")
    after = service.after_id(cursor)
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        filters = service.Filters(
            states=state or None,
            department=department,
            category=category,
            enterprise=enterprise,
            grid_prefix=grid,
            chain=chain,
            overdue=overdue,
            created_from=created_from,
            created_to=created_to,
        )
        rows, next_cursor = service.page(
            session=s, principal=who, filters=filters, after=after, limit=limit
        )
        items = present(s, rows, tz=rt.calendar.tz)
    return RequestPage(items=items, next_cursor=next_cursor)


@router.get("/{request_id}", response_model=RequestOut, dependencies=[STAFF])
def get_request(request_id: RequestId, rt: Rt, auth: Auth, response: Response) -> RequestOut:
    """One request with its deadlines and its whole timeline. ETag carries its version."""
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        req = service.visible(session=s, principal=who, request_id=request_id)
        out = present(s, [req], tz=rt.calendar.tz, with_timeline=True)[0]
    _etag(response, out.version)
    return out


@router.get("/{request_id}/actions", response_model=ActionsOut, dependencies=[STAFF])
def get_actions(request_id: RequestId, rt: Rt, auth: Auth) -> ActionsOut:
    """The actions the caller may take on this request now."""
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        req = service.visible(session=s, principal=who, request_id=request_id)
        return ActionsOut(
            state=req.state,
            version=req.version,
            actions=service.allowed_actions(rt=rt, session=s, req=req, actor=who.actor),
        )


@router.post("/{request_id}/actions/{action}", response_model=RequestOut, dependencies=[STAFF])
def take_action(
    request_id: RequestId,
    action: Annotated[str, Path(max_length=64, pattern=r"^[a-z_]+$")],
    rt: Rt,
    auth: Auth,
    response: Response,
    if_match: IfMatch,
    body: Annotated[
        dict[str, Any] | None, Body(description="the action's fields; see the docs")
    ] = None,
) -> RequestOut:
    """Take an action: sign, return, dispatch, reply, rate … Conflicts answer 409 with the
    allowed actions; a stale If-Match answers 412."""
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        req = service.act(
            rt=rt,
            session=s,
            principal=who,
            request_id=request_id,
            action=action,
            body=body,
            if_match=if_match,
        )
        out = present(s, [req], tz=rt.calendar.tz, with_timeline=True)[0]
    _etag(response, out.version)
    return out
