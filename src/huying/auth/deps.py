"""Dependencies about who is calling: the caller's credentials, their role."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.orm import Session

from huying.auth.service import Principal, authenticate, confirmed
from huying.errors import Forbidden, NotAuthenticated
from huying.runtime import Runtime

bearer = HTTPBearer(
    auto_error=False, description="an API key (hyk_…) or a staff session token (hys_…)"
)
# The console's cookie holding a staff session token (`huying.web.session` sets it).
SESSION_COOKIE = "huying_session"
# Methods that change nothing: the only ones for which the JSON API accepts the console's
# session cookie. A page of another site can make a browser send that cookie with a POST (a
# form posts across sites), so a cookie alone never authorises an unsafe method here.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Where `huying.auth.gate` leaves the principal it resolved before the body was read.
ADMITTED = "huying.principal"
# ... and, when it admitted from this process's cache without asking the database, the
# generation of credentials it relied on and the roles to check again if that has moved.
UNCONFIRMED = "huying.principal.unconfirmed"


def token_of(request: Request) -> str:
    """The caller's token: `Authorization: Bearer <token>`, or the console's session cookie on
    a safe method only. NotAuthenticated (401) when there is none to use."""
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() == "bearer" and token:
        return token
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and request.method in SAFE_METHODS:
        return cookie
    if cookie:
        raise NotAuthenticated(
            f"the console's session cookie is not accepted for {request.method} under /api/; "
            "send Authorization: Bearer <API key or session token>"
        )
    raise NotAuthenticated("send Authorization: Bearer <API key or session token>")


def check_role(who: Principal, roles: Sequence[str] | None, doing: str = "do this") -> None:
    if roles is not None and who.role not in roles:
        raise Forbidden(f"role {who.role!r} may not {doing} (allowed: {', '.join(roles)})")


class Credentials:
    """The bearer token of the call, and the principal `huying.auth.gate` already resolved for
    it, if the route is gated; else it is resolved inside the handler's unit of work."""

    def __init__(
        self,
        token: str,
        admitted: Principal | None = None,
        unconfirmed: tuple[int, Any] | None = None,
    ) -> None:
        self.token = token
        self.admitted = admitted
        self.unconfirmed = unconfirmed

    def principal(
        self, session: Session, rt: Runtime, roles: Sequence[str] | None = None
    ) -> Principal:
        """The caller. A gated route declares its roles with `huying.auth.gate.allow` and
        passes none here; `roles` is for routes outside the gate. A caller the gate admitted
        from the cache is confirmed here, in the handler's transaction: authenticated again,
        and its roles checked again, if credentials were written since."""
        who = self.admitted
        if who is not None and self.unconfirmed is not None:
            generation, rule = self.unconfirmed
            if not confirmed(session=session, generation=generation):
                who = authenticate(session=session, token=self.token, now=rt.now())
                check_role(who, rule.names, rule.doing)
            self.admitted, self.unconfirmed = who, None
        if who is None:
            who = authenticate(session=session, token=self.token, now=rt.now())
        check_role(who, roles)
        return who


def credentials_of(request: Request) -> Credentials:
    """The call's credentials, with the principal the gate admitted if it did."""
    admitted = request.scope.get(ADMITTED)
    if isinstance(admitted, Principal):
        return Credentials(token_of(request), admitted, request.scope.get(UNCONFIRMED))
    return Credentials(token_of(request))


async def credentials(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
) -> Credentials:
    # `bearer` is here for the OpenAPI document's security scheme: token_of reads the header.
    # The API's routes call neither: the gate hands their handler `credentials_of(request)`
    # (`huying.auth.gate`).
    return credentials_of(request)


Auth = Annotated[Credentials, Depends(credentials)]
