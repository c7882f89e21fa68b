"""The directory's administration API (DESIGN.md part two, "Administration"): PATCH for every
kind of entry, retirement with `active: false` and what it means for requests, the enterprise
search, and the audit entry each write leaves."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from huying.auth.models import ApiKey
from huying.runtime import Runtime
from tests.api.conftest import API, act, submit
from tests.api.support import assert_problem, nothing_written, uscc_check_character
from tests.conftest import USCC_A, USCC_B, World, submit_body

V1 = "/api/v1"
UNREGISTERED = "91440101713472665D"
OTHER_UNREGISTERED = "91440101MA5D00000" + uscc_check_character("91440101MA5D00000")


def actor_of(rt: Runtime, key_name: str) -> str:
    """The audit actor of one of the world's keys: "key:<id>"."""
    with rt.transaction() as s:
        return f"key:{s.scalar(select(ApiKey.id).where(ApiKey.name == key_name))}"


def audit_of(client: TestClient, world: World, target_type: str) -> list[dict[str, Any]]:
    """The audit entries of one kind of target written by anyone but the loader, oldest first."""
    r = client.get(
        f"{V1}/audit", params={"target_type": target_type, "limit": 500}, headers=world.h("admin")
    )
    assert r.status_code == 200, r.text
    return [e for e in reversed(r.json()["items"]) if e["actor"] != "cli"]


def listed(client: TestClient, world: World, path: str, **params: Any) -> list[dict[str, Any]]:
    r = client.get(f"{V1}/{path}", params=params, headers=world.h("admin"))
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()
    return found


def patch(client: TestClient, world: World, path: str, body: Any, who: str = "admin") -> Any:
    return client.patch(f"{V1}/{path}", json=body, headers=world.h(who))


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def snapshot(client: TestClient, world: World) -> dict[str, Any]:
    """The whole directory as the API shows it, retired entries included."""
    found = {
        path: listed(client, world, path, include_retired="true")
        for path in ("departments", "chains", "categories", "routing-rules")
    }
    found["enterprises"] = find(client, world, "admin", include_retired="true")["items"]
    return found


def rule_id(client: TestClient, world: World) -> int:
    """The id of world.yaml's one rule (HIRE in grid 440112012 → STREET)."""
    [rule] = listed(client, world, "routing-rules")
    return int(rule["id"])


# --- PATCH: a field changed, audited ------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "target_type", "target_id"),
    [
        pytest.param(
            "departments/RSJ", {"name": "区人力资源和社会保障局"}, "department", "RSJ", id="dept"
        ),
        pytest.param("chains/display", {"leader_uscc": USCC_B}, "chain", "display", id="chain"),
        pytest.param(
            "categories/OTHER",
            {"lead_department": "GXJ", "time_limits": {"reply": "3 working days"}},
            "category",
            "OTHER",
            id="category",
        ),
        pytest.param(
            f"enterprises/{USCC_A.lower()}",
            {"contact_phone": "020-12345678", "grid_code": "440112013001002"},
            "enterprise",
            USCC_A,
            id="enterprise",
        ),
    ],
)
def test_a_patch_changes_the_fields_given_and_is_audited(
    client: TestClient,
    world: World,
    rt: Runtime,
    path: str,
    body: dict[str, Any],
    target_type: str,
    target_id: str,
) -> None:
    before = ok(client.get(f"{V1}/enterprises/{USCC_A}", headers=world.h("admin")))
    changed = ok(patch(client, world, path, body))
    assert {k: changed[k] for k in body} == body
    assert changed["active"] is True
    [entry] = audit_of(client, world, target_type)
    assert entry["action"] == f"{target_type}.update"
    assert (entry["actor"], entry["target_id"]) == (actor_of(rt, "admin"), target_id)
    assert entry["after"] == changed
    assert {k: v for k, v in entry["before"].items() if k not in body} == {
        k: v for k, v in changed.items() if k not in body
    }
    assert all(entry["before"][k] != v for k, v in body.items())
    if target_type == "enterprise":
        assert entry["before"] == before  # what GET showed before the change


