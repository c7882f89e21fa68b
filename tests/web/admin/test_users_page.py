"""The admin page 用户与密钥: admins only, CSRF checked, each form through the same service as
the API (its rules, its audit entries), a refusal said in Chinese under its field with
nothing written, and a new key's token shown once."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from huying.audit.models import AuditEntry
from huying.auth.models import ApiKey, User
from huying.auth.service import Principal
from huying.runtime import Runtime
from tests.api.support import nothing_written
from tests.web.conftest import PASSWORD, csrf_in, login

PAGE = "/admin/users"


def signed_in(web: TestClient, username: str = "admin") -> str:
    """Sign in; the CSRF token of the users page."""
    assert login(web, username).status_code == 303
    page = web.get(PAGE)
    assert page.status_code == 200, page.text
    return csrf_in(page.text)


def post(web: TestClient, path: str, csrf: str, **fields: str) -> httpx.Response:
    response: httpx.Response = web.post(path, data={"csrf": csrf, **fields}, follow_redirects=False)
    return response


def user(rt: Runtime, username: str) -> User | None:
    with rt.transaction() as s:
        found = s.scalar(select(User).where(User.username == username))
        s.expunge_all()
        return found


def actions(rt: Runtime) -> list[tuple[str, str, str]]:
    with rt.transaction() as s:
        rows = s.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.target_id)
            .where(AuditEntry.target_type.in_(("user", "key")))
            .order_by(AuditEntry.id)
        ).all()
    return [(a, b, c) for a, b, c in rows]


def test_the_page_lists_users_and_keys(web: TestClient, staff: dict[str, Principal]) -> None:
    signed_in(web)
    text = web.get(PAGE).text
    assert 'aria-current="page">用户与密钥' in text
    for heading in ("用户名", "姓名", "角色", "部门", "状态", "名称", "前缀", "创建时间"):
        assert f"<th>{heading}</th>" in text
    assert "工信局王办事员" in text and "部门办事员" in text and "区工信局" in text
    assert 'data-key="1"' in text and "hyk_" in text and "吊销" in text
    assert "argon2" not in text


def test_a_non_admin_gets_403(web: TestClient, staff: dict[str, Principal]) -> None:
    assert login(web, "dispatcher").status_code == 303
    page = web.get(PAGE)
    assert page.status_code == 403 and "无权访问" in page.text
    assert "<form" not in page.text.split("<main>")[1].split("</main>")[0]
    assert web.get("/admin/audit").status_code == 403


def test_a_non_admin_cannot_post(web: TestClient, rt: Runtime, staff: dict[str, Principal]) -> None:
    assert login(web, "dispatcher").status_code == 303
    csrf = csrf_in(web.get("/queue").text)
    with nothing_written(rt):
        r = post(web, "/admin/users/gxj/active", csrf, active="false")
    assert r.status_code == 403


def test_a_form_without_the_csrf_token_is_refused(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    signed_in(web)
    with nothing_written(rt):
        for path, fields in (
            (PAGE, {"username": "x1", "password": PASSWORD, "role": "dispatcher"}),
            ("/admin/users/gxj/active", {"active": "false"}),
            ("/admin/keys/2/revoke", {}),
            ("/admin/keys", {"role": "integration"}),
        ):
            r = web.post(path, data={"csrf": "forged", **fields}, follow_redirects=False)
            assert r.status_code == 403 and "操作未执行" in r.text, path


def test_creating_a_user_goes_through_the_service_and_is_audited(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    csrf = signed_in(web)
    r = post(
        web,
        PAGE,
        csrf,
        username="li.si",
        display_name="李四",
        password="Li-Si-2026!",
        role="department",
        department="RSJ",
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/admin/users?done=user.create&target=li.si"
    made = user(rt, "li.si")
    assert made is not None and (made.role, made.department_code) == ("department", "RSJ")
    assert "已新建用户 li.si" in web.get(r.headers["location"]).text
    assert actions(rt) == [("user:admin", "user.create", "li.si")]


def test_a_bad_form_says_what_is_wrong_in_chinese_and_writes_nothing(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    csrf = signed_in(web)
    cases = [
        ({"username": "gxj", "password": PASSWORD, "role": "dispatcher"}, "username", "已被使用"),
        ({"username": "new.one", "password": "short", "role": "dispatcher"}, "password", "至少"),
        ({"username": "新 人", "password": PASSWORD, "role": "dispatcher"}, "username", "字母"),
        ({"username": "new.one", "password": PASSWORD, "role": "department"}, "department", "必须"),
        (
            {"username": "new.one", "password": PASSWORD, "role": "admin", "department": "GXJ"},
            "department",
            "留空",
        ),
        ({"username": "new.one", "password": PASSWORD, "role": "integration"}, "role", "API 密钥"),
        ({"username": "", "password": PASSWORD, "role": "dispatcher"}, "username", "请填写用户名"),
    ]
    for fields, field, words in cases:
        with nothing_written(rt):
            r = post(web, PAGE, csrf, display_name="新人", **fields)
        assert r.status_code == 422, (fields, r.status_code)
        said = re.search(
            rf'<em class="field-error" role="alert" data-field="{field}">([^<]+)</em>',
            r.text,
        )
        assert said and words in said.group(1), (fields, said)
        assert "本次没有保存任何内容" in r.text
        # what was typed is kept, never the password
        assert 'value="新人"' in r.text and PASSWORD not in r.text


def test_disable_enable_role_and_password_through_the_rows_forms(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    csrf = signed_in(web)
    assert post(web, "/admin/users/gxj/active", csrf, active="false").status_code == 303
    found = user(rt, "gxj")
    assert found is not None and not found.active
    assert login(TestClient(web.app), "gxj").status_code != 303  # cannot sign in any more
    assert post(web, "/admin/users/gxj/active", csrf, active="true").status_code == 303
    r = post(
        web, "/admin/users/gxj", csrf, role="supervisor", department="DIST", display_name="王督办"
    )
    assert r.status_code == 303
    found = user(rt, "gxj")
    assert found is not None
    assert (found.role, found.department_code, found.display_name) == (
        "supervisor",
        "DIST",
        "王督办",
    )
    r = post(web, "/admin/users/gxj/password", csrf, password="New-Password-1")
    assert r.status_code == 303
    assert login(TestClient(web.app), "gxj", "New-Password-1").status_code == 303
    assert [a for _, a, _ in actions(rt)] == [
        "user.disable",
        "user.enable",
        "user.update",
        "user.password",
    ]


def test_a_disabled_user_s_console_cookie_is_refused_at_once(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    other = TestClient(web.app)
    assert login(other, "dispatcher").status_code == 303
    assert other.get("/queue").status_code == 200
    csrf = signed_in(web)
    assert post(web, "/admin/users/dispatcher/active", csrf, active="false").status_code == 303
    r = other.get("/queue", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert other.get("/api/v1/requests").status_code == 401


def test_the_admin_cannot_disable_or_demote_themselves_on_the_page(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    csrf = signed_in(web)
    with nothing_written(rt):
        r = post(web, "/admin/users/admin/active", csrf, active="false")
        assert r.status_code == 422
        assert "不能停用自己的账号" in r.text
        r = post(web, "/admin/users/admin", csrf, role="dispatcher", display_name="老吴")
        assert r.status_code == 422
        assert re.search(r'data-field="role">不能取消自己的系统管理员角色', r.text)
        assert '<details class="user-edit" open>' in r.text


def test_a_new_key_s_token_is_shown_once(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    csrf = signed_in(web)
    r = post(web, "/admin/keys", csrf, name="网格系统", role="integration")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    token = re.search(r"<code class=\"token\" data-token>(hyk_[^<]+)</code>", r.text)
    assert token and "只显示这一次" in r.text
    assert (
        web.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token.group(1)}"}).json()[
            "name"
        ]
        == "网格系统"
    )
    assert token.group(1) not in web.get(PAGE).text
    with nothing_written(rt):
        r = post(web, "/admin/keys", csrf, role="department")
        assert r.status_code == 422 and "部门办事员必须选择所属部门" in r.text


def test_revoking_a_key_refuses_it_at_once(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    csrf = signed_in(web)
    with rt.transaction() as s:
        key = s.scalar(select(ApiKey).where(ApiKey.name == "integration"))
        assert key is not None
        key_id = key.id
    r = post(web, f"/admin/keys/{key_id}/revoke", csrf)
    assert r.status_code == 303
    with rt.transaction() as s:
        revoked = s.get(ApiKey, key_id)
        assert revoked is not None and revoked.revoked_at == rt.now()
    assert "已吊销" in web.get(PAGE).text
    assert actions(rt) == [("user:admin", "key.revoke", str(key_id))]
    with nothing_written(rt):
        r = post(web, "/admin/keys/999/revoke", csrf)
        assert r.status_code == 422 and "找不到该用户或密钥" in r.text
