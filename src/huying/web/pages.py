"""The console's page plumbing, shared by its everyday pages (`huying.web.routes`) and the
admin pages (`huying.web.admin`): who is visiting and whether their role may, the chrome
around every page (menu, badges, clock), the security headers, CSRF refusals."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from huying import roles
from huying.directory import service as directory
from huying.errors import NotAuthenticated, NotFound
from huying.requests import service as requests
from huying.runtime import Runtime
from huying.web import labels, views
from huying.web import session as web
from huying.web.forms import Form, read_form
from huying.web.states import department_states, open_states, queue_states
from huying.web.templating import render

PostedForm = Annotated[Form, Depends(read_form)]
POLL_MS = 15_000


@dataclass
class Page:
    template: str
    context: dict[str, Any]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Build = Callable[[Session, web.Visitor], "Page | Response"]


def to_login(request: Request, *, expired: bool = False) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    query = {"next": target, **({"expired": "1"} if expired else {})}
    return RedirectResponse(f"/login?{urlencode(query)}", status_code=303)


def problem(status: int, message: str, title: str = "") -> Page:
    titles = {403: "无权访问", 404: "找不到页面"}
    return Page(
        "error.html",
        {"title": title or titles.get(status, "出错了"), "message": message, "nav": ""},
        status,
    )


def board_badge(s: Session, rt: Runtime, scope: frozenset[str] | None) -> int:
    """What waits on the board: requests overdue or escalated, and decisions waiting
    (extensions and suspensions asked), each request once."""
    where = requests.Filters(states=open_states(rt), attention=True, scope=scope)
    return requests.count(session=s, filters=where)


def chrome(s: Session, rt: Runtime, who: web.Visitor) -> dict[str, Any]:
    """What every full page shows around its content: the menu with its count badges, each
    counting only what the user's lists show them (their subtree when they are bound)."""
    role = who.role
    scope = who.scope(s)
    items: list[tuple[str, str, str, int | None]] = []
    if role == "department":
        where = requests.Filters(states=department_states(rt), scope=scope)
        items.append(("inbox", "本部门待办", "/inbox", requests.count(session=s, filters=where)))
    if role in roles.DISPATCHERS:
        where = requests.Filters(states=queue_states(rt), scope=scope)
        items.append(("queue", "派单队列", "/queue", requests.count(session=s, filters=where)))
        items.append(("intake", "来电登记", "/intake", None))
    if role in roles.COORDINATORS:
        items.append(("board", "督办看板", "/board", board_badge(s, rt, scope)))
        items.append(("inbox", "在办诉求", "/inbox", None))
    items.append(("workflows", "流程图", "/workflows", None))
    if role in roles.ADMINS:
        items.append(("admin", "系统管理", "/admin", None))
    tz = rt.calendar.tz
    offset = rt.now().astimezone(tz).strftime("%z")
    dept_name = department_name(s, who.principal.department)
    return {
        "who": who,
        "role_label": labels.ROLES.get(role, role),
        "department_name": dept_name,
        # Said on the lists of someone bound to a subtree: they show only its part.
        "scope_text": f"{dept_name}及其下属单位" if scope is not None else "",
        "menu": items,
        "csrf": who.csrf,
        "now_text": views.when(rt.now(), tz),
        "tz_text": f"{tz.key}（UTC{offset[:3]}:{offset[3:]}）",
        "poll_ms": POLL_MS,
        "hours_text": "、".join(rt.settings.calendar.working_hours),
    }


def department_name(s: Session, code: str | None) -> str:
    if not code:
        return ""
    dept = directory.department(session=s, code=code)
    return dept.name if dept else code


def serve(
    request: Request,
    rt: Runtime,
    build: Build,
    *,
    roles: Sequence[str] = web.CONSOLE_ROLES,
    fragment: bool = False,
    snapshot: bool = False,
) -> Response:
    """A page built in one unit of work; with `snapshot`, one that only reads and sees one
    state throughout (`Runtime.snapshot`), for a page of figures that must agree, as the
    reports' route reads them."""
    with rt.snapshot() if snapshot else rt.transaction() as s:
        try:
            who = web.visitor(request, s, rt)
        except NotAuthenticated:
            if fragment:
                return Response(status_code=401)
            return to_login(request, expired=web.SESSION_COOKIE in request.cookies)
        if who.role not in roles:
            page: Page | Response = problem(403, "您的账号无权访问此页面。")
        else:
            try:
                page = build(s, who)
            except NotFound:
                page = problem(404, "找不到该诉求，或您无权查看。")
        if isinstance(page, Response):
            return page
        if fragment:
            if page.status != 200:
                return Response(status_code=page.status)
        else:
            page.context.update(chrome(s, rt, who))
    return html(render(page.template, page.context), page.status, page.headers)


# Every page: its own scripts, styles and forms only (no CDN can sneak in), never framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def html(content: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(content, status, {**SECURITY_HEADERS, **(headers or {})})


CSRF_MESSAGE = "页面已过期或表单来源无法确认，操作没有执行。请返回、刷新页面后重试。"


def csrf_refused(s: Session, rt: Runtime, who: web.Visitor) -> Response:
    page = problem(403, CSRF_MESSAGE, "操作未执行")
    page.context.update(chrome(s, rt, who))
    return html(render(page.template, page.context), 403)