def test_a_rule_patch_changes_its_condition_and_departments(
    client: TestClient, world: World
) -> None:
    rid = rule_id(client, world)
    body = {"grid_prefix": "440112013", "department": "GXJ", "priority": 5}
    changed = ok(patch(client, world, f"routing-rules/{rid}", body))
    assert changed == {
        "id": rid,
        "category": "HIRE",
        "grid_prefix": "440112013",
        "chain": None,
        "department": "GXJ",
        "co_departments": ["RSJ"],
        "priority": 5,
        "active": True,
    }
    [entry] = audit_of(client, world, "routing_rule")
    assert (entry["action"], entry["target_id"]) == ("routing_rule.update", str(rid))
    # the rule now routes the other enterprise's grid (USCC_B: 440112013…), not USCC_A's
    moved = submit(client, world, "dispatcher", category="HIRE", enterprise_uscc=USCC_B)
    assert moved["lead_department"]["code"] == "GXJ"
    kept = submit(client, world, "dispatcher", category="HIRE")
    assert kept["lead_department"]["code"] == "RSJ"


def test_a_patch_that_changes_nothing_writes_no_audit_entry(
    client: TestClient, world: World, rt: Runtime
) -> None:
    with nothing_written(rt):
        ok(patch(client, world, "departments/GXJ", {"name": "区工信局"}))
        ok(patch(client, world, "categories/POWER", {}))
        ok(patch(client, world, f"enterprises/{USCC_A}", {"active": True}))
        ok(patch(client, world, f"routing-rules/{rule_id(client, world)}", {"priority": 100}))


# --- PATCH: refused -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "fragments"),
    [
        pytest.param("departments/GXJ", {"parent_code": "NOPE"}, ["parent_code", "NOPE"], id="p"),
        pytest.param("departments/GXJ", {"name": None}, ["name", "null"], id="null-name"),
        pytest.param("departments/GXJ", {"code": "GXJ2"}, ["code"], id="key-not-patchable"),
        pytest.param("departments/GXJ", {"leaders": [{"name": ""}]}, ["leaders"], id="leader"),
        pytest.param(
            "chains/display", {"liaison_department": "GHOST"}, ["GHOST"], id="chain-liaison"
        ),
        pytest.param("chains/display", {"leader_uscc": "91110000600037341M"}, ["uscc"], id="u"),
        pytest.param("categories/POWER", {"urgency": "whenever"}, ["urgency"], id="urgency"),
        pytest.param(
            "categories/POWER", {"time_limits": {"reply": "soon"}}, ["soon"], id="duration"
        ),
        pytest.param("categories/POWER", {"co_departments": ["SPOOK"]}, ["SPOOK"], id="co"),
        pytest.param(
            f"enterprises/{USCC_A}", {"grid_code": "44011201200100"}, ["grid_code"], id="grid"
        ),
        pytest.param(f"enterprises/{USCC_A}", {"chain": "nochain"}, ["nochain"], id="chain"),
        pytest.param(f"enterprises/{USCC_A}", {"uscc": USCC_B}, ["uscc"], id="uscc"),
        pytest.param(f"enterprises/{USCC_A}", {"active": "maybe"}, ["active"], id="active"),
    ],
)
def test_a_bad_patch_is_422_and_changes_nothing(
    client: TestClient, world: World, rt: Runtime, path: str, body: Any, fragments: list[str]
) -> None:
    before = snapshot(client, world)
    with nothing_written(rt):
        assert_problem(patch(client, world, path, body), 422, *fragments)
    assert snapshot(client, world) == before


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        pytest.param({"grid_prefix": None}, ["grid_prefix", "chain"], id="no-condition-left"),
        pytest.param({"priority": 10_001}, ["priority"], id="priority"),
        pytest.param({"priority": True}, ["priority"], id="bool-priority"),
        pytest.param({"grid_prefix": "4401120120010011"}, ["grid_prefix"], id="prefix-pattern"),
        pytest.param({"category": "C9"}, ["C9"], id="unknown-category"),
        pytest.param({"department": None}, ["department"], id="null-department"),
    ],
)
def test_a_bad_rule_patch_is_422(
    client: TestClient, world: World, rt: Runtime, body: Any, fragments: list[str]
) -> None:
    rid = rule_id(client, world)
    before = snapshot(client, world)
    with nothing_written(rt):
        assert_problem(patch(client, world, f"routing-rules/{rid}", body), 422, *fragments)
    assert snapshot(client, world) == before


