"""The console's pages and forms. Every page reads through the requests' presenters and
services, and every action goes through `huying.requests.service.act`, exactly as the API's;
the console adds only the HTML around them.

Lists poll a fragment endpoint (`/fragments/…`) with If-None-Match; the fragment answers 304
until its change marker moves, so a list is re-rendered only when something changed.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta, tzinfo
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from huying import roles
from huying.api.deps import Rt
from huying.attachments import service as attachments
from huying.attachments.schemas import AttachmentOnRequest
from huying.attachments.sniff import IMAGES
from huying.auth import service as auth
from huying.directory import service as directory
from huying.errors import (
    HuyingError,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    TooManyRequests,
    Unavailable,
    UnknownReference,
)
from huying.reports import service as reports
from huying.requests import service as requests
from huying.requests.models import Request as RequestRow
from huying.requests.presenters import present
from huying.requests.schemas import RequestOut, SubmitIn, TaskOut
from huying.runtime import Runtime
from huying.web import charts, labels, rates, views
from huying.web import session as web
from huying.web.diagram import layout
from huying.web.forms import (
    FILES_FIELD,
    INTAKE_FIELDS,
    VISIBILITY_FIELD,
    Form,
    body_from,
    by_priority,
    content_type,
    fields_of,
    form_with_files,
    intake_body,
    intake_errors,
    intake_values,
)
from huying.web.pages import (
    CSRF_MESSAGE,
    Build,
    Page,
    PostedForm,
    board_badge,
    chrome,
    csrf_refused,
    html,
    problem,
    serve,
    to_login,
)
from huying.web.states import (
    department_states,
    final_states,
    open_states,
    queue_states,
    state_labels,
)
from huying.web.templating import STATIC_DIR, render
from huying.workflow.draw import mermaid

__all__ = ["STATIC_DIR", "router", "unavailable_page"]

router = APIRouter(include_in_schema=False)
TREND_DAYS = 30


# --- plumbing -------------------------------------------------------------------


def unavailable_page(request: Request) -> HTMLResponse:
    """The 503 page while the database is away (`huying.api.problems` sends it to browsers).
    A page reloads itself; a form that was posted is not sent again."""
    context: dict[str, Any] = {"title": "暂时无法服务", "nav": ""}
    if request.method == "GET":
        context |= {
            "refresh_seconds": 10,
            "message": "数据库暂时无法连接。本页每 10 秒自动刷新，恢复后即可继续使用。",
        }
    else:
        context["message"] = "数据库暂时无法连接，本次操作没有保存。请稍后返回重试。"
    return HTMLResponse(render("error.html", context), 503)


def _departments_in(s: Session, scope: frozenset[str] | None) -> list[tuple[str, str]]:
    """(code, name) of the departments a user may filter their lists by: those of their
    subtree when they are bound to one, else all."""
    return [
        (d.code, d.name)
        for d in directory.departments(session=s)
        if scope is None or d.code in scope
    ]


def _etag(value: str) -> str:
    return f'"{value}"'


def _fresh(request: Request, etag: str) -> bool:
    return request.headers.get("if-none-match") == etag


def _minute(rt: Runtime) -> str:
    """Part of every list's marker: the time left shown changes as the minutes pass."""
    return rt.now().strftime("%Y%m%d%H%M")


def _views(
    s: Session, rt: Runtime, rows: Sequence[RequestRow], who: web.Visitor
) -> list[views.RequestView]:
    items = present(s, rows, tz=rt.calendar.tz)
    return views.request_views(
        items,
        now=rt.now(),
        calendar=rt.calendar,
        state_labels=state_labels(rt),
        department=who.department,
    )


def _task_choices(out: RequestOut, who: web.Visitor) -> dict[str, list[tuple[int, str]]]:
    """The tasks each task action's form offers: the viewer's own department's to sign for
    or reply to, every open one to the lead to cancel."""

    def label(t: TaskOut) -> str:
        return (
            f"{t.department.name or t.department.code}（{labels.TASK_KINDS.get(t.kind, t.kind)}）"
        )

    open_ = [t for t in out.tasks if t.status in ("pending", "signed")]
    mine = [t for t in open_ if t.department.code == who.department]
    return {
        "task_sign": [(t.id, label(t)) for t in mine if t.status == "pending"],
        "task_reply": [(t.id, label(t)) for t in mine],
        "cancel_task": [(t.id, label(t)) for t in open_],
    }


def _allowed(
    s: Session, rt: Runtime, rows: Sequence[RequestRow], who: web.Visitor
) -> dict[int, list[str]]:
    return requests.allowed_for(rt=rt, session=s, reqs=rows, actor=who.principal.actor)


# What a page says after a write that is not an action of the workflow (?done=…).
DONE = {"intake": "已登记来电诉求"}


