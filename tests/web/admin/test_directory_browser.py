"""The directory's admin pages in Chromium: a category created, edited and retired (its
confirmation accepted), a sub-department added with a leader, a CSV imported through its
preview and 确认导入."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huying.runtime import Runtime
from tests.web.browsing import needs_browser, shot, sign_in

pytestmark = needs_browser
NEW = "91310000MA1FL8TQ36"


def test_an_admin_keeps_the_directory_in_the_browser(
    desktop: Any, console: str, rt: Runtime, tmp_path: Path
) -> None:
    page = desktop.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # 停用 asks to confirm
    sign_in(page, console, "admin")

    page.goto(f"{console}/admin/categories")
    form = page.locator("section#new form")
    form.locator("input[name=code]").fill("LAND")
    form.locator("input[name=name]").fill("用地保障")
    form.locator("input[name=group]").fill("要素保障")
    form.locator("select[name=lead_department]").select_option("GXJ")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "已新增呼叫类别" in page.content()
    page.click("#c-LAND a:text('编辑')")
    page.fill("input[name=name]", "用地与厂房")
    page.click("button:text('保存修改')")
    page.wait_for_load_state()
    assert page.input_value("input[name=name]") == "用地与厂房"
    page.click("button:text('停用该类别')")
    page.wait_for_load_state()
    retired = page.locator("#c-LAND")
    assert "已停用" in retired.inner_text() and retired.get_attribute("class") == "retired"
    shot(page, "admin-category-retired")

    page.goto(f"{console}/admin/departments?parent=GXJ#new")
    form = page.locator("section#new form")
    form.locator("input[name=code]").fill("GXJ-KJ")
    form.locator("input[name=name]").fill("科技科")
    form.locator("input[name='leaders.0.name']").fill("周科长")
    form.locator("input[name='leaders.0.title']").fill("科长")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    row = page.locator("#d-GXJ-KJ")
    assert row.get_attribute("data-depth") == "2" and "周科长" in row.inner_text()
    shot(page, "admin-departments", full=True)

    csv = tmp_path / "企业.csv"
    csv.write_bytes(f"统一社会信用代码,企业名称\n{NEW},浏览器导入企业\n".encode("gb18030"))
    page.goto(f"{console}/admin/enterprises/import")
    page.set_input_files("input[name=file]", str(csv))
    page.click("button:text('上传并预览')")
    page.wait_for_load_state()
    assert "新增" in page.locator("tr[data-line='2']").inner_text()
    shot(page, "admin-import-preview")
    page.click("button:text('确认导入')")
    page.wait_for_load_state()
    assert "导入完成：新增 1 家" in page.content()
    page.goto(f"{console}/admin/enterprises?q=浏览器")
    assert NEW in page.content()
