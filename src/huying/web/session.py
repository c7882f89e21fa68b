"""Who is looking at the console: the staff session cookie, and CSRF tokens for every form.

- The session is `auth.service.login`'s token (`hys_…`) in an HttpOnly, SameSite=Lax cookie
  named `huying_session`. The JSON API accepts it for GET only (`auth.deps.token_of`): an
  unsafe method there needs `Authorization`, which no page of another site can send.
- Forms of a signed-in user carry a per-session token: HMAC-SHA256 keyed with the session
  token, which a page of another site can neither read nor compute. It needs no server
  secret, so every replica checks it alike.
- The login form, before any session exists, uses a double-submit token: a random value in
  its own cookie and in the form, which must match.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from fastapi import Request, Response
from sqlalchemy.orm import Session

from huying import roles
from huying.auth.deps import SESSION_COOKIE as SESSION_COOKIE
from huying.auth.service import SESSION_PREFIX, Principal, authenticate
from huying.errors import NotAuthenticated
from huying.requests import service as requests
from huying.runtime import Runtime

LOGIN_COOKIE = "huying_login_csrf"
CSRF_FIELD = "csrf"
CONSOLE_ROLES = roles.STAFF_ROLES


def csrf_for(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"huying console form v1", hashlib.sha256).hexdigest()


def same(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


@dataclass(frozen=True)
class Visitor:
    """The signed-in staff user of one page view."""

    principal: Principal
    token: str
    _memo: dict[str, frozenset[str] | None] = field(default_factory=dict, compare=False, repr=False)

    @property
    def csrf(self) -> str:
        return csrf_for(self.token)

    @property
    def role(self) -> str:
        return self.principal.role

    @property
    def department(self) -> str | None:
        """The department of department staff (whose own requests they act on as lead)."""
        return self.principal.department if self.principal.role == "department" else None

    def scope(self, session: Session) -> frozenset[str] | None:
        """The departments whose requests this user sees (None: all); read once per page
        view, however many lists and badges ask."""
        if "scope" not in self._memo:
            self._memo["scope"] = requests.scope_of(session=session, principal=self.principal)
        return self._memo["scope"]


def visitor(request: Request, session: Session, rt: Runtime) -> Visitor:
    """The session's user; NotAuthenticated when there is none or it expired."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token.startswith(SESSION_PREFIX):
        raise NotAuthenticated("not signed in")
    return Visitor(authenticate(session=session, token=token, now=rt.now()), token)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def start_session(
    request: Request, response: Response, token: str, *, expires: datetime, now: datetime
) -> None:
    """The cookie lasts as long as the session, counted from the server's clock (max-age)."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(0, int((expires - now).total_seconds())),
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/")


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


def login_token(request: Request) -> tuple[str, bool]:
    """The login form's double-submit token, and whether it must be set as a cookie."""
    current = request.cookies.get(LOGIN_COOKIE, "")
    if len(current) == 43:
        return current, False
    return secrets.token_urlsafe(32), True


def set_login_token(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


def local_path(target: str | None, default: str) -> str:
    """`target` if it is a path on this site (for ?next=), else `default`: no open redirect."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def home_of(role: str) -> str:
    return {"department": "/inbox", "dispatcher": "/queue"}.get(role, "/board")