def _flash(request: Request) -> str:
    done = request.query_params.get("done", "")
    number = request.query_params.get("n", "")[:40]
    if done in DONE:
        return DONE[done] + (f"：{number}" if number else "") + "。"
    if done not in labels.ACTIONS:
        return ""
    return f"已完成“{labels.action(done)}”" + (f"：{number}" if number else "") + "。"


# --- signing in and out ------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request, rt: Rt) -> Response:
    with rt.transaction() as s:
        try:
            who = web.visitor(request, s, rt)
        except NotAuthenticated:
            return RedirectResponse("/login", status_code=303)
    return RedirectResponse(web.home_of(who.role), status_code=303)


def _login_page(
    request: Request, *, username: str = "", error: str = "", status: int = 200
) -> Response:
    token, fresh = web.login_token(request)
    notice = "登录已过期，请重新登录。" if request.query_params.get("expired") else ""
    content = render(
        "login.html",
        {
            "csrf": token,
            "username": username,
            "error": error,
            "notice": notice,
            "next": web.local_path(request.query_params.get("next"), ""),
        },
    )
    response = html(content, status)
    if fresh:
        web.set_login_token(request, response, token)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, rt: Rt, form: PostedForm) -> Response:
    if not web.same(request.cookies.get(web.LOGIN_COOKIE), form.get(web.CSRF_FIELD)):
        return _login_page(request, error="页面已过期，请重新输入用户名和密码后登录。", status=403)
    username = (form.get("username") or "").strip()[:64]
    password = form.get("password") or ""
    try:
        token, user, expires = auth.login(
            rt=rt,
            username=username,
            password=password,
            address=request.client.host if request.client else None,
        )
    except NotAuthenticated:
        return _login_page(request, username=username, error="用户名或密码错误。", status=401)
    except TooManyRequests as exc:
        minutes = -(-exc.retry_after // 60)  # rounded up: never too early
        page = _login_page(
            request, username=username, error=f"尝试次数过多，请 {minutes} 分钟后再试。", status=429
        )
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    if user.role not in web.CONSOLE_ROLES:
        with rt.transaction() as s:
            auth.logout(session=s, token=token)
        return _login_page(request, username=username, error="该账号不能登录控制台。", status=403)
    target = web.local_path(form.get("next"), web.home_of(user.role))
    response = RedirectResponse(target, status_code=303)
    web.start_session(request, response, token, expires=expires, now=rt.now())
    return response


@router.post("/logout")
def logout(request: Request, rt: Rt, form: PostedForm) -> Response:
    token = request.cookies.get(web.SESSION_COOKIE, "")
    if token and not web.same(web.csrf_for(token), form.get(web.CSRF_FIELD)):
        return html(
            render("error.html", {"title": "无法退出", "message": CSRF_MESSAGE, "nav": ""}), 403
        )
    if token:
        with rt.transaction() as s:
            auth.logout(session=s, token=token)
    response = RedirectResponse("/login", status_code=303)
    web.end_session(response)
    return response


# --- the inbox ------------------------------------------------------------------


# The state filter's choice of every state, finished ones included.
ALL_STATES = "all"


def _inbox(request: Request, rt: Runtime, *, fragment: bool) -> Build:
    params = request.query_params
    chosen_state = params.get("state", "")
    category = params.get("category", "")[:64] or None
    department = params.get("department", "")[:64] or None

    def build(s: Session, who: web.Visitor) -> Page | Response:
        everything = open_states(rt)
        finished = final_states(rt)
        default = department_states(rt) if who.department else everything
        chosen = chosen_state if chosen_state in (*everything, *finished, ALL_STATES) else ""
        states: list[str] | None = None if chosen == ALL_STATES else [chosen] if chosen else default
        # Finished requests have no deadline left to order by: a list holding them is
        # newest first.
        newest = states is None or any(st in finished for st in states)
        scope = who.scope(s)
        where = requests.Filters(
            states=states,
            scope=scope,
            category=category,
            department=None if who.department else department,
        )
        etag = _etag(
            requests.marker(session=s, lists=[where], salt=f"{who.principal.id}|{_minute(rt)}")
        )
        if fragment and _fresh(request, etag):
            return Response(status_code=304, headers={"ETag": etag})
        if newest:
            rows, cursor = requests.page(
                session=s,
                principal=who.principal,
                filters=where,
                after=None,
                limit=requests.LIST_LIMIT,
            )
            more = cursor is not None
        else:
            rows, more = requests.by_deadline(session=s, filters=where)
        context: dict[str, Any] = {
            "items": _views(s, rt, rows, who),
            "more": more,
            "newest": newest,
            "total": requests.count(session=s, filters=where) if more else len(rows),
            # The menu's badge counts the default list: only that list's count updates it.
            "badge_key": "inbox" if who.department and not (chosen or category) else "",
            # The lead department's column, unless every request listed is the viewer's
            # own department's; a unit below it leading one is not a co-handling (协办).
            "show_lead": who.department is None or len(scope or ()) > 1,
            "subtree": scope or frozenset(),
            "nav": "inbox",
        }
        if not fragment:
            names = state_labels(rt)
            context.update(
                title="本部门待办" if who.department else "在办诉求",
                state_groups=[
                    (
                        "在办",
                        [
                            (st, names.get(st, st))
                            for st in everything
                            if not who.department or st not in queue_states(rt)
                        ],
                    ),
                    ("已结束", [(st, names.get(st, st)) for st in finished]),
                ],
                all_states=ALL_STATES,
                default_label="待办（" + "、".join(names.get(st, st) for st in default) + "）"
                if who.department
                else "全部在办",
                chosen_state=chosen,
                categories=[(c.code, c.name) for c in directory.categories(session=s)],
                chosen_category=category or "",
                departments=[] if who.department else _departments_in(s, scope),
                chosen_department=department or "",
                refresh_url="/fragments/inbox"
                + (f"?{request.url.query}" if request.url.query else ""),
                etag=etag,
            )
        template = "_inbox_list.html" if fragment else "inbox.html"
        return Page(template, context, headers={"ETag": etag, "Cache-Control": "no-cache"})

    return build


@router.get("/inbox", response_class=HTMLResponse)
def inbox(request: Request, rt: Rt) -> Response:
    return serve(request, rt, _inbox(request, rt, fragment=False))


@router.get("/fragments/inbox", response_class=HTMLResponse)
def inbox_fragment(request: Request, rt: Rt) -> Response:
    return serve(request, rt, _inbox(request, rt, fragment=True), fragment=True)


# --- the dispatchers' queue --------------------------------------------------------


NON_DEPARTMENT = roles.COORDINATORS


def _queue(request: Request, rt: Runtime, *, fragment: bool) -> Build:
    def build(s: Session, who: web.Visitor) -> Page | Response:
        # A bound dispatcher's queue: what its subtree leads, co-handles or has a task of,
        # e.g. a return under review; a request awaiting its first dispatch has no
        # department yet, so only dispatchers bound to none see it.
        where = requests.Filters(states=queue_states(rt), scope=who.scope(s))
        etag = _etag(
            requests.marker(session=s, lists=[where], salt=f"{who.principal.id}|{_minute(rt)}")
        )
        if fragment and _fresh(request, etag):
            return Response(status_code=304, headers={"ETag": etag})
        rows, more = requests.by_deadline(session=s, filters=where)
        returns = requests.returns_of(session=s, request_ids=[r.id for r in rows])
        departments = directory.departments(session=s)
        dept_names = {d.code: d.name for d in departments}
        items = _views(s, rt, rows, who)
        returned_by: dict[int, str] = {}
        for item in items:
            back = returns.get(item.r.id)
            if back is not None:
                data = back.data or {}
                by = str(data.get("returned_by") or data.get("returning_department") or "")
                returned_by[item.r.id] = by
                item.extra["returned_by"] = dept_names.get(by, by)
                item.extra["return_reason"] = back.note or ""
                item.extra["returned_at"] = views.when(back.at, rt.calendar.tz)
        suggested = directory.dispatch_suggestions(
            session=s,
            category_codes={item.r.id: item.r.category.code for item in items},
            returned_by=returned_by,
        )
        context: dict[str, Any] = {
            "items": items,
            "more": more,
            "allowed": _allowed(s, rt, rows, who),
            "departments": [(d.code, d.name) for d in departments if d.active],  # to choose
            "suggested": suggested,
            "forms": {
                a: fields_of(a)
                for a in (
                    "dispatch",
                    "reject",
                    "merge",
                    "accept_return",
                    "refuse_return",
                    "reassign",
                )
            },
            "csrf": who.csrf,
            "nav": "queue",
        }
        if not fragment:
            context.update(
                title="派单队列",
                refresh_url="/fragments/queue",
                etag=etag,
                flash=_flash(request),
                can_intake=who.role in INTAKE_ROLES,
            )
        template = "_queue_list.html" if fragment else "queue.html"
        return Page(template, context, headers={"ETag": etag, "Cache-Control": "no-cache"})

    return build


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request, rt: Rt) -> Response:
    return serve(request, rt, _queue(request, rt, fragment=False), roles=NON_DEPARTMENT)


