"""The admin page 用户与密钥: staff users (create, disable/enable, role and department, reset a
password) and API keys (create, revoke). Every form goes through `huying.auth.service`, as
the API and the CLI do, so the same rules hold (the last admin stays, a department where the
role needs one) and each write is audited with the signed-in admin as its actor."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from huying import roles
from huying.api.deps import Rt
from huying.auth import service as auth
from huying.auth.schemas import KeyIn, KeyOut, UserIn, UserPatch
from huying.directory import service as directory
from huying.errors import HuyingError, NotFound
from huying.runtime import Runtime
from huying.web import labels, views
from huying.web import session as web
from huying.web.admin.common import FormErrors, actor_of, admin_page, admin_write, form_errors
from huying.web.pages import Page, PostedForm

router = APIRouter(include_in_schema=False)
PATH = "/admin/users"

# Each refusal of the service (its `rule`), as the form says it under the field it names.
RULES = {
    "username_format": "用户名只能由字母、数字、“.”和“_”组成，最长 64 个字符",
    "username_taken": "该用户名已被使用，请换一个",
    "password_short": "密码至少需要 8 个字符",
    "role_unknown": "请选择有效的角色",
    "role_for_systems": "对接系统和监控系统请使用 API 密钥，不能作为用户登录",
    "department_needed": "部门办事员必须选择所属部门",
    "department_not_bound": "该角色不隶属于任何部门，请将部门留空",
    "self_disable": "不能停用自己的账号，请由其他系统管理员操作",
    "self_demote": "不能取消自己的系统管理员角色，请由其他系统管理员操作",
    "last_admin": "这是最后一位启用中的系统管理员，不能停用或改为其他角色；请先将另一位用户设为系统管理员",
    "self_revoke": "不能吊销正在使用的密钥",
}

# What the page says after a write (`?done=`), naming the user or key (`?target=`).
DONE = {
    "user.create": "已新建用户 {}。",
    "user.update": "已保存用户 {} 的修改。",
    "user.disable": "已停用用户 {}，其登录会话已全部结束。",
    "user.enable": "已启用用户 {}。",
    "user.password": "已重置用户 {} 的密码，其登录会话已全部结束。",
    "key.revoke": "已吊销密钥 {}，使用它的调用将立即被拒绝。",
}


@dataclass(frozen=True)
class UserRow:
    username: str
    display_name: str
    role: str
    role_label: str
    department: str
    department_name: str
    active: bool
    me: bool


@dataclass(frozen=True)
class KeyRow:
    id: int
    name: str
    prefix: str
    role_label: str
    department_name: str
    created: str
    revoked: str


def _department_names(s: Session) -> dict[str, str]:
    return {d.code: d.name for d in directory.departments(session=s)}


def _page(
    s: Session,
    rt: Runtime,
    who: web.Visitor,
    *,
    errors: FormErrors | None = None,
    failed: str = "",
    posted: Mapping[str, str] | None = None,
    flash: str = "",
) -> Page:
    """The page; after a refused form, `failed` names that form (its fields show their
    errors and keep what was typed, but the password) and `errors` what is wrong."""
    tz = rt.calendar.tz
    names = _department_names(s)
    users = [
        UserRow(
            username=u.username,
            display_name=u.display_name,
            role=u.role,
            role_label=labels.ROLES.get(u.role, u.role),
            department=u.department_code or "",
            department_name=names.get(u.department_code or "", u.department_code or ""),
            active=u.active,
            me=who.principal.id == f"user:{u.username}",
        )
        for u in auth.users(session=s)
    ]
    keys = [
        KeyRow(
            id=k.id,
            name=k.name,
            prefix=k.prefix,
            role_label=labels.ROLES.get(k.role, k.role),
            department_name=names.get(k.department_code or "", k.department_code or ""),
            created=views.when(k.created_at, tz),
            revoked=views.when(k.revoked_at, tz),
        )
        for k in auth.keys(session=s)
    ]
    return Page(
        "admin/users.html",
        {
            "title": "用户与密钥",
            "section": "users",
            "users": users,
            "keys": keys,
            "user_roles": [(r, labels.ROLES[r]) for r in roles.STAFF_ROLES],
            "key_roles": [(r, labels.ROLES[r]) for r in roles.ROLES],
            "departments": sorted(names.items()),
            "errors": errors or {},
            "failed": failed,
            "posted": {k: v for k, v in (posted or {}).items() if k not in ("password", "csrf")},
            "flash": flash,
        },
    )


@router.get(PATH)
def users_page(request: Request, rt: Rt) -> Response:
    done, target = request.query_params.get("done", ""), request.query_params.get("target", "")
    flash = DONE[done].format(target[:64]) if done in DONE and target else ""
    return admin_page(request, rt, lambda s, who: _page(s, rt, who, flash=flash))


def _in_chinese(exc: HuyingError) -> FormErrors:
    """The service's refusal under the field it names, in the form's words."""
    message = RULES.get(str(exc.extra.get("rule", "")))
    if message is not None:
        return {str(exc.extra.get("field") or ""): message}
    if isinstance(exc, NotFound):
        return {"": "找不到该用户或密钥，请刷新页面后重试。"}
    return form_errors(exc)


def _post(
    request: Request,
    rt: Runtime,
    form: PostedForm,
    *,
    failed: str,
    write: Callable[[Session, web.Visitor], str],
) -> Response:
    """Post one of the page's forms through `admin_write`: refused, the page comes back with
    that form's errors in Chinese, and nothing was written."""
    said: FormErrors = {}

    def guarded(s: Session, who: web.Visitor) -> str:
        try:
            return write(s, who)
        except HuyingError as exc:
            said.update(_in_chinese(exc))
            raise

    def again(s: Session, who: web.Visitor, errors: FormErrors) -> Page:
        return _page(s, rt, who, errors=said or errors, failed=failed, posted=dict(form.pairs))

    return admin_write(request, rt, form, write=guarded, again=again)


