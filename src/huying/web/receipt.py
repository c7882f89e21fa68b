"""The enterprise's receipt page (回执), `/r/{token}`: no login, phone-first, in Chinese.

The token in the URL (128 bits, made at submit) is the capability: whoever holds the link
sees the request's public view (`huying.requests.presenters.public_view`) and, once it is
replied, answers 是否解决 and rates it, as the enterprise. The rating goes through
`huying.requests.service.act` like every action, by a principal of role `integration`
standing for the enterprise (`receipt:<request id>`), so the workflow's rules for the
enterprise's own answer hold here too (`resolved` is required).

- Unknown, malformed and near-miss tokens all get the same 404 page (the token is compared
  in constant time by `requests.service.by_receipt`).
- Forms carry a double-submit token: a random value in a cookie of this path
  (HttpOnly, SameSite=Strict) and in the form, which must match. A page of another site can
  neither read the cookie nor have the browser send it, so it cannot post for the holder of
  a link; the check needs no server secret, so every process and replica agrees.
- At most `RATE_LIMIT` requests a minute per client address reach `/r/…` (429 with
  Retry-After past it), counted in this process: with several server processes or replicas
  each counts on its own.
- Every answer: `Cache-Control: no-store`, `Referrer-Policy: no-referrer` (the token is in the
  URL), `X-Robots-Tag: noindex`, and the console's content policy (no CDN, never framed).
"""

from __future__ import annotations

import math
import secrets
import threading
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from huying.api.deps import Rt
from huying.attachments import service as attachments
from huying.attachments.router import disposition
from huying.attachments.schemas import AttachmentOnRequest
from huying.auth.service import Principal
from huying.directory import service as directory
from huying.errors import HuyingError, InvalidInput, NotFound, StaleVersion, Unavailable
from huying.requests import service as requests
from huying.requests.models import Request as RequestRow
from huying.requests.presenters import present
from huying.requests.schemas import DeadlineOut, RequestOut, TimelineOut
from huying.runtime import Runtime
from huying.web import labels, views
from huying.web.forms import Form, read_form
from huying.web.pages import SECURITY_HEADERS
from huying.web.session import same
from huying.web.states import state_labels
from huying.web.templating import render

RATE_LIMIT = 30  # requests per client address and minute, for every path under /r/
WINDOW = timedelta(minutes=1)
CSRF_COOKIE = "huying_receipt"
CSRF_FIELD = "csrf"
NOTE_MAX = 2000  # as the API's `note` (huying.requests.schemas.Note)
HEADERS = {
    **SECURITY_HEADERS,
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
}
RESOLVED = {"true": "已解决", "false": "未解决"}
# A deadline of the public view as the enterprise reads it; {due} is a local instant.
DUE_TEXT = {
    "dispatch": "预计 {due} 前派至承办部门",
    "sign": "承办部门应于 {due} 前签收",
    "reply": "承办部门应于 {due} 前答复",
    "feedback": "请于 {due} 前评价，逾期未评价将自动办结",
}


# --- the rate limit ------------------------------------------------------------------


