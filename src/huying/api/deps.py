"""Dependencies: the runtime, the caller's credentials, If-Match."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from huying.auth.service import Principal, authenticate
from huying.errors import Forbidden, InvalidInput, NotAuthenticated
from huying.runtime import Runtime

_bearer = HTTPBearer(
    auto_error=False, description="an API key (hyk_…) or a staff session token (hys_…)"
)


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


class Credentials:
    """The bearer token of the call; resolved to a principal inside the unit of work."""

    def __init__(self, token: str) -> None:
        self.token = token

    def principal(
        self, session: Session, rt: Runtime, roles: Sequence[str] | None = None
    ) -> Principal:
        who = authenticate(session=session, token=self.token, now=rt.now())
        if roles is not None and who.role not in roles:
            raise Forbidden(f"role {who.role!r} may not do this (allowed: {', '.join(roles)})")
        return who


def credentials(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Credentials:
    if bearer is not None and bearer.scheme.lower() == "bearer" and bearer.credentials:
        return Credentials(bearer.credentials)
    cookie = request.cookies.get("huying_session")
    if cookie:
        return Credentials(cookie)
    raise NotAuthenticated("send Authorization: Bearer <API key or session token>")


def if_match(
    value: Annotated[
        str | None,
        Header(alias="If-Match", description='the version you last read, as given in ETag: "3"'),
    ] = None,
) -> int | None:
    if value is None:
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 12:
        raise InvalidInput('If-Match: expected the request\'s version as an entity tag, e.g. "3"')
    return int(text)


Rt = Annotated[Runtime, Depends(runtime)]
Auth = Annotated[Credentials, Depends(credentials)]
IfMatch = Annotated[int | None, Depends(if_match)]