def test_a_department_cannot_go_below_itself(client: TestClient, world: World, rt: Runtime) -> None:
    body = {"code": "GXJ1", "name": "一科", "parent_code": "GXJ"}
    assert client.post(f"{V1}/departments", json=body, headers=world.h("admin")).status_code == 201
    with nothing_written(rt):
        r = patch(client, world, "departments/GXJ", {"parent_code": "GXJ1"})
        assert_problem(r, 422, "GXJ1", "below")
        r = patch(client, world, "departments/DIST", {"parent_code": "GXJ1"})
        assert_problem(r, 422, "GXJ1", "below")
        assert_problem(patch(client, world, "departments/GXJ", {"parent_code": "GXJ"}), 422)
    moved = ok(patch(client, world, "departments/GXJ1", {"parent_code": "STREET"}))
    assert moved["parent_code"] == "STREET"
    top = ok(patch(client, world, "departments/GXJ1", {"parent_code": None}))
    assert top["parent_code"] is None


def test_two_rules_cannot_share_a_condition(client: TestClient, world: World, rt: Runtime) -> None:
    admin = world.h("admin")
    body = {"category": "HIRE", "grid_prefix": "440112013", "department": "GXJ"}
    other = client.post(f"{V1}/routing-rules", json=body, headers=admin)
    assert other.status_code == 201, other.text
    with nothing_written(rt):
        r = patch(
            client, world, f"routing-rules/{other.json()['id']}", {"grid_prefix": "440112012"}
        )
        assert_problem(r, 409, str(rule_id_of(client, world, "440112012")))
        again = {**body, "department": "RSJ"}
        assert_problem(client.post(f"{V1}/routing-rules", json=again, headers=admin), 409)


def rule_id_of(client: TestClient, world: World, prefix: str) -> int:
    return next(
        int(r["id"]) for r in listed(client, world, "routing-rules") if r["grid_prefix"] == prefix
    )


@pytest.mark.parametrize(
    "path",
    [
        "departments/NOPE",
        "chains/NOPE",
        "categories/NOPE",
        "routing-rules/999",
        f"enterprises/{UNREGISTERED}",
    ],
)
def test_patching_what_does_not_exist_is_404(
    client: TestClient, world: World, rt: Runtime, path: str
) -> None:
    with nothing_written(rt):
        assert_problem(patch(client, world, path, {"active": False}), 404)


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("dispatcher", "departments/GXJ"),
        ("supervisor", "chains/display"),
        ("integration", "categories/POWER"),
        ("gxj", "routing-rules/1"),
        ("dispatcher", f"enterprises/{USCC_A}"),
        ("gxj", f"enterprises/{USCC_A}"),
    ],
)
def test_only_an_admin_patches_the_directory(
    client: TestClient, world: World, rt: Runtime, who: str, path: str
) -> None:
    with nothing_written(rt):
        assert_problem(patch(client, world, path, {"active": False}, who=who), 403)


def test_an_integration_corrects_only_the_enterprises_it_registered(
    client: TestClient, world: World, rt: Runtime
) -> None:
    body = {"uscc": UNREGISTERED, "name": "广州示例有限公司"}
    r = client.post(f"{V1}/enterprises", json=body, headers=world.h("integration"))
    assert r.status_code == 201, r.text
    fixed = ok(
        patch(
            client,
            world,
            f"enterprises/{UNREGISTERED}",
            {"name": "广州示例股份有限公司"},
            "integration",
        )
    )
    assert fixed["name"] == "广州示例股份有限公司"
    with nothing_written(rt):
        loaded = patch(client, world, f"enterprises/{USCC_A}", {"address": "x"}, "integration")
        assert_problem(loaded, 403, "registered")
        retire = patch(
            client, world, f"enterprises/{UNREGISTERED}", {"active": False}, "integration"
        )
        assert_problem(retire, 403, "admin")
        unknown = patch(client, world, f"enterprises/{OTHER_UNREGISTERED}", {}, "integration")
        assert_problem(unknown, 404, OTHER_UNREGISTERED)
    actions = [(e["action"], e["actor"]) for e in audit_of(client, world, "enterprise")]
    key = actor_of(rt, "integration")
    assert actions == [("enterprise.create", key), ("enterprise.update", key)]


# --- retirement ------------------------------------------------------------------------