@router.get("/fragments/queue", response_class=HTMLResponse)
def queue_fragment(request: Request, rt: Rt) -> Response:
    return serve(
        request, rt, _queue(request, rt, fragment=True), roles=NON_DEPARTMENT, fragment=True
    )


# --- the supervisor's board ----------------------------------------------------------


def _board(request: Request, rt: Runtime, *, fragment: bool) -> Build:
    def build(s: Session, who: web.Visitor) -> Page | Response:
        states, scope = open_states(rt), who.scope(s)
        watch = requests.Filters(states=states, watch=True, scope=scope)
        pending = requests.Filters(states=states, extension=True, scope=scope)
        suspended = requests.Filters(states=["suspended"], scope=scope)
        asked = requests.Filters(suspension=True, scope=scope)
        etag = _etag(
            requests.marker(
                session=s,
                lists=[watch, pending, suspended, asked],
                salt=f"{who.principal.id}|{_minute(rt)}",
            )
        )
        if fragment and _fresh(request, etag):
            return Response(status_code=304, headers={"ETag": etag})
        watched, more = requests.by_level(session=s, filters=watch)
        waiting, _ = requests.by_deadline(session=s, filters=pending)
        paused, _ = requests.by_deadline(session=s, filters=suspended)
        asking, _ = requests.by_deadline(session=s, filters=asked)
        levels: dict[int, list[views.RequestView]] = {}
        for item in _views(s, rt, watched, who):
            levels.setdefault(item.r.escalation_level or 0, []).append(item)
        reasons, tz = rt.settings.suspension.reasons, rt.calendar.tz
        context: dict[str, Any] = {
            "levels": sorted(levels.items(), reverse=True),
            "watched_count": board_badge(s, rt, scope),
            "more": more,
            "extensions": _views(s, rt, waiting, who),
            "suspended": [
                _with_suspension(item, item.r.suspension, reasons=reasons, tz=tz)
                for item in _views(s, rt, paused, who)
            ],
            "suspension_requests": [
                _with_suspension(item, item.r.pending_suspension, reasons=reasons, tz=tz)
                for item in _views(s, rt, asking, who)
            ],
            "allowed": _allowed(s, rt, [*watched, *waiting, *paused, *asking], who),
            "csrf": who.csrf,
            "nav": "board",
        }
        if not fragment:
            now = rt.now()
            month = reports.month_of(moment=now, tz=tz)
            # A bound supervisor's rates and trend: the requests its subtree leads, as the
            # reports count them for it (one row per lead department, so its rows are those).
            by_department = [
                row
                for row in rates.department_rates(s, rt=rt, start=month.start, end=month.end)
                if scope is None or row.code in scope
            ]
            today = now.astimezone(tz).date()
            days = [today - timedelta(days=n) for n in range(TREND_DAYS - 1, -1, -1)]
            counts = reports.requests_per_day(session=s, days=days, tz=tz, scope=scope)
            workdays = {d for d in days if rt.calendar.is_workday(d)}
            unknown = rt.calendar.unannounced(today, warn_from=rt.settings.calendar.warn_from_day)
            context.update(
                title="督办看板",
                month_text=f"{month.start.astimezone(tz):%Y年%m月}",
                rates=by_department,
                rates_formulas=rates.FORMULAS,
                rates_chart=charts.rates_chart(by_department),
                day_chart=charts.day_chart(days, counts, workdays=workdays),
                day_total=sum(counts),
                years_without_holidays=unknown,
                refresh_url="/fragments/board",
                etag=etag,
                flash=_flash(request),
            )
        template = "_board_lists.html" if fragment else "board.html"
        return Page(template, context, headers={"ETag": etag, "Cache-Control": "no-cache"})

    return build


