"""用户与密钥 and 审计日志 in Chromium: an admin creates a user, changes its role, disables it,
revokes a key (confirming the dialogs), and finds each write on the audit page."""

from __future__ import annotations

from typing import Any

from huying.runtime import Runtime
from tests.web.browsing import needs_browser, shot, sign_in

pytestmark = needs_browser


def test_an_admin_manages_users_and_keys_and_reads_the_log(
    desktop: Any, console: str, rt: Runtime
) -> None:
    page = desktop.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # 停用 and 吊销 ask first
    sign_in(page, console, "admin")
    page.goto(f"{console}/admin/users")
    assert page.locator("h1").inner_text() == "用户与密钥"

    create = page.locator("#new-user form")
    create.locator("input[name=username]").fill("li.si")
    create.locator("input[name=display_name]").fill("李四")
    create.locator("input[name=password]").fill("Li-Si-2026!")
    create.locator("select[name=role]").select_option("department")
    create.locator("select[name=department]").select_option("RSJ")
    create.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "已新建用户 li.si" in page.locator(".alert.ok").inner_text()
    row = page.locator("tr[data-user='li.si']")
    assert "部门办事员" in row.inner_text() and "区人社局" in row.inner_text()

    row.locator("summary", has_text="修改角色/部门").click()
    row.locator("select[name=role]").select_option("supervisor")
    row.locator("select[name=department]").select_option("")
    row.locator(".user-edit button[type=submit]").click()
    page.wait_for_load_state()
    row = page.locator("tr[data-user='li.si']")
    assert "督办员" in row.inner_text()

    row.locator("button", has_text="停用").click()
    page.wait_for_load_state()
    row = page.locator("tr[data-user='li.si']")
    assert "已停用" in row.inner_text()

    key = page.locator("tr[data-key='4']")  # the world's integration key
    key.locator("button", has_text="吊销").click()
    page.wait_for_load_state()
    assert "已吊销" in page.locator("tr[data-key='4']").inner_text()
    shot(page, "admin-users", full=True)

    page.goto(f"{console}/admin/audit")
    page.locator("input[name=actor]").fill("admin")
    page.locator("button", has_text="筛选").click()
    page.wait_for_load_state()
    shown = [page.locator(f"tr[data-entry] >> nth={i} >> .action").inner_text() for i in range(4)]
    assert shown == ["API 密钥 · 吊销", "用户 · 停用", "用户 · 修改", "用户 · 新建"]
    assert page.locator("tr[data-entry] >> nth=2 >> tr.changed[data-field=role]").count() == 1
    shot(page, "admin-audit", full=True)
