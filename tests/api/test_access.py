"""Who may do what: 401 without valid credentials, 403 for a role that may not, 404 for
another department's request, 409 listing the allowed actions, 412 on a stale If-Match.
Every refusal is problem+json and writes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from huying.auth.models import ApiKey
from huying.runtime import Runtime
from tests.api.conftest import API, act, submit
from tests.api.support import PROBLEM, assert_problem, nothing_written
from tests.conftest import USCC_A, World, submit_body

# --- 401 -------------------------------------------------------------------------

BAD_AUTH = [
    pytest.param({}, "Authorization", id="none"),
    pytest.param({"Authorization": "Bearer"}, "Authorization", id="bearer-no-token"),
    pytest.param({"Authorization": "Basic YWRtaW46YWRtaW4="}, "Bearer", id="basic"),
    pytest.param({"Authorization": "Bearer hyk_not-a-key"}, "API key", id="unknown-key"),
    pytest.param({"Authorization": "Bearer hys_not-a-session"}, "session", id="unknown-session"),
    pytest.param({"Authorization": "Bearer letmein"}, "token", id="garbage"),
]


@pytest.mark.parametrize(("headers", "fragment"), BAD_AUTH)
def test_submit_without_valid_credentials_is_401(
    client: TestClient, rt: Runtime, world: World, headers: dict[str, str], fragment: str
) -> None:
    with nothing_written(rt):
        r = client.post(API, json=submit_body(), headers=headers)
        assert_problem(r, 401, fragment)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "path",
    [
        API,
        f"{API}/1",
        f"{API}/1/actions",
        "/api/v1/departments",
        "/api/v1/categories",
        f"/api/v1/enterprises/{USCC_A}",
        "/api/v1/auth/me",
    ],
)
@pytest.mark.parametrize(("headers", "fragment"), BAD_AUTH[:1] + BAD_AUTH[3:4])
def test_reads_without_valid_credentials_are_401(
    client: TestClient, world: World, path: str, headers: dict[str, str], fragment: str
) -> None:
    assert_problem(client.get(path, headers=headers), 401, fragment)


def test_action_without_valid_credentials_is_401(
    client: TestClient, world: World, rt: Runtime, dispatched: Any
) -> None:
    with nothing_written(rt):
        r = client.post(
            f"{API}/{dispatched['id']}/actions/sign", headers={"Authorization": "Bearer hyk_x"}
        )
        assert_problem(r, 401)


def test_revoked_key_is_401(client: TestClient, world: World, rt: Runtime) -> None:
    with rt.transaction() as s:
        s.execute(update(ApiKey).where(ApiKey.name == "integration").values(revoked_at=rt.now()))
    with nothing_written(rt):
        r = client.post(API, json=submit_body(), headers=world.h("integration"))
        assert_problem(r, 401, "revoked")
    assert client.get(API, headers=world.h("admin")).status_code == 200


def test_healthz_needs_no_credentials(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"


def test_openapi_and_docs_need_no_credentials(client: TestClient) -> None:
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


# --- 403 -------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["gxj", "supervisor"])
def test_roles_that_may_not_submit_get_403(
    client: TestClient, world: World, rt: Runtime, who: str
) -> None:
    with nothing_written(rt):
        r = client.post(API, json=submit_body(), headers=world.h(who))
        assert_problem(r, 403, "may not submit")


@pytest.mark.parametrize(
    ("who", "method", "path", "body"),
    [
        ("gxj", "POST", "/api/v1/departments", {"code": "NEW", "name": "新部门"}),
        ("integration", "POST", "/api/v1/categories", {"code": "NEWCAT", "name": "新类别"}),
        ("dispatcher", "POST", "/api/v1/enterprises", {"uscc": USCC_A, "name": "x"}),
        ("gxj", "GET", f"/api/v1/enterprises/{USCC_A}", None),
        ("integration", "GET", "/api/v1/routing-rules", None),
        ("supervisor", "POST", "/api/v1/routing-rules", {"department": "GXJ", "chain": "display"}),
    ],
)
def test_directory_roles_are_enforced(
    client: TestClient,
    world: World,
    rt: Runtime,
    who: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    with nothing_written(rt):
        r = client.request(method, path, json=body, headers=world.h(who))
        assert_problem(r, 403, "may not")


@pytest.mark.parametrize(
    ("who", "action", "body"),
    [
        ("integration", "sign", {}),
        ("street", "sign", {}),  # a co-department sees the request but may not sign it
        ("supervisor", "reply", {"content": "x", "resolved": True}),
        ("admin", "escalate", {}),  # timers only
    ],
)
def test_action_by_a_role_that_may_not_is_403(
    client: TestClient,
    world: World,
    rt: Runtime,
    in_progress: Any,
    who: str,
    action: str,
    body: dict[str, Any],
) -> None:
    rid = in_progress["id"]
    if action == "sign":
        rid = submit(client, world)["id"]
    with nothing_written(rt):
        r = client.post(f"{API}/{rid}/actions/{action}", json=body, headers=world.h(who))
        role = "department" if who in ("gxj", "street") else who
        problem = assert_problem(r, 403, f"role {role!r}", action)
    assert action not in problem["allowed"]


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("dispatch", {"lead_department": "RSJ"}),
        ("reject", {"reason": "不归我们管"}),
    ],
)
def test_department_dispatching_is_403(
    client: TestClient,
    world: World,
    rt: Runtime,
    dispatched: Any,
    action: str,
    body: dict[str, Any],
) -> None:
    with nothing_written(rt):
        r = client.post(
            f"{API}/{dispatched['id']}/actions/{action}", json=body, headers=world.h("gxj")
        )
        assert_problem(r, 403, "department", action)


def test_department_merging_is_403(
    client: TestClient, world: World, rt: Runtime, dispatched: Any
) -> None:
    other = submit(client, world)["id"]
    with nothing_written(rt):
        r = client.post(
            f"{API}/{dispatched['id']}/actions/merge",
            json={"target_id": other},
            headers=world.h("gxj"),
        )
        assert_problem(r, 403, "department", "merge")


def test_department_may_not_dispatch_a_returned_request(
    client: TestClient, world: World, rt: Runtime, dispatched: Any
) -> None:
    """Once returned, the request is no longer the department's: it cannot see it at all."""
    rid = dispatched["id"]
    act(client, world, "gxj", rid, "return", reason="不属于本部门职责")
    with nothing_written(rt):  # under review it is still the department's, but not to dispatch
        r = client.post(
            f"{API}/{rid}/actions/dispatch", json={"lead_department": "GXJ"}, headers=world.h("gxj")
        )
        assert_problem(r, 403)
    act(client, world, "dispatcher", rid, "accept_return")
    with nothing_written(rt):
        r = client.post(
            f"{API}/{rid}/actions/dispatch", json={"lead_department": "GXJ"}, headers=world.h("gxj")
        )
        assert_problem(r, 404)