def _done(action: str, target: str | int) -> str:
    return f"{PATH}?{urlencode({'done': action, 'target': str(target)})}"


def _text(form: PostedForm, name: str) -> str | None:
    """A text field, trimmed; None when left empty (a department not chosen)."""
    value = (form.get(name) or "").strip()
    return value or None


Username = Path(min_length=1, max_length=64)


@router.post(PATH)
def create_user(request: Request, rt: Rt, form: PostedForm) -> Response:
    def write(s: Session, who: web.Visitor) -> str:
        body = UserIn.model_validate(
            {
                "username": _text(form, "username") or "",
                "display_name": _text(form, "display_name") or "",
                "password": form.get("password") or "",
                "role": form.get("role") or "",
                "department": _text(form, "department"),
            }
        )
        auth.create_user(
            session=s,
            username=body.username,
            password=body.password,
            role=body.role,
            department=body.department,
            display_name=body.display_name,
            now=rt.now(),
            actor=actor_of(who),
        )
        return _done("user.create", body.username)

    return _post(request, rt, form, failed="create", write=write)


def _patch(
    request: Request,
    rt: Runtime,
    form: PostedForm,
    username: str,
    *,
    failed: str,
    action: Callable[[], tuple[str, dict[str, Any]]],
) -> Response:
    """A change to one user: `action` reads the form into (what the page says, changes)."""

    def write(s: Session, who: web.Visitor) -> str:
        done, changes = action()
        auth.update_user(
            session=s,
            username=username,
            changes=UserPatch.model_validate(changes),
            actor=actor_of(who),
            now=rt.now(),
        )
        return _done(done, username)

    return _post(request, rt, form, failed=f"{failed}:{username}", write=write)


@router.post(PATH + "/{username}")
def update_user(request: Request, rt: Rt, form: PostedForm, username: str = Username) -> Response:
    """修改角色/部门 (and the name shown)."""

    def changes() -> tuple[str, dict[str, Any]]:
        return "user.update", {
            "role": form.get("role") or "",
            "department": _text(form, "department"),
            "display_name": _text(form, "display_name") or "",
        }

    return _patch(request, rt, form, username, failed="edit", action=changes)


@router.post(PATH + "/{username}/active")
def set_active(request: Request, rt: Rt, form: PostedForm, username: str = Username) -> Response:
    """停用 / 启用."""

    def changes() -> tuple[str, dict[str, Any]]:
        active = form.get("active") or ""  # "true" or "false"; else refused as unreadable
        return ("user.enable" if active == "true" else "user.disable"), {"active": active}

    return _patch(request, rt, form, username, failed="active", action=changes)


@router.post(PATH + "/{username}/password")
def reset_password(
    request: Request, rt: Rt, form: PostedForm, username: str = Username
) -> Response:
    """重置密码: the user's sessions end, they log in with the new one."""

    def changes() -> tuple[str, dict[str, Any]]:
        return "user.password", {"password": form.get("password") or ""}

    return _patch(request, rt, form, username, failed="password", action=changes)


@router.post("/admin/keys")
def create_key(request: Request, rt: Rt, form: PostedForm) -> Response:
    """A new key; the next page shows its token, this once (never cached)."""
    created: list[tuple[KeyOut, str]] = []

    def write(s: Session, who: web.Visitor) -> str:
        body = KeyIn.model_validate(
            {
                "name": _text(form, "name"),
                "role": form.get("role") or "",
                "department": _text(form, "department"),
            }
        )
        key, token = auth.create_key(
            session=s,
            role=body.role,
            department=body.department,
            name=body.name,
            now=rt.now(),
            actor=actor_of(who),
        )
        created.append((auth.key_out(key), token))
        return PATH

    response = _post(request, rt, form, failed="key", write=write)
    if response.status_code != 303 or not created:
        return response
    key, token = created[0]

    def shown(s: Session, who: web.Visitor) -> Page:
        names = _department_names(s)
        return Page(
            "admin/users_key_created.html",
            {
                "title": "密钥已创建",
                "section": "users",
                "key": key,
                "token": token,
                "role_label": labels.ROLES.get(key.role, key.role),
                "department_name": names.get(key.department or "", key.department or ""),
            },
            headers={"Cache-Control": "no-store"},
        )

    return admin_page(request, rt, shown)


@router.post("/admin/keys/{key_id}/revoke")
def revoke_key(
    request: Request, rt: Rt, form: PostedForm, key_id: int = Path(ge=1, le=2**62)
) -> Response:
    def write(s: Session, who: web.Visitor) -> str:
        key = auth.revoke_key(session=s, key_id=key_id, actor=actor_of(who), now=rt.now())
        return _done("key.revoke", f"{key.name}（{key.prefix}…）")

    return _post(request, rt, form, failed=f"revoke:{key_id}", write=write)