def _with_suspension(
    item: views.RequestView,
    data: Mapping[str, Any] | None,
    *,
    reasons: Mapping[str, str],
    tz: tzinfo,
) -> views.RequestView:
    """The board's words for a suspension, running or asked for (`views.suspension_facts`)."""
    facts = views.suspension_facts(data, tz=tz, reasons=reasons)
    item.extra.update(
        suspension_reason=facts["reason"] or "（未记录）",
        suspension_length=facts["length"],
        suspension_since=facts["since"],
        suspension_resumes=facts["resumes"],
        suspension_asked=facts["asked"],
    )
    return item


@router.get("/board", response_class=HTMLResponse)
def board(request: Request, rt: Rt) -> Response:
    # the month's rates read in one snapshot, as `GET /api/v1/reports/rates` reads them
    return serve(
        request, rt, _board(request, rt, fragment=False), roles=NON_DEPARTMENT, snapshot=True
    )


@router.get("/fragments/board", response_class=HTMLResponse)
def board_fragment(request: Request, rt: Rt) -> Response:
    return serve(
        request, rt, _board(request, rt, fragment=True), roles=NON_DEPARTMENT, fragment=True
    )


# --- the workflow ------------------------------------------------------------------


@router.get("/workflows", response_class=HTMLResponse)
def workflows(request: Request, rt: Rt) -> Response:
    def build(s: Session, who: web.Visitor) -> Page:
        specs = [rt.workflows.workflows[k].spec for k in sorted(rt.workflows.workflows)]
        specs.sort(key=lambda sp: (sp.name, -sp.version))
        diagrams = [(layout(sp), mermaid(sp)) for sp in specs]
        return Page("workflows.html", {"title": "流程图", "diagrams": diagrams, "nav": "workflows"})

    return serve(request, rt, build)


