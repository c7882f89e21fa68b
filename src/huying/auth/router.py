from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from huying.api.deps import Rt
from huying.auth import service
from huying.auth.deps import Auth
from huying.auth.gate import GatedRoute
from huying.auth.schemas import LoginIn, LoginOut, MeOut

router = APIRouter(prefix="/auth", tags=["auth"], route_class=GatedRoute)


@router.post("/login", response_model=LoginOut)
def login(body: LoginIn, request: Request, rt: Rt) -> LoginOut:
    """Exchange a staff user's password for a session token (send it as a Bearer token).

    After `auth.max_failures` failed logins for the username or from the caller's address
    within `auth.failure_window`, further tries get 429 with `Retry-After` (seconds), even
    with the right password. The address is the connection's peer; behind a reverse proxy,
    uvicorn takes it from X-Forwarded-For only when the proxy is trusted (FORWARDED_ALLOW_IPS).
    """
    token, user, expires = service.login(
        rt=rt,
        username=body.username,
        password=body.password,
        address=request.client.host if request.client else None,
    )
    return LoginOut(
        token=token,
        expires_at=expires,
        username=user.username,
        role=user.role,
        department=user.department_code,
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(rt: Rt, auth: Auth) -> Response:
    with rt.transaction() as s:
        auth.principal(s, rt)
        service.logout(session=s, token=auth.token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=MeOut)
def me(rt: Rt, auth: Auth) -> MeOut:
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        return MeOut(id=who.id, role=who.role, department=who.department, name=who.name)