@dataclass
class Throttle:
    """A sliding window of the last minute's requests per client address, in this process.
    Refused requests are not counted, so a client waiting out its Retry-After gets in."""

    limit: int = RATE_LIMIT
    window: timedelta = WINDOW
    max_clients: int = 10_000  # past it, the clients idle longest are forgotten
    _hits: dict[str, deque[datetime]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, client: str, now: datetime) -> int:
        """0 if the request is admitted (and counted), else the seconds until it would be."""
        with self._lock:
            hits = self._hits.setdefault(client, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, math.ceil((hits[0] + self.window - now).total_seconds()))
            hits.append(now)
            if len(self._hits) > self.max_clients:
                self._shrink()
            return 0

    @property
    def clients(self) -> int:
        """How many client addresses it holds counts for."""
        return len(self._hits)

    def _shrink(self) -> None:
        """Keep the half of `max_clients` seen last: a flood of addresses cannot grow it
        without bound, and the sort is paid once per `max_clients / 2` new clients. A
        client forgotten while still counted starts again from zero."""
        latest = sorted(self._hits.items(), key=lambda item: item[1][-1], reverse=True)
        self._hits = dict(latest[: max(1, self.max_clients // 2)])


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Each app counts on its own, from its start."""
    app.state.receipt_throttle = Throttle()
    yield


router = APIRouter(include_in_schema=False, lifespan=_lifespan)


def _throttle(request: Request) -> Throttle:
    found: Throttle | None = getattr(request.app.state, "receipt_throttle", None)
    if found is None:  # an app served without its lifespan (a test's bare client)
        found = request.app.state.receipt_throttle = Throttle()
    return found


def _limit(request: Request, rt: Runtime) -> Response | None:
    """Every path under /r/ first: the 429 page past the limit, before anything is read from
    the body or the database; None when the request is admitted."""
    client = request.client.host if request.client else "-"
    retry_after = _throttle(request).wait(client, rt.now())
    return _throttled(request, retry_after) if retry_after else None


# --- responses -----------------------------------------------------------------------


def _csrf(request: Request) -> tuple[str, bool]:
    """The page's double-submit token, and whether the cookie must be set."""
    current = request.cookies.get(CSRF_COOKIE, "")
    if len(current) == 43:
        return current, False
    return secrets.token_urlsafe(32), True


def _page(
    request: Request, template: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    """An HTML answer with the headers every /r/ answer carries; the form token's cookie is
    set whenever the browser has none, on every page alike (a 404 looks like any other)."""
    token, fresh = _csrf(request)
    response = HTMLResponse(render(template, {**context, "csrf": token}), status, HEADERS)
    if fresh:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            path="/r/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return response


def _message(request: Request, status: int, title: str, text: str) -> HTMLResponse:
    return _page(request, "receipt_message.html", {"title": title, "message": text}, status)


def _missing(request: Request) -> HTMLResponse:
    """The one answer for every token that names no request: nothing hints at why."""
    return _message(request, 404, "找不到该回执", "链接无效或已失效，请核对通知中的链接是否完整。")


def _throttled(request: Request, retry_after: int) -> HTMLResponse:
    response = _message(request, 429, "访问过于频繁", f"访问过于频繁，请 {retry_after} 秒后再试。")
    response.headers["Retry-After"] = str(retry_after)
    return response


def enterprise(req: RequestRow, name: str) -> Principal:
    """Who rates from the receipt page: the enterprise, as an integration would."""
    return Principal(id=f"receipt:{req.id}", role="integration", department=None, name=name)


# --- what the page shows -------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One public timeline entry as the enterprise reads it."""

    at: str
    what: str
    text: str  # the reply, the reason of a rejection, the comment given with a rating
    files: list[AttachmentOnRequest]


def _what(t: TimelineOut, dept_names: Mapping[str, str]) -> str:
    data = t.data or {}
    lead = str(data.get("lead_department") or "")
    dept = dept_names.get(lead, lead)
    if t.action == "route":
        return f"已分派至{dept}办理" if dept else "已受理，等待派单"
    if t.action == "rate":
        said = labels.RATINGS.get(str(data.get("rating")), str(data.get("rating") or ""))
        if "resolved" in data:
            said += "，" + ("已解决" if data["resolved"] else "未解决")
        return f"评价：{said}"
    if t.action == "decide_extension" and data.get("extend_by"):
        return f"答复时限延长 {labels.duration(str(data['extend_by']))}"
    fixed = {
        "submit": "诉求已提交",
        "dispatch": f"已派至{dept}办理",
        "sign": "承办部门已签收，正在办理",
        "reply": "承办部门已答复",
        "auto_close": "评价期满，诉求自动办结",
        "reject": "不予受理",
    }
    return fixed.get(t.action) or labels.TIMELINE.get(t.action, labels.action(t.action))


def _due(out: RequestOut, rt: Runtime) -> str:
    """The running deadline of the public view, in local time, as a sentence; the reply's
    says how many working days it allows."""
    running = [
        d
        for d in out.deadlines
        if d.completed_at is None and d.status != "paused" and d.kind in DUE_TEXT
    ]
    d: DeadlineOut | None = min(running, key=lambda d: d.due_at, default=None)
    if d is None:
        return ""
    text = DUE_TEXT[d.kind].format(due=views.when(d.due_at, rt.calendar.tz))
    if d.kind == "reply":
        text += f"（{labels.duration(d.duration)}内答复）"
    return text


def _files(session: Session, req: RequestRow) -> dict[int | None, list[AttachmentOnRequest]]:
    """The request's public attachments by the timeline entry they came with."""
    by_seq: dict[int | None, list[AttachmentOnRequest]] = {}
    found = attachments.of_requests(session=session, request_ids=[req.id], public_only=True)
    for a in found.get(req.id, []):
        by_seq.setdefault(a.timeline_seq, []).append(a)
    return by_seq


def _context(s: Session, rt: Runtime, req: RequestRow, token: str) -> dict[str, Any]:
    """Everything the page shows, from the public view only."""
    out = present(s, [req], tz=rt.calendar.tz, with_timeline=True, public=True)[0]
    dept_names = {d.code: d.name for d in directory.departments(session=s)}
    files = _files(s, req)
    entries = [
        Entry(
            at=views.when(t.at, rt.calendar.tz),
            what=_what(t, dept_names),
            text=t.note or "",
            files=files.pop(t.seq, []),
        )
        for t in out.timeline or ()
    ]
    who = enterprise(req, out.enterprise.name)
    may_rate = "rate" in requests.allowed_actions(rt=rt, session=s, req=req, actor=who.actor)
    return {
        "r": out,
        "base": f"/r/{token}",
        "title": f"诉求回执 {out.number}",
        "state": state_labels(rt).get(out.state) or labels.state(out.state),
        "lead": out.lead_department.name if out.lead_department else "",
        "submitted": views.when(out.created_at, rt.calendar.tz),
        "due": _due(out, rt),
        "entries": list(reversed(entries)),  # the newest first: what a phone shows first
        "other_files": [a for rest in files.values() for a in rest],
        "may_rate": may_rate,
        "ratings": list(labels.RATINGS.items()),
        "resolved_choices": list(RESOLVED.items()),
        "values": {},
        "errors": {},
        "notice": "",
        "failure": "",
    }


def _show(
    request: Request,
    rt: Runtime,
    token: str,
    *,
    status: int = 200,
    extra: Mapping[str, Any] | None = None,
) -> HTMLResponse:
    with rt.transaction() as s:
        req = requests.by_receipt(session=s, token=token)
        if req is None:
            return _missing(request)
        context = _context(s, rt, req, token)
    context.update(extra or {})
    return _page(request, "receipt.html", context, status)


# --- routes ----------------------------------------------------------------------------


@router.get("/r/{token}", response_class=HTMLResponse)
def receipt(request: Request, token: str, rt: Rt) -> Response:
    """The receipt: where the request is, who handles it, when it is due, what happened."""
    if (refused := _limit(request, rt)) is not None:
        return refused
    notice = {
        "closed": "感谢您的评价，诉求已办结。",
        "reopened": "感谢您的反馈，诉求已退回承办部门重新办理，答复后可再次评价。",
    }.get(request.query_params.get("rated", ""), "")
    return _show(request, rt, token, extra={"notice": notice})


@dataclass(frozen=True)
class Rating:
    """The rating form, checked: the body of `rate`, or what is wrong with each field."""

    body: dict[str, Any]
    errors: dict[str, str]
    values: dict[str, str]


def check_rating(form: Form) -> Rating:
    """是否解决 and one of the five levels are required, the comment is optional and at most
    `NOTE_MAX` characters; the field's error in Chinese otherwise."""
    resolved = form.get("resolved") or ""
    rating = form.get("rating") or ""
    note = (form.get("note") or "").strip()
    errors: dict[str, str] = {}
    if resolved not in RESOLVED:
        errors["resolved"] = "请选择问题是否已解决。"
    if rating not in labels.RATINGS:
        errors["rating"] = "请选择满意程度。"
    if len(note) > NOTE_MAX:
        errors["note"] = f"意见请勿超过 {NOTE_MAX} 字（现有 {len(note)} 字）。"
    body: dict[str, Any] = {"rating": rating, "resolved": resolved == "true"}
    if note:
        body["note"] = note
    values = {"resolved": resolved, "rating": rating, "note": note}
    return Rating(body, errors, values)


# What a refusal of the rating says; nothing was written.
_STALE = "该诉求刚刚有了新进展，请查看最新情况后再评价。"
_NOT_NOW = "该诉求当前无需评价（可能已经评价过），请查看最新情况。"
_EXPIRED = "页面已过期，请刷新页面后重新提交。"


@router.post("/r/{token}", response_class=HTMLResponse)
async def rate(request: Request, token: str, rt: Rt) -> Response:
    """The rating form: the form token first, then the fields, then `act` with the version the
    page showed. Any refusal shows the page again saying why; nothing is written."""
    if (refused := _limit(request, rt)) is not None:
        return refused
    form = await read_form(request)
    return await run_in_threadpool(_rate, request, token, rt, form)


def _rate(request: Request, token: str, rt: Runtime, form: Form) -> Response:
    if not same(request.cookies.get(CSRF_COOKIE), form.get(CSRF_FIELD)):
        return _show(request, rt, token, status=403, extra={"failure": _EXPIRED})
    checked = check_rating(form)
    if checked.errors:
        return _show(
            request,
            rt,
            token,
            status=422,
            extra={"errors": checked.errors, "values": checked.values},
        )
    version = form.get("version") or ""
    try:
        with rt.transaction() as s:
            req = requests.by_receipt(session=s, token=token)
            if req is None:
                return _missing(request)
            names = directory.enterprise(session=s, uscc=req.enterprise_uscc)
            req = requests.act(
                rt=rt,
                session=s,
                principal=enterprise(req, names.name if names else ""),
                request_id=req.id,
                action="rate",
                body=checked.body,
                if_match=int(version) if version.isdigit() and len(version) < 12 else None,
            )
            outcome = "closed" if req.closed_at is not None else "reopened"
    except Unavailable:
        raise  # the 503 page: showing this one again would ask the pool again
    except StaleVersion:
        return _show(request, rt, token, status=409, extra={"failure": _STALE})
    except InvalidInput:
        return _show(
            request,
            rt,
            token,
            status=422,
            extra={"failure": "提交的内容有误，请检查后重试。", "values": checked.values},
        )
    except NotFound:
        return _missing(request)
    except HuyingError:
        return _show(request, rt, token, status=409, extra={"failure": _NOT_NOW})
    return RedirectResponse(f"/r/{token}?rated={outcome}", status_code=303, headers=HEADERS)


@router.get("/r/{token}/files/{file_id}")
def public_file(request: Request, token: str, file_id: str, rt: Rt) -> Response:
    """A public attachment of this receipt's request; 404 for any other."""
    if (refused := _limit(request, rt)) is not None:
        return refused
    if not file_id.isdigit() or len(file_id) > 18:
        return _missing(request)
    with rt.transaction() as s:
        req = requests.by_receipt(session=s, token=token)
        if req is None:
            return _missing(request)

        def this_request(*, session: Session, principal: Principal, request_id: int) -> object:
            if request_id != req.id:
                raise NotFound("another request's attachment")
            return req

        try:
            got = attachments.download(
                session=s,
                settings=rt.settings,
                principal=enterprise(req, ""),
                attachment_id=int(file_id),
                sees_request=this_request,
            )
        except NotFound:
            return _missing(request)
    a = got.attachment
    inline = a.content_type.startswith("image/") or a.content_type == "application/pdf"
    headers = {**HEADERS, "Content-Disposition": disposition(a.name, inline=inline)}
    if got.stored.path is not None:
        return FileResponse(got.stored.path, media_type=a.content_type, headers=headers)
    return Response(got.stored.data, media_type=a.content_type, headers=headers)


@router.api_route("/r/{rest:path}", methods=["GET", "POST"])
def elsewhere(request: Request, rest: str, rt: Rt) -> Response:
    """Any other path under /r/ (an empty token, one with a slash in it): the same 404."""
    if (refused := _limit(request, rt)) is not None:
        return refused
    return _missing(request)
