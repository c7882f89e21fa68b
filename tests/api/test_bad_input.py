"""Bad input of every kind: a 4xx `application/problem+json` whose `detail` names what is
wrong, and nothing written (every table has as many rows after as before)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from huying.runtime import Runtime
from tests.api.conftest import API, act, submit
from tests.api.support import assert_problem, nothing_written, uscc_check_character
from tests.conftest import USCC_A, World, submit_body

UNREGISTERED_USCC = "91310115" + "MA1K3Y2Q" + "X"
UNREGISTERED_USCC += uscc_check_character(UNREGISTERED_USCC)


def _without(field: str) -> dict[str, Any]:
    body = submit_body()
    del body[field]
    return body


# --- POST /requests --------------------------------------------------------------

BAD_SUBMIT_BODIES = [
    # wrong types
    pytest.param(submit_body(title=123), ["title", "string"], id="title-int"),
    pytest.param(submit_body(description=["a"]), ["description", "string"], id="description-list"),
    pytest.param(submit_body(category=7), ["category", "string"], id="category-int"),
    pytest.param(submit_body(enterprise_uscc=None), ["enterprise_uscc"], id="uscc-null"),
    pytest.param(submit_body(contact="13800000000"), ["contact"], id="contact-string"),
    pytest.param(submit_body(contact={"phone": 13800000000}), ["contact.phone"], id="phone-int"),
    # missing fields
    pytest.param(_without("enterprise_uscc"), ["enterprise_uscc", "required"], id="no-uscc"),
    pytest.param(_without("category"), ["category", "required"], id="no-category"),
    pytest.param(_without("title"), ["title", "required"], id="no-title"),
    pytest.param(_without("description"), ["description", "required"], id="no-description"),
    # unknown codes
    pytest.param(submit_body(category="NOPE"), ["category", "NOPE", "call list"], id="category"),
    pytest.param(
        submit_body(enterprise_uscc=UNREGISTERED_USCC),
        ["enterprise_uscc", UNREGISTERED_USCC, "registered"],
        id="enterprise",
    ),
    pytest.param(submit_body(urgency="asap"), ["urgency", "asap"], id="urgency"),
    pytest.param(submit_body(source="fax"), ["source"], id="source"),
    # invalid USCC
    pytest.param(
        submit_body(enterprise_uscc="91110000600037341M"),
        ["enterprise_uscc", "check character", "'L'"],
        id="uscc-check-character",
    ),
    pytest.param(
        submit_body(enterprise_uscc="9111000060003734IL"),
        ["enterprise_uscc", "not allowed"],
        id="uscc-letter-I",
    ),
    pytest.param(
        submit_body(enterprise_uscc="91110000600037341"), ["enterprise_uscc", "18"], id="uscc-17"
    ),
    # oversized and blank text
    pytest.param(submit_body(title="题" * 201), ["title", "200"], id="title-201"),
    pytest.param(submit_body(description="述" * 4001), ["description", "4000"], id="desc-4001"),
    pytest.param(submit_body(title="   "), ["title"], id="title-blank"),
    pytest.param(submit_body(location="地" * 301), ["location", "300"], id="location-301"),
    pytest.param(submit_body(grid_code="4401-12"), ["grid_code"], id="grid-pattern"),
    # well-formed, but not a code of directory.grid_code_pattern (15 digits): the same check
    # as an enterprise's grid code in the directory
    pytest.param(submit_body(grid_code="44011201"), ["grid_code", "pattern"], id="grid-configured"),
    # extra unknown fields, anywhere
    pytest.param(submit_body(priority="high"), ["priority", "not permitted"], id="extra-field"),
    pytest.param(
        submit_body(contact={"name": "王", "email": "a@b.c"}),
        ["contact.email", "not permitted"],
        id="extra-nested",
    ),
    # not an object
    pytest.param([submit_body()], ["dictionary"], id="list"),
    pytest.param("title", ["dictionary"], id="string"),
    pytest.param(42, ["dictionary"], id="number"),
]


@pytest.mark.parametrize(("body", "fragments"), BAD_SUBMIT_BODIES)
def test_bad_submit_is_422_and_writes_nothing(
    client: TestClient, world: World, rt: Runtime, body: Any, fragments: list[str]
) -> None:
    with nothing_written(rt):
        r = client.post(API, json=body, headers=world.h("integration"))
        assert_problem(r, 422, *fragments)


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        pytest.param(b'{"title": "x",', "application/json", id="truncated"),
        pytest.param(b"{'title': 'x'}", "application/json", id="single-quotes"),
        pytest.param(b"", "application/json", id="empty"),
        pytest.param(b"null", "application/json", id="null"),
        pytest.param(b"title=x", "application/x-www-form-urlencoded", id="form"),
    ],
)
def test_unparsable_body_is_422_and_writes_nothing(
    client: TestClient, world: World, rt: Runtime, content: bytes, content_type: str
) -> None:
    with nothing_written(rt):
        r = client.post(
            API,
            content=content,
            headers=world.h("integration", **{"Content-Type": content_type}),
        )
        assert_problem(r, 422)


def test_body_not_utf8_is_400_and_writes_nothing(
    client: TestClient, world: World, rt: Runtime
) -> None:
    with nothing_written(rt):
        r = client.post(
            API,
            content=b"\xff\xfe\x00",
            headers=world.h("integration", **{"Content-Type": "application/json"}),
        )
        assert_problem(r, 400, "body")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b'{"title": "x",', id="broken-json"),
        pytest.param(b"[1, 2]", id="array"),
    ],
)
def test_unparsable_body_detail_names_the_body(
    client: TestClient, world: World, content: bytes
) -> None:
    r = client.post(
        API, content=content, headers=world.h("integration", **{"Content-Type": "application/json"})
    )
    assert_problem(r, 422, "body")


def test_broken_json_detail_says_json(client: TestClient, world: World) -> None:
    r = client.post(
        API,
        content=b'{"title": "x",',
        headers=world.h("integration", **{"Content-Type": "application/json"}),
    )
    assert_problem(r, 422, "JSON")


def test_validation_problem_lists_every_error(client: TestClient, world: World) -> None:
    body = submit_body(title="", category="bad code!", contact={"phone": 1})
    r = client.post(API, json=body, headers=world.h("integration"))
    problem = assert_problem(r, 422, "title", "category", "contact.phone")
    locs = {tuple(e["loc"]) for e in problem["errors"]}
    assert {("body", "title"), ("body", "category"), ("body", "contact", "phone")} <= locs


def test_longest_title_and_description_are_accepted(client: TestClient, world: World) -> None:
    req = submit(client, world, title="题" * 200, description="述" * 4000)
    assert len(req["title"]) == 200
    assert len(req["description"]) == 4000


def test_lowercase_uscc_is_normalised(client: TestClient, world: World) -> None:
    req = submit(client, world, enterprise_uscc=USCC_A.lower())
    assert req["enterprise"]["uscc"] == USCC_A


# --- enterprises and the USCC ------------------------------------------------------


@pytest.mark.parametrize("first", ["A", "N", "Y", "1", "5"])
def test_uscc_starting_with_any_registration_authority_is_accepted(
    client: TestClient, world: World, first: str
) -> None:
    first17 = first + "1440101711615159"
    uscc = first17 + uscc_check_character(first17)
    r = client.post(
        "/api/v1/enterprises", json={"uscc": uscc, "name": "测试企业"}, headers=world.h("admin")
    )
    assert r.status_code == 201, r.text
    got = client.get(f"/api/v1/enterprises/{uscc}", headers=world.h("integration"))
    assert got.status_code == 200, got.text
    assert got.json()["uscc"] == uscc
    req = submit(client, world, enterprise_uscc=uscc)
    assert req["enterprise"] == {"uscc": uscc, "name": "测试企业"}


@pytest.mark.parametrize(
    ("uscc", "fragments"),
    [
        pytest.param("91110000600037341M", ["uscc", "check character", "'L'"], id="check"),
        pytest.param("91110000600037341", ["uscc", "18"], id="short"),
        pytest.param("91110000600037341LL", ["uscc", "18"], id="long"),
        pytest.param("9111000060003734OL", ["uscc", "not allowed"], id="letter-O"),
        pytest.param("", ["uscc"], id="empty"),
    ],
)
def test_invalid_uscc_is_refused(
    client: TestClient, world: World, rt: Runtime, uscc: str, fragments: list[str]
) -> None:
    with nothing_written(rt):
        r = client.post(
            "/api/v1/enterprises", json={"uscc": uscc, "name": "测试企业"}, headers=world.h("admin")
        )
        assert_problem(r, 422, *fragments)


def test_invalid_uscc_in_path_is_422(client: TestClient, world: World) -> None:
    r = client.get("/api/v1/enterprises/91110000600037341M", headers=world.h("admin"))
    assert_problem(r, 422, "check character")


def test_unknown_enterprise_is_404(client: TestClient, world: World) -> None:
    r = client.get(f"/api/v1/enterprises/{UNREGISTERED_USCC}", headers=world.h("admin"))
    assert_problem(r, 404, UNREGISTERED_USCC)


@pytest.mark.parametrize(
    ("path", "body", "fragments"),
    [
        pytest.param(
            "/api/v1/enterprises",
            {"uscc": UNREGISTERED_USCC, "name": "x", "chain": "nochain"},
            ["chain", "nochain"],
            id="enterprise-unknown-chain",
        ),
        pytest.param(
            "/api/v1/departments",
            {"code": "NEW", "name": "新部门", "parent_code": "NOPE"},
            ["parent_code", "NOPE"],
            id="department-unknown-parent",
        ),
        pytest.param(
            "/api/v1/departments",
            {"code": "has space", "name": "x"},
            ["code"],
            id="department-bad-code",
        ),
        pytest.param(
            "/api/v1/categories",
            {"code": "NEWCAT", "name": "x", "lead_department": "NOPE"},
            ["NOPE"],
            id="category-unknown-department",
        ),
        pytest.param(
            "/api/v1/categories",
            {"code": "NEWCAT", "name": "x", "urgency": "whenever"},
            ["urgency", "whenever"],
            id="category-unknown-urgency",
        ),
        pytest.param(
            "/api/v1/categories",
            {"code": "NEWCAT", "name": "x", "time_limits": {"reply": "soon"}},
            ["time_limits", "soon"],
            id="category-bad-duration",
        ),
        pytest.param(
            "/api/v1/categories",
            {"code": "NEWCAT", "name": "x", "time_limits": {"lunch": "1 hour"}},
            ["lunch"],
            id="category-unknown-deadline-kind",
        ),
        pytest.param(
            "/api/v1/routing-rules",
            {"department": "NOPE", "grid_prefix": "4401"},
            ["NOPE"],
            id="rule-unknown-department",
        ),
    ],
)
def test_bad_directory_input_is_422(
    client: TestClient,
    world: World,
    rt: Runtime,
    path: str,
    body: dict[str, Any],
    fragments: list[str],
) -> None:
    with nothing_written(rt):
        assert_problem(client.post(path, json=body, headers=world.h("admin")), 422, *fragments)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"department": "RSJ"}, id="no-condition"),
        pytest.param({"department": "RSJ", "category": "POWER"}, id="category-only"),
    ],
)
def test_routing_rule_without_grid_or_chain_is_422(
    client: TestClient, world: World, rt: Runtime, body: dict[str, Any]
) -> None:
    with nothing_written(rt):
        r = client.post("/api/v1/routing-rules", json=body, headers=world.h("admin"))
        assert_problem(r, 422, "grid_prefix", "chain")
    # what the stored catch-all rule would do: a POWER request routed away from GXJ
    assert submit(client, world)["lead_department"]["code"] == "GXJ"


def test_duplicate_code_is_409(client: TestClient, world: World, rt: Runtime) -> None:
    with nothing_written(rt):
        r = client.post(
            "/api/v1/departments", json={"code": "GXJ", "name": "重复"}, headers=world.h("admin")
        )
        assert_problem(r, 409, "GXJ", "exists")


# --- GET /requests ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "fragments"),
    [
        pytest.param("cursor=zzz", ["cursor"], id="cursor-garbage"),
        pytest.param("cursor=%25%25%25", ["cursor"], id="cursor-percent"),
        pytest.param(
            "cursor=" + base64.urlsafe_b64encode(b"x:12").decode().rstrip("="),
            ["cursor"],
            id="cursor-other-kind",
        ),
        pytest.param("from=2026-11-01T00:00:00", ["from", "offset"], id="naive-from"),
        pytest.param("to=2026-11-01T08:00:00", ["to", "offset"], id="naive-to"),
        pytest.param("from=yesterday", ["from"], id="from-garbage"),
        pytest.param("limit=0", ["limit"], id="limit-0"),
        pytest.param("limit=201", ["limit"], id="limit-201"),
        pytest.param("limit=ten", ["limit"], id="limit-text"),
        pytest.param("overdue=perhaps", ["overdue"], id="overdue"),
        pytest.param("grid=" + "4" * 33, ["grid"], id="grid-long"),
    ],
)
def test_bad_list_query_is_422(
    client: TestClient, world: World, query: str, fragments: list[str]
) -> None:
    assert_problem(client.get(f"{API}?{query}", headers=world.h("admin")), 422, *fragments)


def test_cursor_pages_through(client: TestClient, world: World) -> None:
    ids = [submit(client, world)["id"] for _ in range(3)]
    first = client.get(f"{API}?limit=2", headers=world.h("admin")).json()
    assert [i["id"] for i in first["items"]] == ids[:0:-1]
    rest = client.get(f"{API}?limit=2&cursor={first['next_cursor']}", headers=world.h("admin"))
    assert rest.status_code == 200, rest.text
    assert [i["id"] for i in rest.json()["items"]] == [ids[0]]
    assert rest.json()["next_cursor"] is None


def test_cursor_with_huge_id_is_422(client: TestClient, world: World) -> None:
    cursor = base64.urlsafe_b64encode(b"r:" + b"9" * 30).decode().rstrip("=")
    assert_problem(client.get(f"{API}?cursor={cursor}", headers=world.h("admin")), 422, "cursor")


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("from=0001-01-01T00:00:00%2B08:00", id="from-year-1"),
        pytest.param("to=9999-12-31T23:00:00-08:00", id="to-year-9999"),
    ],
)
def test_out_of_range_instant_is_422(client: TestClient, world: World, query: str) -> None:
    assert_problem(client.get(f"{API}?{query}", headers=world.h("admin")), 422)


@pytest.mark.parametrize("value", ["0.5", "1700000000", "-1"])
def test_a_number_is_not_a_datetime(client: TestClient, world: World, value: str) -> None:
    assert_problem(client.get(f"{API}?to={value}", headers=world.h("admin")), 422, "to")


def test_an_unknown_state_filter_is_422_naming_the_states(client: TestClient, world: World) -> None:
    r = client.get(f"{API}?state=dispatched&state=singed", headers=world.h("admin"))
    problem = assert_problem(r, 422, "singed")
    assert "in_progress" in problem["detail"]


# --- If-Match and actions ------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", '"v2"', "1.5", "-1", '"1234567890123"', ""])
def test_bad_if_match_is_422(
    client: TestClient, world: World, rt: Runtime, dispatched: Any, value: str
) -> None:
    with nothing_written(rt):
        r = client.post(
            f"{API}/{dispatched['id']}/actions/sign", headers=world.h("gxj", **{"If-Match": value})
        )
        assert_problem(r, 422, "If-Match")


def test_unknown_action_is_404(
    client: TestClient, world: World, rt: Runtime, dispatched: Any
) -> None:
    rid = dispatched["id"]
    with nothing_written(rt):
        r = client.post(f"{API}/{rid}/actions/frobnicate", headers=world.h("admin"))
        problem = assert_problem(r, 404, "frobnicate")
    allowed = client.get(f"{API}/{rid}/actions", headers=world.h("admin")).json()["actions"]
    assert problem["allowed"] == allowed


def test_action_name_outside_the_pattern_is_422(
    client: TestClient, world: World, dispatched: Any
) -> None:
    r = client.post(f"{API}/{dispatched['id']}/actions/Sign-Now", headers=world.h("gxj"))
    assert_problem(r, 422, "action")


def _version(client: TestClient, world: World, rid: int) -> int:
    return int(client.get(f"{API}/{rid}", headers=world.h("admin")).json()["version"])


@pytest.mark.parametrize(
    ("action", "body", "fragments"),
    [
        pytest.param(
            "reply", {"content": "已处理"}, ["resolved", "required"], id="reply-no-resolved"
        ),
        pytest.param("reply", {"resolved": True}, ["content", "required"], id="reply-no-content"),
        pytest.param(
            "reply", {"content": "x", "resolved": "maybe"}, ["resolved"], id="reply-resolved-text"
        ),
        pytest.param(
            "reply",
            {"content": "x", "resolved": True, "attachments": []},
            ["attachments", "not permitted"],
            id="reply-extra-field",
        ),
        pytest.param("reply", {"content": "答" * 4001, "resolved": True}, ["content"], id="long"),
        pytest.param(
            "request_suspension",
            {"reason_code": "other", "length": "2 working days"},
            ["reason", "required"],
            id="suspend-no-reason",
        ),
        pytest.param(
            "request_suspension",
            {"reason_code": "holiday", "reason": "x", "length": "2 working days"},
            ["reason_code", "holiday", "awaiting_materials"],
            id="suspend-unknown-reason-code",
        ),
        pytest.param(
            "request_suspension",
            {"reason_code": "other", "reason": "x", "length": "11 working days"},
            ["length", "at most 10 working days"],
            id="suspend-too-long",
        ),
        pytest.param(
            "request_suspension",
            {"reason_code": "other", "reason": "x", "length": "0 seconds"},
            ["length", "longer than zero"],
            id="suspend-zero-length",
        ),
        pytest.param(
            "request_extension",
            {"extend_by": "0 working days", "reason": "等材料"},
            ["extend_by", "longer than zero"],
            id="extension-zero",
        ),
        pytest.param(
            "request_extension",
            {"extend_by": "-1 working days", "reason": "等材料"},
            ["extend_by"],
            id="extension-negative",
        ),
        pytest.param(
            "request_extension",
            {"extend_by": "11 working days", "reason": "等材料"},
            ["extend_by", "at most 10 working days in total"],
            id="extension-over-the-cap",
        ),
        pytest.param(
            "request_extension",
            {"extend_by": "a while", "reason": "等材料"},
            ["extend_by", "a while"],
            id="extension-bad-duration",
        ),
        pytest.param(
            "request_suspension",
            {"reason_code": "other", "reason": "  ", "length": "2 working days"},
            ["reason"],
            id="suspend-blank-reason",
        ),
    ],
)
def test_bad_action_body_is_422_and_writes_nothing(
    client: TestClient,
    world: World,
    rt: Runtime,
    in_progress: Any,
    action: str,
    body: Any,
    fragments: list[str],
) -> None:
    rid = in_progress["id"]
    with nothing_written(rt):
        r = client.post(f"{API}/{rid}/actions/{action}", json=body, headers=world.h("gxj"))
        assert_problem(r, 422, *fragments)
    assert _version(client, world, rid) == in_progress["version"]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"[]", id="array"),
        pytest.param(b'"x"', id="string"),
        pytest.param(b"{", id="broken"),
    ],
)
def test_action_body_not_an_object_is_422(
    client: TestClient, world: World, rt: Runtime, in_progress: Any, content: bytes
) -> None:
    with nothing_written(rt):
        r = client.post(
            f"{API}/{in_progress['id']}/actions/reply",
            content=content,
            headers=world.h("gxj", **{"Content-Type": "application/json"}),
        )
        assert_problem(r, 422)


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        pytest.param({"rating": "meh"}, ["rating", "very_satisfied"], id="unknown-level"),
        pytest.param({"rating": 5}, ["rating"], id="number"),
        pytest.param({}, ["rating", "required"], id="missing"),
    ],
)
def test_bad_rating_is_422(
    client: TestClient,
    world: World,
    rt: Runtime,
    in_progress: Any,
    body: dict[str, Any],
    fragments: list[str],
) -> None:
    rid = in_progress["id"]
    replied = act(client, world, "gxj", rid, "reply", content="已处理", resolved=True)
    with nothing_written(rt):
        r = client.post(f"{API}/{rid}/actions/rate", json=body, headers=world.h("integration"))
        assert_problem(r, 422, *fragments)
    assert _version(client, world, rid) == replied["version"]


def test_dispatch_to_unknown_department_is_422(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = submit(client, world, category="OTHER")["id"]
    with nothing_written(rt):
        r = client.post(
            f"{API}/{rid}/actions/dispatch",
            json={"lead_department": "GXJ", "co_departments": ["NOPE", "ALSO_NOPE"]},
            headers=world.h("dispatcher"),
        )
        assert_problem(r, 422, "NOPE", "ALSO_NOPE")


@pytest.mark.parametrize(
    ("target", "fragments"),
    [
        pytest.param("self", ["itself"], id="itself"),
        pytest.param(999_999, ["target_id", "999999"], id="missing"),
        pytest.param(0, ["target_id"], id="zero"),
    ],
)
def test_bad_merge_target_is_422(
    client: TestClient, world: World, rt: Runtime, target: Any, fragments: list[str]
) -> None:
    rid = submit(client, world, category="OTHER")["id"]
    target_id = rid if target == "self" else target
    with nothing_written(rt):
        r = client.post(
            f"{API}/{rid}/actions/merge", json={"target_id": target_id}, headers=world.h("admin")
        )
        assert_problem(r, 422, *fragments)


@pytest.mark.parametrize("path_id", ["0", "-1", "abc", str(2**63)])
def test_bad_request_id_is_422(client: TestClient, world: World, path_id: str) -> None:
    assert_problem(client.get(f"{API}/{path_id}", headers=world.h("admin")), 422, "request_id")


# --- absurd durations --------------------------------------------------------------

ABSURD_DURATIONS = [
    pytest.param("999999999999 days", id="calendar-days"),
    pytest.param("P999999999D", id="iso-days"),
    pytest.param("999999999999 working hours", id="working-hours"),
    pytest.param("100000 working days", id="working-days"),
]


@pytest.mark.parametrize("duration", ABSURD_DURATIONS)
def test_absurd_category_time_limit_is_422(
    client: TestClient, world: World, rt: Runtime, duration: str
) -> None:
    with nothing_written(rt):
        r = client.post(
            "/api/v1/categories",
            json={"code": "ABSURD", "name": "x", "time_limits": {"reply": duration}},
            headers=world.h("admin"),
        )
        assert_problem(r, 422, "time_limits")


@pytest.mark.parametrize("duration", ABSURD_DURATIONS[:3])
def test_absurd_extension_is_422(
    client: TestClient, world: World, rt: Runtime, in_progress: Any, duration: str
) -> None:
    rid = in_progress["id"]
    with nothing_written(rt):
        r = client.post(
            f"{API}/{rid}/actions/request_extension",
            json={"extend_by": duration, "reason": "等材料"},
            headers=world.h("gxj"),
        )
        assert_problem(r, 422, "extend_by")


@pytest.mark.parametrize("duration", ["60 working days", "P365D", "400 working hours"])
def test_long_but_sane_time_limit_is_accepted(
    client: TestClient, world: World, duration: str
) -> None:
    r = client.post(
        "/api/v1/categories",
        json={
            "code": "LONG",
            "name": "长周期",
            "lead_department": "GXJ",
            "time_limits": {"sign": duration},
        },
        headers=world.h("admin"),
    )
    assert r.status_code == 201, r.text
    req = submit(client, world, category="LONG")
    assert [d["duration"] for d in req["deadlines"]] == [duration]


def test_absurd_extension_decision_is_422(
    client: TestClient, world: World, in_progress: Any
) -> None:
    rid = in_progress["id"]
    act(client, world, "gxj", rid, "request_extension", extend_by="2 working days", reason="等材料")
    r = client.post(
        f"{API}/{rid}/actions/decide_extension",
        json={"approved": True, "extend_by": "P999999999D"},
        headers=world.h("supervisor"),
    )
    assert_problem(r, 422, "extend_by")


# --- lax coercion of booleans ------------------------------------------------------


@pytest.mark.parametrize("case", ["rule-priority", "supervise-level"])
def test_lax_coercion_of_booleans_to_integers(
    client: TestClient, world: World, rt: Runtime, case: str
) -> None:
    rid = submit(client, world)["id"]
    with nothing_written(rt):
        if case == "rule-priority":
            r = client.post(
                "/api/v1/routing-rules",
                json={"department": "GXJ", "grid_prefix": "4401", "priority": False},
                headers=world.h("admin"),
            )
            assert_problem(r, 422, "priority")
        else:
            r = client.post(
                f"{API}/{rid}/actions/supervise", json={"level": True}, headers=world.h("admin")
            )
            assert_problem(r, 422, "level")


# --- NUL characters and other text PostgreSQL cannot store ----------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("POST", API, submit_body(title="a\x00b"), id="submit-title"),
        pytest.param("POST", API, submit_body(contact={"name": "\x00"}), id="submit-nested"),
        # JSON sends a backslash then NUL as \\\u0000: still a NUL after the escaped backslash
        pytest.param("POST", API, submit_body(title="a\\\x00b"), id="submit-after-backslash"),
        pytest.param(
            "POST", "/api/v1/departments", {"code": "NUL", "name": "a\x00b"}, id="department"
        ),
        pytest.param("POST", "{rid}/actions/urge", {"note": "a\x00b"}, id="action-note"),
        pytest.param(
            "POST", "/api/v1/auth/login", {"username": "a\x00b", "password": "x"}, id="login"
        ),
        pytest.param("GET", f"{API}?category=a%00b", None, id="list-filter"),
        pytest.param("GET", f"{API}?state=dispatched&state=%00", None, id="list-state"),
    ],
)
def test_nul_character_is_422_on_every_database(
    client: TestClient,
    world: World,
    rt: Runtime,
    dispatched: Any,
    method: str,
    path: str,
    body: Any,
) -> None:
    """SQLite would store it and PostgreSQL cannot: refused alike, before the database."""
    path = path.replace("{rid}", f"{API}/{dispatched['id']}")
    with nothing_written(rt):
        r = client.request(method, path, json=body, headers=world.h("admin"))
        assert_problem(r, 422, "NUL")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(r"\ud800", id="lone-high-surrogate"),
        pytest.param(r"a\udc00b", id="lone-low-surrogate"),
    ],
)
def test_lone_surrogate_is_422(client: TestClient, world: World, rt: Runtime, text: str) -> None:
    """JSON may escape a half of a UTF-16 pair, which no database can store."""
    body = '{"code": "SUR", "name": "' + text + '"}'  # the escape as sent, not decoded
    with nothing_written(rt):
        r = client.post(
            "/api/v1/departments",
            content=body.encode(),
            headers=world.h("admin", **{"Content-Type": "application/json"}),
        )
        assert_problem(r, 422, "name")


def test_a_json_body_in_utf16_is_400(client: TestClient, world: World, rt: Runtime) -> None:
    """UTF-16 would slip a NUL past the check on the raw body, and RFC 8259 asks for UTF-8."""
    body = json.dumps(submit_body(title="a\x00b")).encode("utf-16")
    with nothing_written(rt):
        r = client.post(
            API,
            content=body,
            headers=world.h("integration", **{"Content-Type": "application/json"}),
        )
        assert_problem(r, 400, "UTF-8")


def test_text_spelling_the_nul_escape_is_accepted(client: TestClient, world: World) -> None:
    r = client.post(
        API, json=submit_body(title="日志报错 \\u0000 截断"), headers=world.h("integration")
    )
    assert r.status_code == 201, r.text
    assert r.json()["title"] == "日志报错 \\u0000 截断"