# --- search ----------------------------------------------------------------------

SEARCH_PAGE = 50


@router.get("/search", response_class=HTMLResponse)
def search(request: Request, rt: Rt) -> Response:
    """The top bar's search: a request by its number, its enterprise's name or USCC, or words
    of its title, in every state, finished ones included, newest first, within what the
    user's lists show (`requests.page` applies the scope)."""
    params = request.query_params
    raw = params.get("q", "")
    cursor = params.get("after", "")[:100] or None

    def build(s: Session, who: web.Visitor) -> Page:
        context: dict[str, Any] = {
            "title": "搜索诉求",
            "search_q": " ".join(raw.split()),
            "items": [],
            "searched": False,
            "error": "",
            "total": 0,
            "next_url": "",
            "nav": "",
        }
        try:
            text = requests.search_text(raw)
            after = requests.after_id(cursor)
        except InvalidInput as exc:
            context["error"] = (
                "翻页链接无效，请重新搜索。"
                if exc.extra.get("field") == "cursor"
                else f"搜索内容过长：最多 {requests.SEARCH_MAX_CHARS} 个字符、"
                f"{requests.SEARCH_MAX_WORDS} 个词，请精简后再搜。"
            )
            return Page("search.html", context, 422)
        if text is None:
            return Page("search.html", context)
        where = requests.Filters(text=text, scope=who.scope(s))
        rows, next_cursor = requests.page(
            session=s, principal=who.principal, filters=where, after=after, limit=SEARCH_PAGE
        )
        context.update(
            searched=True,
            items=_views(s, rt, rows, who),
            total=requests.count(session=s, filters=where),
            next_url=f"/search?{urlencode({'q': text, 'after': next_cursor})}"
            if next_cursor
            else "",
        )
        return Page("search.html", context)

    return serve(request, rt, build)


# --- 来电登记: a request taken by phone ---------------------------------------------

INTAKE_ROLES = roles.DISPATCHERS
# Who may look enterprises up in the console: the staff among the API's enterprise readers.
LOOKUP_ROLES = tuple(r for r in roles.ENTERPRISE_READERS if r in web.CONSOLE_ROLES)
LOOKUP_LIMIT = 10
LOOKUP_MAX_CHARS = 100
# The form's Idempotency-Key, made when the form is shown: a form posted twice (a double
# click, a reload after the answer was lost) registers one request.
INTAKE_KEY = "idempotency"
_USCC_SHAPE = re.compile(r"^[0-9A-Za-z]{18}$")


def _intake_page(
    request: Request,
    rt: Runtime,
    *,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    candidates: Sequence[views.EnterprisePick] = (),
    key: str = "",
    status: int = 200,
) -> Build:
    def build(s: Session, who: web.Visitor) -> Page:
        shown = dict.fromkeys(INTAKE_FIELDS, "") | dict(values or {})
        picked = shown["enterprise_pick"] or shown["enterprise_uscc"]
        found = directory.enterprise(session=s, uscc=picked.upper()) if picked else None
        groups: dict[str, list[tuple[str, str]]] = {}
        for c in directory.categories(session=s, active_only=True):
            groups.setdefault(c.group or "其他", []).append((c.code, c.name))
        context: dict[str, Any] = {
            "title": "来电登记",
            "values": shown,
            "errors": dict(errors or {}),
            "candidates": candidates,
            "chosen": views.EnterprisePick.of(found) if found and found.active else None,
            "category_groups": list(groups.items()),
            "urgencies": [(u, labels.URGENCIES.get(u, u)) for u in rt.settings.urgencies],
            "sources": labels.INTAKE_SOURCES,
            "key_field": INTAKE_KEY,
            "key": key or secrets.token_urlsafe(16),
            "lookup_url": "/fragments/enterprises",
            "flash": _flash(request),
            "csrf": who.csrf,
            "nav": "intake",
        }
        return Page("intake.html", context, status, {"Cache-Control": "no-store"})

    return build


@router.get("/intake", response_class=HTMLResponse)
def intake_form(request: Request, rt: Rt) -> Response:
    return serve(request, rt, _intake_page(request, rt), roles=INTAKE_ROLES)