# --- 404 -------------------------------------------------------------------------


def test_another_departments_request_is_404_like_a_missing_one(
    client: TestClient, world: World, rt: Runtime, dispatched: Any
) -> None:
    rid = dispatched["id"]
    missing = rid + 1000
    with nothing_written(rt):
        for path in (f"{API}/{rid}", f"{API}/{rid}/actions"):
            other = client.get(path, headers=world.h("rsj"))
            assert_problem(other, 404, str(rid))
        for action, body in (("sign", {}), ("reply", {"content": "x", "resolved": True})):
            other = client.post(f"{API}/{rid}/actions/{action}", json=body, headers=world.h("rsj"))
            assert_problem(other, 404, str(rid))
        nothing = client.get(f"{API}/{missing}", headers=world.h("rsj"))
        assert_problem(nothing, 404, str(missing))
    assert other.json()["detail"].replace(str(rid), "N") == nothing.json()["detail"].replace(
        str(missing), "N"
    )
    assert set(other.json()) == set(nothing.json())
    listed = client.get(API, headers=world.h("rsj")).json()["items"]
    assert rid not in [i["id"] for i in listed]
    listed = client.get(f"{API}?department=GXJ", headers=world.h("rsj")).json()["items"]
    assert listed == []


def test_lead_and_co_departments_see_the_request(
    client: TestClient, world: World, dispatched: Any
) -> None:
    rid = dispatched["id"]
    for who in ("gxj", "street"):
        assert client.get(f"{API}/{rid}", headers=world.h(who)).status_code == 200
        listed = client.get(API, headers=world.h(who)).json()["items"]
        assert [i["id"] for i in listed] == [rid]
    # the co-department acts on its own assist task (协办), never as the lead
    assert client.get(f"{API}/{rid}/actions", headers=world.h("street")).json()["actions"] == [
        "task_sign",
        "task_reply",
    ]


