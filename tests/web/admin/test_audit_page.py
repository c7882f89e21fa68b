"""The admin page 审计日志: the log newest first, filtered by who, what and local dates,
paged by 更早的记录, each entry's changed fields marked."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from huying.audit import service as audit
from huying.auth.service import Principal
from huying.runtime import Runtime
from huying.web.admin.audit import PAGE_SIZE
from tests.conftest import T0
from tests.web.conftest import login


def record(rt: Runtime, n: int, *, hours: float = 0, **fields: str) -> None:
    with rt.transaction() as s:
        audit.record(
            s,
            actor=fields.get("actor", "user:admin"),
            action=fields.get("action", "user.update"),
            target_type=fields.get("target_type", "user"),
            target_id=fields.get("target_id", f"u{n}"),
            before={"role": "dispatcher", "display_name": "甲", "active": True},
            after={"role": "supervisor", "display_name": "甲", "active": True},
            now=T0 + timedelta(hours=hours),
        )


def test_entries_show_who_what_and_the_changed_fields(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    record(rt, 1)
    login(web, "admin")
    page = web.get("/admin/audit", params={"action": "user."})
    assert page.status_code == 200 and 'aria-current="page">审计日志' in page.text
    text = page.text
    assert "系统管理员老吴（admin）" in text and "用户 · 修改" in text and "用户 u1" in text
    assert "2026-11-18 周三 10:00" in text  # T0 in Asia/Shanghai
    changed = text.split('class="changed" data-field="role"')[1].split("</tr>")[0]
    assert "派单员" in changed and "督办员" in changed
    assert 'class="same" data-field="display_name"' in text


def test_filters_and_local_dates(web: TestClient, rt: Runtime, staff: dict[str, Principal]) -> None:
    record(rt, 1, hours=0)  # 2026-11-18 10:00 local
    record(rt, 2, hours=15, actor="cli", action="key.revoke", target_type="key")  # 11-19 01:00
    login(web, "admin")

    def shown(**query: str) -> set[str]:
        page = web.get("/admin/audit", params=query)
        assert page.status_code == 200, page.text
        return {t for t in ("用户 u1", "API 密钥 u2") if t in page.text}

    assert shown(target_type="user") == {"用户 u1"}
    assert shown(actor="cli") == {"API 密钥 u2"}
    assert shown(actor="admin", action="user.update") == {"用户 u1"}
    assert shown(action="key.") == {"API 密钥 u2"}
    assert shown(target_id="u2") == {"API 密钥 u2"}
    # 01:00 local on the 19th is still the 18th in UTC: local dates decide
    assert shown(**{"from": "2026-11-19", "target_type": "key"}) == {"API 密钥 u2"}
    assert shown(**{"to": "2026-11-18", "target_type": "key"}) == set()
    assert shown(**{"from": "2026-11-18", "to": "2026-11-18", "target_id": "u1"}) == {"用户 u1"}


def test_bad_dates_and_cursors_are_said_in_chinese(
    web: TestClient, staff: dict[str, Principal]
) -> None:
    login(web, "admin")
    page = web.get("/admin/audit", params={"from": "2026-13-01"})
    assert page.status_code == 422 and "起始日期应为 YYYY-MM-DD" in page.text
    page = web.get("/admin/audit", params={"from": "2026-11-20", "to": "2026-11-19"})
    assert page.status_code == 422 and "不早于起始日期" in page.text
    page = web.get("/admin/audit", params={"cursor": "nonsense"})
    assert page.status_code == 422 and "翻页位置无效" in page.text


def test_older_entries_are_a_page_further(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    for n in range(PAGE_SIZE + 2):
        record(rt, n, hours=n / 60, target_type="webhook")
    login(web, "admin")
    first = web.get("/admin/audit", params={"target_type": "webhook"}).text
    assert f"Webhook u{PAGE_SIZE + 1}<" in first and "Webhook u1<" not in first
    assert first.index(f"Webhook u{PAGE_SIZE + 1}<") < first.index(f"Webhook u{PAGE_SIZE}<")
    more = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    older = web.get(more.replace("&amp;", "&")).text
    assert (
        "Webhook u1<" in older and "Webhook u0<" in older and f"Webhook u{PAGE_SIZE}<" not in older
    )
    assert "更早的记录" not in older and "回到最新" in older