def test_retire_and_restore_are_audited_and_lists_hide_the_retired(
    client: TestClient, world: World, rt: Runtime
) -> None:
    retired = ok(patch(client, world, "chains/display", {"active": False}))
    assert retired["active"] is False
    assert listed(client, world, "chains") == []
    assert [c["code"] for c in listed(client, world, "chains", include_retired="true")] == [
        "display"
    ]
    ok(patch(client, world, "chains/display", {"active": True}))
    assert [c["active"] for c in listed(client, world, "chains")] == [True]
    entries = audit_of(client, world, "chain")
    assert [e["action"] for e in entries] == ["chain.retire", "chain.restore"]
    assert [(e["before"]["active"], e["after"]["active"]) for e in entries] == [
        (True, False),
        (False, True),
    ]
    assert {e["actor"] for e in entries} == {actor_of(rt, "admin")}


@pytest.mark.parametrize(
    ("path", "listing", "key"),
    [
        ("departments/RSJ", "departments", "code"),
        ("categories/HIRE", "categories", "code"),
        ("routing-rules/1", "routing-rules", "id"),
    ],
)
def test_a_retired_entry_is_listed_only_when_asked_for(
    client: TestClient, world: World, path: str, listing: str, key: str
) -> None:
    ident = path.split("/")[1]
    ok(patch(client, world, path, {"active": False}))
    assert ident not in [str(x[key]) for x in listed(client, world, listing)]
    every = listed(client, world, listing, include_retired="true")
    [found] = [x for x in every if str(x[key]) == ident]
    assert found["active"] is False


def test_a_retired_category_or_enterprise_is_refused_at_submit(
    client: TestClient, world: World, rt: Runtime
) -> None:
    ok(patch(client, world, "categories/POWER", {"active": False}))
    ok(patch(client, world, f"enterprises/{USCC_B}", {"active": False}))
    with nothing_written(rt):
        r = client.post(API, json=submit_body(), headers=world.h("integration"))
        assert_problem(r, 422, "POWER")
        r = client.post(
            API,
            json=submit_body(category="HIRE", enterprise_uscc=USCC_B),
            headers=world.h("integration"),
        )
        assert_problem(r, 422, USCC_B, "retired")
    got = ok(client.get(f"{V1}/enterprises/{USCC_B}", headers=world.h("dispatcher")))
    assert got["active"] is False  # still readable
    ok(patch(client, world, "categories/POWER", {"active": True}))
    assert submit(client, world)["category"]["code"] == "POWER"


def test_routing_passes_over_a_retired_rule(client: TestClient, world: World) -> None:
    ok(patch(client, world, f"routing-rules/{rule_id(client, world)}", {"active": False}))
    req = submit(client, world, "dispatcher", category="HIRE")
    assert req["lead_department"]["code"] == "RSJ"  # the category's own lead


def test_routing_passes_over_a_retired_department(client: TestClient, world: World) -> None:
    before = submit(client, world, "dispatcher")
    ok(patch(client, world, "departments/STREET", {"active": False}))
    hire = submit(client, world, "dispatcher", category="HIRE")  # the rule's STREET is retired
    assert (hire["lead_department"]["code"], hire["co_departments"]) == ("RSJ", [])
    power = submit(client, world, "dispatcher")
    assert (power["lead_department"]["code"], power["co_departments"]) == ("GXJ", [])
    # a request led or co-handled before keeps its departments
    kept = ok(client.get(f"{API}/{before['id']}", headers=world.h("dispatcher")))
    assert [c["code"] for c in kept["co_departments"]] == ["STREET"]


def test_a_category_whose_lead_is_retired_goes_to_the_dispatcher(
    client: TestClient, world: World
) -> None:
    ok(patch(client, world, "departments/RSJ", {"active": False}))
    req = submit(client, world, "dispatcher", category="HIRE", enterprise_uscc=USCC_B)
    assert (req["state"], req["lead_department"]) == ("awaiting_dispatch", None)


