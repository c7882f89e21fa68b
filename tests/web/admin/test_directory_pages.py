"""The directory's admin pages (呼叫清单, 部门与领导, 企业, 派单规则): lists, create and edit
forms, retire and restore, each written through the directory services with its audit entry;
refused for anyone but an admin, without the form's CSRF token, or with a bad field (the
field's error in Chinese, status 422, nothing written)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from huying.audit.models import AuditEntry
from huying.auth.service import Principal
from huying.directory.models import Category, Department, Enterprise, RoutingRule
from huying.runtime import Runtime
from tests.conftest import USCC_A
from tests.web.conftest import csrf_in, login

NEW_USCC = "91310000MA1FL8TQ36"


def admin(web: TestClient) -> str:
    """Sign in as the admin; the CSRF token of their forms."""
    login(web, "admin")
    return csrf_in(web.get("/admin/calendar").text)


def post(web: TestClient, path: str, csrf: str, **fields: Any) -> Any:
    return web.post(path, data={"csrf": csrf, **fields}, follow_redirects=False)


def audit(rt: Runtime, action: str | None = None) -> list[AuditEntry]:
    """The audit entries of the console's admin (the world's loading wrote some as "cli")."""
    with rt.transaction() as s:
        q = select(AuditEntry).where(AuditEntry.actor == "user:admin").order_by(AuditEntry.id)
        if action is not None:
            q = q.where(AuditEntry.action == action)
        rows = list(s.scalars(q))
        s.expunge_all()
        return rows


def count(rt: Runtime, model: Any) -> int:
    with rt.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def category(rt: Runtime, code: str) -> Category | None:
    with rt.transaction() as s:
        found = s.scalar(select(Category).where(Category.code == code))
        s.expunge_all()
        return found


# --- 呼叫清单 ----------------------------------------------------------------------


def test_the_call_list_is_grouped_and_shows_each_categorys_fields(
    web: TestClient, staff: dict[str, Principal]
) -> None:
    admin(web)
    page = web.get("/admin/categories")
    assert page.status_code == 200
    text = page.text
    assert "<h2>要素保障</h2>" in text and "<h2>其他</h2>" in text
    assert "用电保障" in text and "区工信局" in text and "萝岗街道" in text  # lead and co
    assert "紧急" in text  # OUTAGE's urgency


def test_an_admin_creates_edits_retires_and_restores_a_category(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    csrf = admin(web)
    made = post(
        web,
        "/admin/categories",
        csrf,
        code="LAND",
        name="用地保障",
        group="要素保障",
        urgency="normal",
        lead_department="GXJ",
        co_departments=["STREET", "RSJ"],
        **{"time_limits.reply": "3 working days"},
        description="厂房用地",
    )
    assert made.status_code == 303, made.text
    assert made.headers["location"] == "/admin/categories?done=created"
    stored = category(rt, "LAND")
    assert stored is not None and stored.lead_department_code == "GXJ"
    assert stored.co_department_codes == ["STREET", "RSJ"]
    assert stored.time_limits == {"reply": "3 working days"}
    assert [e.actor for e in audit(rt, "category.create")] == ["user:admin"]
    assert "已新增呼叫类别" in web.get(made.headers["location"]).text

    page = web.get("/admin/categories/LAND")
    assert page.status_code == 200 and 'value="用地保障"' in page.text
    edited = post(
        web,
        "/admin/categories/LAND",
        csrf,
        name="用地与厂房",
        group="要素保障",
        urgency="urgent",
        lead_department="RSJ",
    )
    assert edited.status_code == 303
    stored = category(rt, "LAND")
    assert stored is not None
    assert (stored.name, stored.urgency, stored.lead_department_code) == (
        "用地与厂房",
        "urgent",
        "RSJ",
    )
    assert stored.time_limits == {} and stored.co_department_codes == []
    assert len(audit(rt, "category.update")) == 1

    assert post(web, "/admin/categories/LAND/retire", csrf).status_code == 303
    stored = category(rt, "LAND")
    assert stored is not None and not stored.active
    listed = web.get("/admin/categories").text
    row = listed[listed.index('id="c-LAND"') :]
    row = row[: row.index("</tr>")]
    assert (
        'class="retired"'
        in listed[listed.index('id="c-LAND"') - 40 : listed.index('id="c-LAND"') + 40]
    )
    assert "已停用" in row and "/admin/categories/LAND/restore" in row
    assert len(audit(rt, "category.retire")) == 1

    assert post(web, "/admin/categories/LAND/restore", csrf).status_code == 303
    stored = category(rt, "LAND")
    assert stored is not None and stored.active
    assert len(audit(rt, "category.restore")) == 1


def test_retire_asks_to_confirm(web: TestClient, staff: dict[str, Principal]) -> None:
    admin(web)
    text = web.get("/admin/categories").text
    assert 'action="/admin/categories/POWER/retire" class="inline" data-confirm=' in text


def test_a_bad_category_form_says_the_field_in_chinese_and_writes_nothing(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    csrf = admin(web)
    before = count(rt, Category)
    refused = post(
        web,
        "/admin/categories",
        csrf,
        code="BAD",
        name="",
        urgency="normal",
        **{"time_limits.reply": "3 fortnights"},
    )
    assert refused.status_code == 422
    assert 'data-field="name">请填写名称' in refused.text
    assert 'data-field="time_limits">' in refused.text
    assert 'value="BAD"' in refused.text  # what was typed is kept
    taken = post(web, "/admin/categories", csrf, code="POWER", name="重复", urgency="normal")
    assert taken.status_code == 422 and 'data-field="code">' in taken.text
    assert "已被其他类别使用" in taken.text
    edit = post(web, "/admin/categories/POWER", csrf, name="", urgency="normal")
    assert edit.status_code == 422 and 'data-field="name">请填写名称' in edit.text
    assert count(rt, Category) == before
    stored = category(rt, "POWER")
    assert stored is not None and stored.name == "用电保障"
    assert audit(rt) == []


def test_category_pages_refuse_others_and_forms_without_the_token(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    login(web, "dispatcher")
    assert web.get("/admin/categories").status_code == 403
    assert web.get("/admin/categories/POWER").status_code == 403
    admin(web)
    assert post(web, "/admin/categories/POWER/retire", "forged").status_code == 403
    stored = category(rt, "POWER")
    assert stored is not None and stored.active and category(rt, "X1") is None
    assert audit(rt) == []


def test_a_non_admin_cannot_post_an_admin_form(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    login(web, "dispatcher")
    token = csrf_in(web.get("/queue").text)
    refused = post(web, "/admin/categories", token, code="X1", name="x", urgency="normal")
    assert refused.status_code == 403
    assert category(rt, "X1") is None


# --- 部门与领导 -------------------------------------------------------------------


def department(rt: Runtime, code: str) -> Department | None:
    with rt.transaction() as s:
        found = s.scalar(select(Department).where(Department.code == code))
        s.expunge_all()
        return found


def test_the_tree_nests_departments_and_shows_the_escalation_gaps(
    web: TestClient, staff: dict[str, Principal]
) -> None:
    admin(web)
    text = web.get("/admin/departments").text
    assert 'id="d-DIST" data-depth="0"' in text and 'id="d-GXJ" data-depth="1"' in text
    assert text.index('id="d-DIST"') < text.index('id="d-GXJ"')
    assert "陈局长" in text and "部门负责人" in text
    assert "第 1 级督办找不到任何领导" in text  # RSJ has no leader at all


def test_an_admin_adds_a_sub_department_with_a_leader_then_edits_and_retires_it(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    csrf = admin(web)
    made = post(
        web,
        "/admin/departments",
        csrf,
        code="GXJ-KJ",
        name="科技科",
        parent_code="GXJ",
        **{
            "leaders.0.name": "周科长",
            "leaders.0.title": "科长",
            "leaders.0.role": "department_head",
        },
    )
    assert made.status_code == 303, made.text
    stored = department(rt, "GXJ-KJ")
    assert stored is not None and stored.parent_code == "GXJ"
    assert stored.leaders == [
        {"name": "周科长", "title": "科长", "role": "department_head", "phone": ""}
    ]
    edited = post(
        web,
        "/admin/departments/GXJ-KJ",
        csrf,
        name="科技信息科",
        parent_code="GXJ",
        **{"leaders.0.name": "周科长", "leaders.0.remove": "1", "leaders.1.name": "吴副科长"},
    )
    assert edited.status_code == 303
    stored = department(rt, "GXJ-KJ")
    assert stored is not None and stored.name == "科技信息科"
    assert [x["name"] for x in stored.leaders] == ["吴副科长"]
    # GXJ has an active sub-department now: retiring it is refused, in Chinese.
    refused = post(web, "/admin/departments/GXJ/retire", csrf)
    assert refused.status_code == 422 and "还有未停用的下级部门（GXJ-KJ）" in refused.text
    assert post(web, "/admin/departments/GXJ-KJ/retire", csrf).status_code == 303
    stored = department(rt, "GXJ-KJ")
    assert stored is not None and not stored.active
    assert "/admin/departments/GXJ-KJ/restore" in web.get("/admin/departments").text
    assert post(web, "/admin/departments/GXJ-KJ/restore", csrf).status_code == 303
    actions = [e.action for e in audit(rt)]
    assert actions == [
        "department.create",
        "department.update",
        "department.retire",
        "department.restore",
    ]


def test_a_department_cannot_move_under_its_own_sub_department(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    csrf = admin(web)
    moved = post(web, "/admin/departments/DIST", csrf, name="区政府", parent_code="GXJ")
    assert moved.status_code == 422 and 'data-field="parent_code">' in moved.text
    blank = post(web, "/admin/departments", csrf, code="", name="")
    assert blank.status_code == 422 and 'data-field="name">请填写名称' in blank.text
    stored = department(rt, "DIST")
    assert stored is not None and stored.parent_code is None and audit(rt) == []


# --- 企业 ---------------------------------------------------------------------------


def test_enterprise_search_create_edit_retire_restore(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    csrf = admin(web)
    found = web.get("/admin/enterprises", params={"q": "乐金"}).text
    assert "乐金显示" in found and "北京示例" not in found
    assert "北京示例" in web.get("/admin/enterprises", params={"q": USCC_A[:10]}).text
    made = post(
        web,
        "/admin/enterprises",
        csrf,
        uscc=NEW_USCC,
        name="上海新企业",
        chain="display",
        grid_code="440112012001005",
    )
    assert made.status_code == 303, made.text
    edited = post(web, f"/admin/enterprises/{NEW_USCC}", csrf, name="上海新企业二号", chain="")
    assert edited.status_code == 303
    assert post(web, f"/admin/enterprises/{NEW_USCC}/retire", csrf).status_code == 303
    with rt.transaction() as s:
        e = s.scalar(select(Enterprise).where(Enterprise.uscc == NEW_USCC))
        assert e is not None and (e.name, e.chain_code, e.active) == ("上海新企业二号", None, False)
    assert NEW_USCC not in web.get("/admin/enterprises").text
    assert NEW_USCC in web.get("/admin/enterprises", params={"retired": "1"}).text
    assert post(web, f"/admin/enterprises/{NEW_USCC}/restore", csrf).status_code == 303
    assert [e.action for e in audit(rt)] == [
        "enterprise.create",
        "enterprise.update",
        "enterprise.retire",
        "enterprise.restore",
    ]


def test_a_bad_enterprise_form_writes_nothing(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    csrf = admin(web)
    bad = post(web, "/admin/enterprises", csrf, uscc="91110000600037341X", name="坏")
    assert bad.status_code == 422 and 'data-field="uscc">' in bad.text
    grid = post(web, f"/admin/enterprises/{USCC_A}", csrf, name="北京示例", grid_code="12")
    assert grid.status_code == 422 and "网格编码不符合本区网格编码规则" in grid.text
    assert count(rt, Enterprise) == 2 and audit(rt) == []


# --- 派单规则 ------------------------------------------------------------------------


def test_routing_rules_create_edit_retire(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    csrf = admin(web)
    page = web.get("/admin/routing-rules").text
    assert "最具体的一条" in page and "用工招聘" in page
    made = post(
        web, "/admin/routing-rules", csrf, category="POWER", chain="display", department="STREET"
    )
    assert made.status_code == 303, made.text
    with rt.transaction() as s:
        rule = s.scalar(select(RoutingRule).where(RoutingRule.category_code == "POWER"))
        assert rule is not None
        rule_id = rule.id
    edited = post(
        web,
        f"/admin/routing-rules/{rule_id}",
        csrf,
        category="POWER",
        chain="display",
        department="GXJ",
        priority="5",
    )
    assert edited.status_code == 303
    same = post(
        web, "/admin/routing-rules", csrf, category="POWER", chain="display", department="RSJ"
    )
    assert same.status_code == 422 and f"派单规则 #{rule_id}" in same.text
    none = post(web, "/admin/routing-rules", csrf, category="POWER", department="RSJ")
    assert none.status_code == 422
    assert post(web, f"/admin/routing-rules/{rule_id}/retire", csrf).status_code == 303
    with rt.transaction() as s:
        rule = s.get(RoutingRule, rule_id)
        assert rule is not None and (rule.department_code, rule.priority, rule.active) == (
            "GXJ",
            5,
            False,
        )
    assert [e.action for e in audit(rt)] == [
        "routing_rule.create",
        "routing_rule.update",
        "routing_rule.retire",
    ]
