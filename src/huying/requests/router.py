from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Response, status
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from huying import roles
from huying.api.deps import IfMatch, Rt
from huying.api.types import Instant
from huying.auth.deps import Auth
from huying.auth.gate import GatedRoute, allow
from huying.auth.service import Principal
from huying.errors import InvalidInput
from huying.requests import service
from huying.requests.presenters import present, present_written
from huying.requests.schemas import ActionsOut, RequestOut, RequestPage, SubmitIn
from huying.runtime import Runtime

router = APIRouter(prefix="/requests", tags=["requests"], route_class=GatedRoute)
RequestId = Annotated[
    str,
    Path(
        pattern=r"^([1-9]\d{0,17}|HY-\d{8}-\d{6,12})$",
        description="the request's id, or its number (HY-20261118-000001)",
    ),
]
STAFF = allow(*roles.REQUEST_WORKERS)


def _answer(s: Session, rt: Runtime, done: service.Intake, who: Principal) -> RequestOut:
    """A submit's answer: the request as the submitter may see it, with its receipt link;
    a new one built from what the submit wrote, a replayed one read."""
    req, public = done.request, service.sees_public_view(who)
    if done.names is not None:
        out = present_written(
            s,
            req,
            deadlines=done.deadlines,
            timeline=done.timeline,
            names=done.names,
            tz=rt.calendar.tz,
            public=public,
        )
    else:
        out = present(s, [req], tz=rt.calendar.tz, with_timeline=True, public=public)[0]
    out.receipt_url = service.receipt_url(rt=rt, req=req)
    return out


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RequestOut,
    # the handler confirms a caller admitted from the cache (Credentials.principal, first)
    dependencies=[allow(*roles.SUBMITTERS, doing="submit requests", confirm_in_handler=True)],
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
            service.start_submit(session=s)  # one statement, which confirms the caller too
            who = auth.principal(s, rt)
            done = service.take_in(
                rt=rt, session=s, principal=who, body=body, idempotency_key=idempotency_key
            )
            out = _answer(s, rt, done, who)
    except IntegrityError:
        if idempotency_key is None and body.external_id is None:
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
            done = service.Intake(found, False)
            out = _answer(s, rt, done, who)
    # pydantic's own JSON: what JSONResponse makes of `model_dump(mode="json")` (the same
    # bytes for a submit's answer), in 40% of its time, with no dict and no `json.dumps`
    return Response(
        out.model_dump_json(),
        media_type="application/json",
        status_code=201 if done.created else 200,
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
    number: Annotated[
        str | None,
        Query(min_length=1, max_length=32, description="exactly this number (HY-…)"),
    ] = None,
    external_id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="exactly this external_id; an integration finds its own submits",
        ),
    ] = None,
    created_from: Annotated[
        Instant | None, Query(alias="from", description="created at or after")
    ] = None,
    created_to: Annotated[Instant | None, Query(alias="to", description="created before")] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="words, each the start of the number or of the enterprise's USCC, or "
            "part of the enterprise's name or of the title; case does not count",
        ),
    ] = None,
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
    text = service.search_text(q)
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
            number=number,
            external_id=external_id,
            text=text,
        )
        rows, next_cursor = service.page(
            session=s, principal=who, filters=filters, after=after, limit=limit
        )
        items = present(s, rows, tz=rt.calendar.tz, public=service.sees_public_view(who))
    return RequestPage(items=items, next_cursor=next_cursor)


@router.get("/{request_id}", response_model=RequestOut, dependencies=[STAFF])
def get_request(request_id: RequestId, rt: Rt, auth: Auth, response: Response) -> RequestOut:
    """One request with its deadlines and its whole timeline. ETag carries its version."""
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        req = service.visible(session=s, principal=who, request_id=request_id)
        out = present(
            s, [req], tz=rt.calendar.tz, with_timeline=True, public=service.sees_public_view(who)
        )[0]
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
        out = present(
            s, [req], tz=rt.calendar.tz, with_timeline=True, public=service.sees_public_view(who)
        )[0]
    _etag(response, out.version)
    return out
