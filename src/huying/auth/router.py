from __future__ import annotations

from fastapi import APIRouter, Response, status

from huying.api.deps import Auth, Rt
from huying.auth import service
from huying.auth.schemas import LoginIn, LoginOut, MeOut

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login", response_model=LoginOut)
def login(body: LoginIn, rt: Rt) -> LoginOut:
    """Exchange a staff user's password for a session token (send it as a Bearer token)."""
    with rt.transaction() as s:
        token, user, expires = service.login(
            session=s,
            username=body.username,
            password=body.password,
            now=rt.now(),
            hours=rt.settings.auth.session_hours,
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
