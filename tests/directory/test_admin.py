"""The directory service's administration: retirement decided in one place (known
departments, routing, suggestions), changes checked as creations are, and every write of the
API or of `huying load` audited in its own transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from huying.audit.models import AuditEntry
from huying.directory import service
from huying.directory.loader import LoadError, load_text
from huying.directory.schemas import (
    CategoryPatch,
    ChainPatch,
    DepartmentPatch,
    EnterprisePatch,
    RoutingRuleIn,
    RoutingRulePatch,
)
from huying.errors import Conflict, InvalidFields, InvalidInput, NotFound, UnknownReference
from huying.runtime import Runtime
from tests.conftest import USCC_A, USCC_B, WORLD_YAML, World

ADMIN = "user:admin"


def audit_rows(rt: Runtime, **where: Any) -> list[AuditEntry]:
    with rt.transaction() as s:
        query = select(AuditEntry).order_by(AuditEntry.id)
        for name, value in where.items():
            query = query.where(getattr(AuditEntry, name) == value)
        rows = list(s.scalars(query))
        s.expunge_all()
        return rows


def retire(rt: Runtime, *codes: str) -> None:
    with rt.transaction() as s:
        for code in codes:
            service.update_department(
                session=s,
                code=code,
                changes=DepartmentPatch(active=False),
                actor=ADMIN,
                now=rt.now(),
            )


def route(rt: Runtime, category: str, grid_code: str | None, chain: str | None = None) -> Any:
    with rt.transaction() as s:
        cat = service.category(session=s, code=category)
        assert cat is not None
        return service.route(session=s, category=cat, grid_code=grid_code, chain_code=chain)


# --- retirement -----------------------------------------------------------------------


def test_a_retired_department_is_not_known(rt: Runtime, world: World) -> None:
    retire(rt, "RSJ")
    with rt.transaction() as s:
        assert service.known_departments(session=s, codes=["GXJ", "RSJ", "NOPE"]) == {"GXJ"}
        assert [d.code for d in service.departments(session=s, active_only=True)] == [
            "DIST",
            "GXJ",
            "STREET",
        ]
        dept = service.department(session=s, code="RSJ")  # still there, still read
        assert dept is not None and dept.active is False
        assert "RSJ" in service.stored_codes(session=s)["departments"]


def test_routing_falls_to_the_next_rule_then_the_lead_then_the_dispatcher(
    rt: Runtime, world: World
) -> None:
    with rt.transaction() as s:
        service.create_rule(
            session=s,
            data=RoutingRuleIn(category="HIRE", grid_prefix="4401", department="GXJ"),
            grid_code_pattern=rt.settings.directory.grid_code_pattern,
            actor=ADMIN,
            now=rt.now(),
        )
    grid = "440112012001001"
    assert route(rt, "HIRE", grid).lead_department == "STREET"  # the longer prefix
    retire(rt, "STREET")
    assert (route(rt, "HIRE", grid).lead_department, route(rt, "HIRE", grid).rule_id) == (
        "GXJ",
        2,
    )
    with rt.transaction() as s:
        service.update_rule(
            session=s,
            rule_id=2,
            changes=RoutingRulePatch(active=False),
            grid_code_pattern=rt.settings.directory.grid_code_pattern,
            actor=ADMIN,
            now=rt.now(),
        )
    fallen = route(rt, "HIRE", grid)
    assert (fallen.lead_department, fallen.co_departments, fallen.rule_id) == ("RSJ", (), None)
    retire(rt, "RSJ")
    assert route(rt, "HIRE", grid) is None  # the dispatcher decides


def test_a_retired_co_department_is_left_out_of_a_route(rt: Runtime, world: World) -> None:
    assert route(rt, "POWER", None).co_departments == ("STREET",)
    retire(rt, "STREET")
    assert route(rt, "POWER", None).co_departments == ()


def test_the_dispatcher_is_never_offered_a_retired_department(rt: Runtime, world: World) -> None:
    retire(rt, "STREET", "RSJ")
    with rt.transaction() as s:
        power = service.dispatch_suggestion(session=s, category_code="POWER")
        several = service.dispatch_suggestions(
            session=s, category_codes={1: "POWER", 2: "HIRE"}, returned_by={1: "GXJ"}
        )
    assert (power.lead, power.co) == ("GXJ", [])
    assert several == {1: ("", []), 2: ("", [])}
    assert service.suggestion(None, retired={"GXJ"}) == ("", [])


def test_a_department_with_active_children_is_not_retired(rt: Runtime, world: World) -> None:
    with pytest.raises(Conflict) as raised, rt.transaction() as s:
        service.update_department(
            session=s, code="DIST", changes=DepartmentPatch(active=False), actor=ADMIN, now=rt.now()
        )
    assert raised.value.code == "has_active_children"
    assert raised.value.extra["children"] == ["GXJ", "RSJ", "STREET"]
    assert audit_rows(rt, actor=ADMIN) == []


# --- changes checked as creations are ---------------------------------------------------


@pytest.mark.parametrize(
    ("write", "error"),
    [
        pytest.param(
            lambda s, now: service.update_department(
                session=s, code="NOPE", changes=DepartmentPatch(), actor=ADMIN, now=now
            ),
            NotFound,
            id="unknown-department",
        ),
        pytest.param(
            lambda s, now: service.update_rule(
                session=s,
                rule_id=99,
                changes=RoutingRulePatch(),
                grid_code_pattern=r"\d{15}",
                actor=ADMIN,
                now=now,
            ),
            NotFound,
            id="unknown-rule",
        ),
        pytest.param(
            lambda s, now: service.update_chain(
                session=s,
                code="display",
                changes=ChainPatch(liaison_department="NOPE"),
                actor=ADMIN,
                now=now,
            ),
            UnknownReference,
            id="chain-liaison",
        ),
        pytest.param(
            lambda s, now: service.update_rule(
                session=s,
                rule_id=1,
                changes=RoutingRulePatch.model_validate({"grid_prefix": None}),
                grid_code_pattern=r"\d{15}",
                actor=ADMIN,
                now=now,
            ),
            InvalidFields,
            id="rule-without-condition",
        ),
        pytest.param(
            lambda s, now: service.update_category(
                session=s,
                code="POWER",
                changes=CategoryPatch(urgency="whenever"),
                urgencies=("normal", "urgent"),
                actor=ADMIN,
                now=now,
            ),
            InvalidInput,
            id="category-urgency",
        ),
    ],
)
def test_a_bad_change_raises_and_audits_nothing(
    rt: Runtime, world: World, write: Any, error: type[Exception]
) -> None:
    with pytest.raises(error), rt.transaction() as s:
        write(s, rt.now())
    assert audit_rows(rt, actor=ADMIN) == []


def test_null_is_refused_where_a_field_has_no_empty_value() -> None:
    for model, field in (
        (DepartmentPatch, "name"),
        (CategoryPatch, "co_departments"),
        (EnterprisePatch, "contact_phone"),
        (RoutingRulePatch, "priority"),
        (ChainPatch, "active"),
    ):
        with pytest.raises(ValueError, match="may not be null"):
            model.model_validate({field: None})
    assert ChainPatch.model_validate({"liaison_department": None}).model_fields_set == {
        "liaison_department"
    }


# --- the audit entry lands with its write, or not at all -------------------------------


def test_an_audit_entry_is_rolled_back_with_a_failed_write(rt: Runtime, world: World) -> None:
    with pytest.raises(RuntimeError), rt.transaction() as s:
        service.update_enterprise(
            session=s,
            uscc=USCC_A,
            changes=EnterprisePatch(name="改名", active=False),
            grid_code_pattern=rt.settings.directory.grid_code_pattern,
            actor=ADMIN,
            now=rt.now(),
        )
        assert len(audit_rows_in(s)) == 1
        raise RuntimeError("a later step of the same write failed")
    assert audit_rows(rt, actor=ADMIN) == []
    with rt.transaction() as s:
        ent = service.get_enterprise(session=s, uscc=USCC_A)
        assert (ent.name, ent.active) == ("北京示例科技有限公司", True)


def audit_rows_in(s: Any) -> list[AuditEntry]:
    return list(s.scalars(select(AuditEntry).where(AuditEntry.actor == ADMIN)))


def test_a_retirement_is_audited_with_before_and_after(rt: Runtime, world: World) -> None:
    with rt.transaction() as s:
        service.update_enterprise(
            session=s,
            uscc=USCC_B,
            changes=EnterprisePatch(active=False),
            grid_code_pattern=rt.settings.directory.grid_code_pattern,
            actor=ADMIN,
            now=rt.now(),
        )
    [entry] = audit_rows(rt, actor=ADMIN)
    assert (entry.action, entry.target_type, entry.target_id) == (
        "enterprise.retire",
        "enterprise",
        USCC_B,
    )
    assert entry.at == rt.now()
    assert entry.before is not None and entry.after is not None
    assert {k for k in entry.before if entry.before[k] != entry.after[k]} == {"active"}


# --- huying load, audited as "cli" -------------------------------------------------------


def _load(rt: Runtime, text: str, now: datetime | None = None) -> None:
    with rt.transaction() as s:
        load_text(
            session=s,
            text=text,
            path="file.yaml",
            urgencies=rt.settings.urgencies,
            now=now or rt.now(),
        )


def test_a_load_audits_what_it_creates_and_changes(rt: Runtime, world: World) -> None:
    created = audit_rows(rt, actor="cli")
    assert [(e.action, e.target_id) for e in created[:4]] == [
        ("department.create", "DIST"),
        ("department.create", "GXJ"),
        ("department.create", "STREET"),
        ("department.create", "RSJ"),
    ]
    assert {e.action for e in created} == {
        "department.create",
        "chain.create",
        "category.create",
        "routing_rule.create",
        "enterprise.create",
    }
    assert len(created) == 4 + 1 + 4 + 1 + 2
    assert all(e.before is None and e.after is not None for e in created)
    _load(rt, WORLD_YAML)  # the same file again: nothing changes, nothing is audited
    assert len(audit_rows(rt, actor="cli")) == len(created)
    _load(rt, f"enterprises:\n  - {{uscc: {USCC_B}, name: 新名称}}\n")
    [changed] = audit_rows(rt, actor="cli")[len(created) :]
    assert (changed.action, changed.target_id) == ("enterprise.update", USCC_B)
    assert changed.before is not None and changed.after is not None
    assert (changed.before["name"], changed.after["name"]) == (
        "乐金显示光电科技(中国)有限公司",
        "新名称",
    )


def test_a_load_that_reactivates_a_category_is_audited_as_a_restore(
    rt: Runtime, world: World
) -> None:
    with rt.transaction() as s:
        service.update_category(
            session=s,
            code="OTHER",
            changes=CategoryPatch(active=False),
            urgencies=rt.settings.urgencies,
            actor=ADMIN,
            now=rt.now(),
        )
    _load(rt, "categories:\n  - {code: OTHER, name: 其他诉求, group: 其他}\n")
    assert [e.action for e in audit_rows(rt, target_id="OTHER")] == [
        "category.create",
        "category.retire",
        "category.restore",
    ]


def test_a_load_refused_halfway_writes_and_audits_nothing(rt: Runtime, world: World) -> None:
    with rt.transaction() as s:
        service.update_chain(
            session=s, code="display", changes=ChainPatch(active=False), actor=ADMIN, now=rt.now()
        )
    before = len(audit_rows(rt))
    text = (
        "departments:\n  - {code: NEW, name: 新部门}\n"
        "enterprises:\n  - {uscc: 91440101713472665D, name: x, chain: display}\n"
    )
    with pytest.raises(LoadError) as raised:
        _load(rt, text)
    assert raised.value.problems == [
        "line 4: chain: chain 'display' is retired: restore it first, or name another"
    ]
    assert len(audit_rows(rt)) == before
    with rt.transaction() as s:
        assert service.department(session=s, code="NEW") is None


# --- the enterprise search ----------------------------------------------------------------


def test_find_enterprises_pages_by_id(rt: Runtime, world: World) -> None:
    with rt.transaction() as s:
        first, cursor = service.find_enterprises(session=s, limit=1)
        assert [e.uscc for e in first] == [USCC_A] and cursor is not None
        rest, end = service.find_enterprises(
            session=s, after=service.enterprises_after(cursor), limit=1
        )
        assert ([e.uscc for e in rest], end) == ([USCC_B], None)
        retired_only, _ = service.find_enterprises(session=s, active=False)
        assert retired_only == []
        every, _ = service.find_enterprises(session=s, active=None, q="显示", chain="display")
        assert [e.uscc for e in every] == [USCC_B]
