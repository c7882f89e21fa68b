"""Open311's use cases: who calls (an integration key in `api_key`), the call list as
services, a request submitted through `huying.requests.service.submit`, and requests read
in the public view.

Who may read: with `open311.public_reads: false` (the default) every read needs an
integration key, as a write does, since requests name enterprises. A key reads every
request of the jurisdiction, as an integration does in the REST API, and only what the
public view shows: the state, the lead department's name, the public reply, the due
instant. With `public_reads: true` anyone reads the same; a key that is sent must still be
a valid integration key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo

from sqlalchemy.orm import Session

from huying import roles
from huying.auth.service import Principal, authenticate
from huying.deadlines import service as deadlines
from huying.deadlines.models import Deadline
from huying.directory import service as directory
from huying.errors import Forbidden, InvalidInput, NotAuthenticated, NotFound
from huying.open311 import forms
from huying.open311 import repository as repo
from huying.open311.schemas import (
    USCC_ATTRIBUTE,
    AttributeOut,
    CreatedOut,
    RequestQuery,
    ServiceDefinitionOut,
    ServiceOut,
    ServiceRequestOut,
)
from huying.requests import service as requests
from huying.requests.models import Request
from huying.runtime import Runtime

# GET requests answers at most this many, newest first (GeoReport v2's default volume).
LIST_LIMIT = 1000
# The public timeline rows whose note is a request's `status_notes`: the lead department's
# reply, or the reason it was not accepted.
STATUS_NOTE_ACTIONS = ("reply", "reject")


def reader(*, rt: Runtime, session: Session, given: Mapping[str, str]) -> Principal | None:
    """Who reads: the integration key in `api_key`, or None where reads are public and no
    key is sent. Forbidden (403) for a key missing where reads are not public, or wrong."""
    _check_jurisdiction(rt, given.get("jurisdiction_id"))
    key = given.get("api_key")
    if key is None and rt.settings.open311.public_reads:
        return None
    return _integration(rt, session, key)


def writer(*, rt: Runtime, session: Session, given: Mapping[str, str]) -> Principal:
    """Who submits: the integration key in `api_key`, always needed."""
    _check_jurisdiction(rt, given.get("jurisdiction_id"))
    return _integration(rt, session, given.get("api_key"))


def _integration(rt: Runtime, session: Session, key: str | None) -> Principal:
    """The caller of an integration key. Forbidden (Open311 answers 403 for a wrong or
    missing api_key) for none, an unknown or revoked one, or a key of another role."""
    if key is None:
        raise Forbidden("api_key: required: an API key of role integration")
    try:
        who = authenticate(session=session, token=key, now=rt.now())
    except NotAuthenticated:
        raise Forbidden("api_key: unknown or revoked") from None
    if who.role != roles.INTEGRATION:
        raise Forbidden(f"api_key: a key of role {who.role!r}; Open311 takes integration keys")
    return who


def _check_jurisdiction(rt: Runtime, given: str | None) -> None:
    """Huying serves one jurisdiction: `jurisdiction_id` may be left out; when sent and
    `open311.jurisdiction_id` is set, it must be that one (404 otherwise)."""
    ours = rt.settings.open311.jurisdiction_id
    if given is not None and ours is not None and given != ours:
        raise NotFound(f"jurisdiction_id: {given[:100]!r} not found; this is {ours!r}")


# ---- services ------------------------------------------------------------------------------


def services(*, session: Session) -> list[ServiceOut]:
    """The call list: each active category."""
    return [
        ServiceOut(
            service_code=c.code,
            service_name=c.name,
            description=c.description or "",
            group=c.group or "",
        )
        for c in directory.categories(session=session, active_only=True)
    ]


def definition(*, session: Session, code: str) -> ServiceDefinitionOut:
    """What a service asks for beyond the standard fields: the enterprise."""
    _active_category(session, code)
    attribute = AttributeOut(
        code=USCC_ATTRIBUTE,
        datatype="string",
        required=True,
        datatype_description="18 位统一社会信用代码，如 91110000600037341L",
        order=1,
        description="提出诉求的企业的统一社会信用代码（须为已登记的企业）",
    )
    return ServiceDefinitionOut(service_code=code, attributes=[attribute])


def _active_category(session: Session, code: str) -> None:
    category = directory.category(session=session, code=code) if forms.is_code(code) else None
    if category is None or not category.active:
        raise NotFound(f"service_code: {code[:64]!r} not found; GET services lists them")


# ---- POST requests -------------------------------------------------------------------------


def submit(
    *, rt: Runtime, session: Session, principal: Principal, given: Mapping[str, str]
) -> CreatedOut:
    """Submit a request from a POST's fields, routed at once; its number is the
    service_request_id. 404 for a service code not on the call list, 400 for anything
    missing or wrong (an enterprise not registered too); nothing is written then."""
    code = given.get("service_code")
    if code is not None:
        _active_category(session, code)
    body = forms.submit_body(given)
    if directory.enterprise(session=session, uscc=body.enterprise_uscc) is None:
        raise InvalidInput(
            f"attribute[{USCC_ATTRIBUTE}]: no enterprise {body.enterprise_uscc} is registered"
        )
    req, _ = requests.submit(
        rt=rt, session=session, principal=principal, body=body, idempotency_key=None
    )
    [view] = views(rt=rt, session=session, rows=[req])
    return CreatedOut(
        service_request_id=view.service_request_id,
        service_notice=view.service_notice,
        account_id=given.get("account_id"),
    )


# ---- GET requests --------------------------------------------------------------------------


def find(*, rt: Runtime, session: Session, query: RequestQuery) -> list[ServiceRequestOut]:
    """The requests a query names (by number), or those it filters, newest first."""
    if query.numbers:
        rows = repo.by_numbers(session, query.numbers)
    else:
        rows = repo.listed(session, query, limit=LIST_LIMIT)
    return views(rt=rt, session=session, rows=rows)


def one(*, rt: Runtime, session: Session, number: str) -> ServiceRequestOut:
    """One request by its number; 404 for none."""
    number = number.strip().upper()
    rows = repo.by_numbers(session, [number]) if forms.is_number(number) else []
    if not rows:
        raise NotFound(f"service_request_id: no request {number[:40]!r}")
    return views(rt=rt, session=session, rows=rows)[0]


def views(*, rt: Runtime, session: Session, rows: Sequence[Request]) -> list[ServiceRequestOut]:
    """Requests in the public view, what they refer to read in one batch each."""
    ids = [r.id for r in rows]
    notes = repo.latest_public_notes(session, ids, actions=STATUS_NOTE_ACTIONS)
    departments = repo.department_names(
        session, {r.lead_department_code for r in rows if r.lead_department_code}
    )
    categories = repo.category_names(session, {r.category_code for r in rows})
    clocks = deadlines.open_of_requests(session=session, request_ids=ids)
    tz = rt.calendar.tz
    out = []
    for r in rows:
        agency = departments.get(r.lead_department_code or "")
        out.append(
            ServiceRequestOut(
                service_request_id=r.number or str(r.id),
                status="open" if r.closed_at is None else "closed",
                status_notes=notes.get(r.id),
                service_name=categories.get(r.category_code, r.category_code),
                service_code=r.category_code,
                description=r.description,
                agency_responsible=agency,
                service_notice=_notice(rt, r, agency),
                requested_datetime=w3(r.created_at, tz),
                updated_datetime=w3(r.updated_at, tz),
                expected_datetime=_expected(clocks.get(r.id, []), tz),
                address=r.address,
                lat=r.lat,
                long=r.long,
                media_url=r.media_urls[0] if r.media_urls else None,
            )
        )
    return out


def w3(moment: datetime, tz: tzinfo) -> str:
    """An instant as Open311 writes it: to the second, with the calendar's UTC offset."""
    return moment.astimezone(tz).isoformat(timespec="seconds")


def _expected(open_deadlines: Sequence[Deadline], tz: tzinfo) -> str | None:
    """When the lead's running deadline falls due (the earliest, if several); none while it
    is paused (a suspension) or the request is closed."""
    due = [
        d.due_at
        for d in open_deadlines
        if d.kind not in deadlines.NOT_THE_LEADS and d.status != "paused"
    ]
    return w3(min(due), tz) if due else None


def _notice(rt: Runtime, req: Request, agency: str | None) -> str:
    """Where the request is, in words (the state's label), and who handles it."""
    spec = rt.workflows.spec(req.workflow_name, req.workflow_version)
    state = spec.states.get(req.state)
    label = (state.label if state else "") or req.state
    return f"{label}，承办部门：{agency}" if agency and req.closed_at is None else label