def test_a_retired_department_cannot_be_dispatched_to(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = submit(client, world, category="OTHER")["id"]
    ok(patch(client, world, "departments/RSJ", {"active": False}))
    with nothing_written(rt):
        r = client.post(
            f"{API}/{rid}/actions/dispatch",
            json={"lead_department": "RSJ"},
            headers=world.h("dispatcher"),
        )
        body = assert_problem(r, 422, "RSJ")
        assert (body["code"], body["codes"]) == ("unknown_reference", ["RSJ"])
        r = client.post(
            f"{API}/{rid}/actions/dispatch",
            json={"lead_department": "GXJ", "co_departments": ["RSJ"]},
            headers=world.h("dispatcher"),
        )
        assert_problem(r, 422, "RSJ")
    ok(patch(client, world, "departments/RSJ", {"active": True}))
    act(client, world, "dispatcher", rid, "dispatch", lead_department="RSJ")


def test_a_department_with_active_sub_departments_is_not_retired(
    client: TestClient, world: World, rt: Runtime
) -> None:
    with nothing_written(rt):
        body = assert_problem(patch(client, world, "departments/DIST", {"active": False}), 409)
    assert body["code"] == "has_active_children"
    assert body["children"] == ["GXJ", "RSJ", "STREET"]
    for code in ("GXJ", "RSJ", "STREET"):
        ok(patch(client, world, f"departments/{code}", {"active": False}))
    assert ok(patch(client, world, "departments/DIST", {"active": False}))["active"] is False
    # restoring a department under a retired parent would break the rule again
    with nothing_written(rt):
        r = patch(client, world, "departments/GXJ", {"active": True})
        assert_problem(r, 422, "parent_code", "DIST", "retired")
        r = patch(client, world, "departments/RSJ", {"parent_code": "STREET"})
        assert_problem(r, 422, "STREET", "retired")  # newly chosen: refused even when retired
    ok(patch(client, world, "departments/DIST", {"active": True}))
    ok(patch(client, world, "departments/GXJ", {"active": True}))


def test_a_retired_chain_stays_on_its_enterprises_but_is_not_named_anew(
    client: TestClient, world: World, rt: Runtime
) -> None:
    ok(patch(client, world, "chains/display", {"active": False}))
    changed = ok(patch(client, world, f"enterprises/{USCC_A}", {"address": "科学城"}))
    assert changed["chain"] == "display"
    admin = world.h("admin")
    with nothing_written(rt):
        new = {"uscc": UNREGISTERED, "name": "x", "chain": "display"}
        assert_problem(client.post(f"{V1}/enterprises", json=new, headers=admin), 422, "retired")
        rule = {"department": "GXJ", "chain": "display"}
        assert_problem(client.post(f"{V1}/routing-rules", json=rule, headers=admin), 422, "display")
    # its enterprises still submit, and are routed as before
    assert (
        submit(client, world, "dispatcher", category="HIRE")["lead_department"]["code"] == "STREET"
    )


def test_a_retired_department_is_not_named_by_a_new_entry(
    client: TestClient, world: World, rt: Runtime
) -> None:
    ok(patch(client, world, "departments/RSJ", {"active": False}))
    admin = world.h("admin")
    bodies = [
        ("departments", {"code": "RSJ1", "name": "x", "parent_code": "RSJ"}),
        ("chains", {"code": "bio", "name": "生物医药", "liaison_department": "RSJ"}),
        ("categories", {"code": "NEW", "name": "x", "co_departments": ["RSJ"]}),
        ("routing-rules", {"department": "RSJ", "grid_prefix": "4401"}),
    ]
    with nothing_written(rt):
        for path, body in bodies:
            r = client.post(f"{V1}/{path}", json=body, headers=admin)
            assert assert_problem(r, 422, "RSJ", "retired")["code"] == "unknown_reference"
    # HIRE names RSJ already: changing its other fields keeps it
    assert (
        ok(patch(client, world, "categories/HIRE", {"group": "用工"}))["lead_department"] == "RSJ"
    )


# --- POST: audited as its caller --------------------------------------------------------


def test_each_create_is_audited_as_its_caller(
    client: TestClient, world: World, rt: Runtime
) -> None:
    admin = world.h("admin")
    posts = [
        ("departments", {"code": "NEW", "name": "新部门", "parent_code": "DIST"}, "department"),
        ("chains", {"code": "bio", "name": "生物医药"}, "chain"),
        ("categories", {"code": "NEW", "name": "新类别"}, "category"),
        ("enterprises", {"uscc": UNREGISTERED, "name": "x", "chain": "bio"}, "enterprise"),
        ("routing-rules", {"department": "NEW", "chain": "bio"}, "routing_rule"),
    ]
    for path, body, target_type in posts:
        r = client.post(f"{V1}/{path}", json=body, headers=admin)
        assert r.status_code == 201, r.text
        [entry] = audit_of(client, world, target_type)
        assert entry["action"] == f"{target_type}.create"
        assert (entry["actor"], entry["before"], entry["after"]) == (
            actor_of(rt, "admin"),
            None,
            r.json(),
        )


# --- GET /enterprises ---------------------------------------------------------------


def find(client: TestClient, world: World, who: str = "dispatcher", **params: Any) -> Any:
    r = client.get(f"{V1}/enterprises", params=params, headers=world.h(who))
    assert r.status_code == 200, r.text
    return r.json()


def usccs(page: Any) -> list[str]:
    return [e["uscc"] for e in page["items"]]


def test_the_search_matches_a_uscc_start_or_words_of_the_name(
    client: TestClient, world: World
) -> None:
    assert usccs(find(client, world)) == [USCC_A, USCC_B]
    assert usccs(find(client, world, q="9144")) == [USCC_B]
    assert usccs(find(client, world, q=USCC_A.lower())) == [USCC_A]
    assert usccs(find(client, world, q="示例 科技")) == [USCC_A]  # every word, in any order
    assert usccs(find(client, world, q="显示 乐金")) == [USCC_B]
    assert usccs(find(client, world, q="(中国)")) == [USCC_B]
    assert usccs(find(client, world, q="示例 乐金")) == []
    assert usccs(find(client, world, q="   ")) == [USCC_A, USCC_B]


def test_the_search_takes_like_wildcards_literally(client: TestClient, world: World) -> None:
    body = {"uscc": UNREGISTERED, "name": "百分百_100%科技"}
    assert client.post(f"{V1}/enterprises", json=body, headers=world.h("admin")).status_code == 201
    assert usccs(find(client, world, q="%")) == [UNREGISTERED]
    assert usccs(find(client, world, q="_")) == [UNREGISTERED]
    assert usccs(find(client, world, q="9_")) == []


def test_the_search_filters_by_chain_grid_and_active(client: TestClient, world: World) -> None:
    body = {"uscc": UNREGISTERED, "name": "x", "grid_code": "440112012001009"}
    assert client.post(f"{V1}/enterprises", json=body, headers=world.h("admin")).status_code == 201
    assert usccs(find(client, world, chain="display")) == [USCC_A, USCC_B]
    assert usccs(find(client, world, grid_prefix="440112012")) == [USCC_A, UNREGISTERED]
    assert usccs(find(client, world, grid_prefix="440112012", chain="display")) == [USCC_A]
    ok(patch(client, world, f"enterprises/{USCC_A}", {"active": False}))
    assert usccs(find(client, world)) == [USCC_B, UNREGISTERED]
    assert usccs(find(client, world, active="false")) == [USCC_A]
    assert usccs(find(client, world, include_retired="true")) == [USCC_A, USCC_B, UNREGISTERED]
    assert find(client, world, active="false")["items"][0]["active"] is False


def test_the_search_pages_with_a_cursor(client: TestClient, world: World, rt: Runtime) -> None:
    body = {"uscc": UNREGISTERED, "name": "x"}
    assert client.post(f"{V1}/enterprises", json=body, headers=world.h("admin")).status_code == 201
    seen: list[str] = []
    page = find(client, world, limit=2)
    while True:
        seen += usccs(page)
        if page["next_cursor"] is None:
            break
        page = find(client, world, limit=2, cursor=page["next_cursor"])
    assert seen == [USCC_A, USCC_B, UNREGISTERED]
    assert find(client, world, limit=3)["next_cursor"] is None
    audit_cursor = client.get(f"{V1}/audit", params={"limit": 1}, headers=world.h("admin"))
    foreign = audit_cursor.json()["next_cursor"]
    for cursor in (foreign, "not-a-cursor"):
        r = client.get(f"{V1}/enterprises", params={"cursor": cursor}, headers=world.h("admin"))
        assert_problem(r, 422, "cursor")


@pytest.mark.parametrize("who", ["admin", "integration", "dispatcher", "supervisor"])
def test_the_enterprise_readers_search(client: TestClient, world: World, who: str) -> None:
    assert usccs(find(client, world, who, q="乐金")) == [USCC_B]


@pytest.mark.parametrize("who", ["gxj"])
def test_department_staff_do_not_search_enterprises(
    client: TestClient, world: World, who: str
) -> None:
    assert_problem(client.get(f"{V1}/enterprises", headers=world.h(who)), 403)