def _intake_enterprise(
    s: Session, values: Mapping[str, str]
) -> tuple[str, list[views.EnterprisePick], dict[str, str]]:
    """The USCC the intake names: the enterprise picked (from the look-up or the page's
    candidates), else the USCC typed, else the one enterprise whose name is the text typed.
    A name that several match, or that is not quite one's, gives the candidates to pick
    from; the submit checks the enterprise itself (registered, not retired)."""
    picked = values["enterprise_pick"] or values["enterprise_uscc"]
    if picked:
        return picked.upper(), [], {}
    typed = values["enterprise"]
    if not typed:
        return "", [], {"enterprise": "请填写企业名称或统一社会信用代码。"}
    if _USCC_SHAPE.match(typed):
        return typed.upper(), [], {}
    rows, _ = directory.find_enterprises(
        session=s, q=typed[:LOOKUP_MAX_CHARS], active=True, limit=LOOKUP_LIMIT
    )
    exact = [e for e in rows if e.name == typed]
    if len(exact) == 1:
        return exact[0].uscc, [], {}
    if not rows:
        return (
            "",
            [],
            {
                "enterprise": f"没有找到与“{typed}”相符的在册企业，请核对名称或填写统一社会信用代码。"
            },
        )
    return (
        "",
        [views.EnterprisePick.of(e) for e in rows],
        {"enterprise": "请在下面的企业中选择一家。"},
    )


@router.post("/intake", response_class=HTMLResponse)
def intake(request: Request, rt: Rt, form: PostedForm) -> Response:
    """Register a request taken by phone: the CSRF token first, then the form checked as a
    whole (each field's error shown at once), then `requests.service.submit` as the API's
    POST /requests calls it, with the form's own Idempotency-Key. Nothing is written unless
    the request is; it opens on the new request's page, or on this form again when the
    request went where the dispatcher's scope does not reach."""
    values = intake_values(form)
    key = (form.get(INTAKE_KEY) or "").strip()[:64]
    errors: dict[str, str] = {}
    candidates: list[views.EnterprisePick] = []
    try:
        with rt.transaction() as s:
            who = web.visitor(request, s, rt)
            if who.role not in INTAKE_ROLES:  # said in this session: SQLite has one connection
                page = problem(403, "您的账号无权访问此页面。")
                page.context.update(chrome(s, rt, who))
                return html(render(page.template, page.context), 403)
            if not web.same(who.csrf, form.get(web.CSRF_FIELD)):
                return csrf_refused(s, rt, who)
            uscc, candidates, errors = _intake_enterprise(s, values)
            try:
                body = SubmitIn.model_validate(intake_body(values, uscc=uscc))
            except ValidationError as exc:
                for name, message in intake_errors(exc).items():
                    errors.setdefault(name, message)
            # The submit refuses these too (naming the field), one at a time: checked here
            # first, so that they are said together with the form's other errors.
            if values["urgency"] and values["urgency"] not in rt.settings.urgencies:
                errors.setdefault("urgency", labels.INTAKE_REFUSALS["urgency"])
            grid = values["grid_code"]
            if grid and directory.grid_code_problem(
                grid, pattern=rt.settings.directory.grid_code_pattern
            ):
                errors.setdefault("grid_code", labels.INTAKE_REFUSALS["grid_code"])
            if not errors:
                req, _ = requests.submit(
                    rt=rt,
                    session=s,
                    principal=who.principal,
                    body=body,
                    idempotency_key=f"intake:{key}" if key else None,
                )
                number, target = req.number or "", f"/requests/{req.id}"
                try:
                    requests.visible(session=s, principal=who.principal, request_id=req.id)
                except NotFound:
                    target = "/intake"  # routed outside the dispatcher's subtree
    except NotAuthenticated:
        return to_login(request, expired=True)
    except Unavailable:
        raise  # the 503 page
    except HuyingError as exc:
        errors = intake_errors(exc)
    if errors:
        if "enterprise" in errors:  # pick again
            values = values | {"enterprise_uscc": "", "enterprise_pick": ""}
        again = _intake_page(
            request,
            rt,
            values=values,
            errors=errors,
            candidates=candidates,
            key=key,
            status=422,
        )
        return serve(request, rt, again, roles=INTAKE_ROLES)
    return RedirectResponse(f"{target}?done=intake&n={quote(number)}", status_code=303)


@router.get("/fragments/enterprises", response_class=HTMLResponse)
def enterprise_picks(request: Request, rt: Rt) -> Response:
    """The intake's look-up as the dispatcher types: up to LOOKUP_LIMIT registered
    enterprises, not retired, whose name or USCC matches (`directory.find_enterprises`)."""
    q = " ".join(request.query_params.get("q", "")[: LOOKUP_MAX_CHARS * 2].split())

    def build(s: Session, who: web.Visitor) -> Page:
        if len(q) > LOOKUP_MAX_CHARS:
            return Page("_enterprise_picks.html", {}, 422)
        rows, next_cursor = (
            directory.find_enterprises(session=s, q=q, active=True, limit=LOOKUP_LIMIT)
            if q
            else ([], None)
        )
        context = {
            "picks": [views.EnterprisePick.of(e) for e in rows],
            "more": next_cursor is not None,
            "q": q,
        }
        return Page("_enterprise_picks.html", context, headers={"Cache-Control": "no-store"})

    return serve(request, rt, build, roles=LOOKUP_ROLES, fragment=True)