# --- 409 -------------------------------------------------------------------------


def test_action_the_state_does_not_allow_is_409_listing_the_allowed(
    client: TestClient, world: World, rt: Runtime, in_progress: Any
) -> None:
    rid = in_progress["id"]
    with nothing_written(rt):
        r = client.post(f"{API}/{rid}/actions/sign", headers=world.h("gxj"))
        problem = assert_problem(r, 409, "sign", "in_progress")
    allowed = client.get(f"{API}/{rid}/actions", headers=world.h("gxj")).json()
    assert problem["allowed"] == allowed["actions"]
    assert set(problem["allowed"]) == {
        "request_extension",
        "request_suspension",
        "reply",
        "return",
        "delegate",
        "cancel_task",
    }
    after = client.get(f"{API}/{rid}", headers=world.h("gxj")).json()
    assert after["version"] == in_progress["version"]
    assert len(after["timeline"]) == len(in_progress["timeline"])


def test_action_on_a_closed_request_is_409_with_nothing_allowed(
    client: TestClient, world: World, rt: Runtime, in_progress: Any
) -> None:
    rid = in_progress["id"]
    act(client, world, "gxj", rid, "reply", content="已处理", resolved=True)
    act(client, world, "integration", rid, "rate", rating="satisfied", resolved=True)
    with nothing_written(rt):
        for action in ("urge", "supervise"):
            r = client.post(f"{API}/{rid}/actions/{action}", json={}, headers=world.h("admin"))
            assert assert_problem(r, 409, action, "closed")["allowed"] == []


# --- 412 -------------------------------------------------------------------------


def test_stale_if_match_is_412_and_current_one_applies(
    client: TestClient, world: World, rt: Runtime, dispatched: Any
) -> None:
    rid = dispatched["id"]
    got = client.get(f"{API}/{rid}", headers=world.h("gxj"))
    etag = got.headers["ETag"]
    assert etag == f'"{got.json()["version"]}"'
    stale = f'"{got.json()["version"] - 1}"'
    with nothing_written(rt):
        r = client.post(f"{API}/{rid}/actions/sign", headers=world.h("gxj", **{"If-Match": stale}))
        problem = assert_problem(r, 412, "version")
    assert problem["current_version"] == got.json()["version"]

    ok = client.post(f"{API}/{rid}/actions/sign", headers=world.h("gxj", **{"If-Match": etag}))
    assert ok.status_code == 200, ok.text
    assert ok.headers["ETag"] == f'"{ok.json()["version"]}"'
    assert ok.json()["version"] > got.json()["version"]

    with nothing_written(rt):
        again = client.post(
            f"{API}/{rid}/actions/reply",
            json={"content": "x", "resolved": True},
            headers=world.h("gxj", **{"If-Match": etag}),
        )
        assert_problem(again, 412)


def test_weak_etag_is_accepted(client: TestClient, world: World, dispatched: Any) -> None:
    rid = dispatched["id"]
    version = client.get(f"{API}/{rid}", headers=world.h("gxj")).json()["version"]
    r = client.post(
        f"{API}/{rid}/actions/sign", headers=world.h("gxj", **{"If-Match": f'W/"{version}"'})
    )
    assert r.status_code == 200, r.text


def test_stale_if_match_wins_over_a_conflict(
    client: TestClient, world: World, rt: Runtime, in_progress: Any
) -> None:
    with nothing_written(rt):
        r = client.post(
            f"{API}/{in_progress['id']}/actions/sign",
            headers=world.h("gxj", **{"If-Match": '"1"'}),
        )
        assert_problem(r, 412)


def test_problem_content_type_on_every_refusal(client: TestClient, world: World) -> None:
    """A smoke test across statuses: every refusal is problem+json, none is JSON or HTML."""
    responses = [
        client.get(API),
        client.post(API, json=submit_body(), headers=world.h("gxj")),
        client.get(f"{API}/999", headers=world.h("admin")),
        client.get("/api/v1/nowhere", headers=world.h("admin")),
        client.delete(API, headers=world.h("admin")),
    ]
    assert [r.status_code for r in responses] == [401, 403, 404, 404, 405]
    for r in responses:
        assert r.headers["content-type"].startswith(PROBLEM), r.headers
        assert r.json()["detail"], r.text