# --- one request ------------------------------------------------------------------


def _request_id(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise NotFound(f"no request {text[:20]!r}", code="request_not_found")
    return int(text)


def _request_page(
    request: Request,
    rt: Runtime,
    raw_id: str,
    *,
    fragment: bool = False,
    failed: tuple[HuyingError, str, Form] | None = None,
) -> Build:
    def build(s: Session, who: web.Visitor) -> Page | Response:
        req = requests.visible(session=s, principal=who.principal, request_id=_request_id(raw_id))
        etag = _etag(f"{req.id}-{req.version}-{_minute(rt)}")
        if fragment and _fresh(request, etag):
            return Response(status_code=304, headers={"ETag": etag})
        tz = rt.calendar.tz
        out = present(s, [req], tz=tz, with_timeline=True)[0]
        names = state_labels(rt)
        item = views.request_view(
            out, now=rt.now(), calendar=rt.calendar, state_labels=names, department=who.department
        )
        timeline = out.timeline or []
        actors = requests.actor_names(session=s, actors=[t.actor for t in timeline])
        departments = directory.departments(session=s)
        dept_names = {d.code: d.name for d in departments}
        seen = request.query_params.get("seen", "")
        context: dict[str, Any] = {
            "item": item,
            "timeline": [
                views.timeline_row(
                    t, actors=actors, dept_names=dept_names, state_names=names, tz=tz
                )
                for t in timeline
            ],
            "changed": fragment and seen.isdigit() and int(seen) != req.version,
            "nav": "",
        }
        if fragment:
            return Page("_request_live.html", context, headers={"ETag": etag})
        allowed = by_priority(
            requests.allowed_actions(rt=rt, session=s, req=req, actor=who.principal.actor)
        )
        suggestion = directory.dispatch_suggestion(session=s, category_code=req.category_code)
        enterprise = directory.enterprise(session=s, uscc=req.enterprise_uscc)
        error, failed_action = "", ""
        values: dict[str, Any] = {}
        unsaved: list[tuple[str, str]] = []
        status = 200
        if failed is not None:
            exc, failed_action, form = failed
            problem = labels.explain(exc, action_name=failed_action, state_name=req.state)
            error, status = problem.message, problem.status
            values = {k: v for k, v in form.pairs if k not in (web.CSRF_FIELD, "version")}
            values["co_departments"] = form.getlist("co_departments")
            unsaved = [
                (labels.field(name), text)
                for name in ("content", "reason", "note")
                if (text := (form.get(name) or "").strip())
            ]
        spec = rt.workflows.spec(req.workflow_name, req.workflow_version)
        files = attachments.of_requests(session=s, request_ids=[req.id], public_only=False)
        context.update(
            attachments=_attachment_rows(files[req.id], timeline),
            # whom to call back: the enterprise's contact as registered today
            enterprise_contact=views.EnterprisePick.of(enterprise) if enterprise else None,
            upload={
                "max_mb": rt.settings.attachments.max_bytes / (1 << 20),
                "files_field": FILES_FIELD,
                "visibility_field": VISIBILITY_FIELD,
            },
            title=f"{out.number} {out.title}",
            allowed=allowed,
            forms={a: fields_of(a) for a in allowed},
            departments=[(d.code, d.name) for d in departments if d.active],  # to choose
            suggested_lead=suggestion.lead,
            suggested_co=suggestion.co,
            levels=[rung.level for rung in rt.settings.escalation],
            reasons=rt.settings.suspension.reasons,
            task_choices=_task_choices(out, who),
            task_deadlines={
                t.id: views.deadline_view(t.deadline, now=rt.now(), calendar=rt.calendar)
                for t in out.tasks
                if t.deadline is not None
            },
            suspension=views.suspension_lines(
                out, tz=rt.calendar.tz, reasons=rt.settings.suspension.reasons
            ),
            csrf=who.csrf,
            error=error,
            failed_action=failed_action,
            values=values,
            unsaved=unsaved,
            flash=_flash(request),
            diagram=layout(spec, current=req.state),
            refresh_url=f"/fragments/requests/{req.id}?{urlencode({'seen': req.version})}",
            etag=etag,
        )
        return Page("request.html", context, status, {"ETag": etag, "Cache-Control": "no-cache"})

    return build


@dataclass(frozen=True)
class AttachmentRow:
    """One attachment as the request's page lists it."""

    id: int
    name: str
    url: str
    image: bool
    size_text: str
    public: bool
    came_with: str  # the action it was attached to, in Chinese


def _attachment_rows(
    files: Sequence[AttachmentOnRequest], timeline: Sequence[Any]
) -> list[AttachmentRow]:
    actions = {t.seq: t.action for t in timeline}
    return [
        AttachmentRow(
            id=a.id,
            name=a.name,
            url=a.url,
            image=a.content_type in IMAGES,
            size_text=_size_text(a.size),
            public=a.visibility == "public",
            came_with=labels.action(actions[a.timeline_seq]) if a.timeline_seq in actions else "",
        )
        for a in files
    ]


def _size_text(size: int) -> str:
    if size >= 1 << 20:
        return f"{size / (1 << 20):.1f} MB"
    return f"{max(1, round(size / 1024))} KB"


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(request: Request, request_id: str, rt: Rt) -> Response:
    return serve(request, rt, _request_page(request, rt, request_id))


@router.get("/fragments/requests/{request_id}", response_class=HTMLResponse)
def request_fragment(request: Request, request_id: str, rt: Rt) -> Response:
    return serve(request, rt, _request_page(request, rt, request_id, fragment=True), fragment=True)


def _signed_in(request: Request, rt: Runtime) -> bool:
    with rt.transaction() as s:
        try:
            web.visitor(request, s, rt)
        except NotAuthenticated:
            return False
    return True


async def _action_form(request: Request, rt: Rt) -> AsyncIterator[Form]:
    """An action's posted form, with the files to attach when it has any (multipart). Files
    are read only for a signed-in user: anyone else's body is left unread (the action then
    sends them to sign in), so that no one can fill the disk without an account."""
    if content_type(request) == "multipart/form-data" and not await run_in_threadpool(
        _signed_in, request, rt
    ):
        yield Form(())
        return
    async with form_with_files(request) as form:
        yield form


ActionForm = Annotated[Form, Depends(_action_form)]


def _upload(s: Session, rt: Runtime, who: web.Visitor, form: Form) -> list[int]:
    """The form's files uploaded, as `POST /api/v1/attachments` does; their ids."""
    asked = form.get(VISIBILITY_FIELD)
    return [
        attachments.upload(
            session=s,
            settings=rt.settings,
            principal=who.principal,
            name=f.filename,
            source=f.file,
            visibility="public" if asked == "public" else None,
            now=rt.now(),
        ).id
        for f in form.files
    ]


@router.post("/requests/{request_id}/actions/{action}", response_class=HTMLResponse)
def take_action(
    request: Request, request_id: str, action: str, rt: Rt, form: ActionForm
) -> Response:
    """Take an action from a form: the CSRF token first, then `requests.service.act` with the
    version the page showed as If-Match, and the form's files (uploaded in the same unit of
    work) as its `attachment_ids`. A refusal re-renders the request's page saying why."""
    number = ""
    try:
        with rt.transaction() as s:
            who = web.visitor(request, s, rt)
            if not web.same(who.csrf, form.get(web.CSRF_FIELD)):
                return csrf_refused(s, rt, who)
            rid = _request_id(request_id)
            body = body_from(action, form)
            if form.files:
                requests.visible(session=s, principal=who.principal, request_id=rid)
                body["attachment_ids"] = _upload(s, rt, who, form)
            if action == "merge" and isinstance(body.get("target_id"), str):
                target_id = requests.find_id(session=s, text=body["target_id"])
                if target_id is None:
                    raise UnknownReference(
                        f"target_id: no request {body['target_id']!r}",
                        kind="request",
                        codes=[body["target_id"]],
                        field="target_id",
                    )
                body["target_id"] = target_id
            version = form.get("version") or ""
            req = requests.act(
                rt=rt,
                session=s,
                principal=who.principal,
                request_id=rid,
                action=action,
                body=body,
                if_match=int(version) if version.isdigit() and len(version) < 12 else None,
            )
            number = req.number or ""
    except NotAuthenticated:
        return to_login(request, expired=True)
    except NotFound as exc:
        if exc.code == "unknown_action":
            return serve(
                request, rt, _request_page(request, rt, request_id, failed=(exc, action, form))
            )
        return serve(request, rt, lambda s, who: problem(404, "找不到该诉求，或您无权查看。"))
    except Unavailable:
        raise  # straight to the 503 page: re-rendering the request page would ask the pool again
    except HuyingError as exc:
        return serve(
            request, rt, _request_page(request, rt, request_id, failed=(exc, action, form))
        )
    default = f"/requests/{request_id}"
    target = web.local_path(form.get("return_to"), default)
    joiner = "&" if "?" in target else "?"
    return RedirectResponse(
        f"{target}{joiner}done={quote(action)}&n={quote(number)}", status_code=303
    )
