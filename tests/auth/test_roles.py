"""The roles: the monitor role (an API key for scraping /metrics, and nothing else in the API),
the groups of `huying.auth.roles`, and the workflow files' role names beside them."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from huying import roles
from huying.auth.service import create_key, create_user
from huying.errors import InvalidInput
from huying.runtime import Runtime
from huying.web import labels
from huying.workflow import definition
from tests.api.support import assert_problem, nothing_written
from tests.conftest import USCC_A, World, submit_body

API = "/api/v1/requests"


@pytest.fixture
def monitor(rt: Runtime) -> dict[str, str]:
    with rt.transaction() as s:
        key, token = create_key(
            session=s, role="monitor", department=None, name="prometheus", now=rt.now()
        )
        assert (key.role, key.department_code) == ("monitor", None)
    return {"Authorization": f"Bearer {token}"}


def test_a_monitor_key_is_bound_to_no_department(rt: Runtime, world: World) -> None:
    with pytest.raises(InvalidInput, match="bound to no department"), rt.transaction() as s:
        create_key(session=s, role="monitor", department="GXJ", name=None, now=rt.now())


def test_a_staff_user_cannot_have_the_monitor_role(rt: Runtime) -> None:
    with pytest.raises(InvalidInput, match="API key"), rt.transaction() as s:
        create_user(
            session=s,
            username="prometheus",
            password="long-enough",
            role="monitor",
            department=None,
            now=rt.now(),
        )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", API, None),
        ("POST", API, submit_body()),
        ("GET", "/api/v1/reports/rates", None),
        ("GET", "/api/v1/webhooks", None),
        ("POST", "/api/v1/webhooks", {"url": "https://hooks.example.com/h", "event_types": ["*"]}),
        ("GET", "/api/v1/deliveries", None),
        ("GET", f"/api/v1/enterprises/{USCC_A}", None),
        ("GET", "/api/v1/routing-rules", None),
        ("POST", "/api/v1/departments", {"code": "NEW", "name": "新部门"}),
    ],
)
def test_a_monitor_key_may_do_nothing_else_in_the_api(
    client: TestClient,
    rt: Runtime,
    world: World,
    monitor: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    with nothing_written(rt):
        r = client.request(method, path, json=body, headers=monitor)
        assert_problem(r, 403, "monitor")


def test_a_monitor_key_may_not_act_on_a_request(
    client: TestClient, rt: Runtime, world: World, monitor: dict[str, str]
) -> None:
    r = client.post(API, json=submit_body(), headers=world.h("integration"))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    for path in (f"{API}/{rid}", f"{API}/{rid}/actions"):
        assert_problem(client.get(path, headers=monitor), 403, "monitor")
    with nothing_written(rt):
        assert_problem(client.post(f"{API}/{rid}/actions/sign", headers=monitor), 403)


def test_a_monitor_key_may_scrape_metrics(client: TestClient, monitor: dict[str, str]) -> None:
    r = client.get("/metrics", headers=monitor)
    assert r.status_code == 200, r.text
    assert "huying_database_up 1.0" in r.text


def test_the_workflow_files_name_auth_s_roles_and_three_of_their_own() -> None:
    """A workflow file names the roles of `huying.auth.roles`, except that the department
    role is named as `lead_department` (bound to the request's lead department) or
    `task_department` (bound to the department of one of its open tasks), and the engine's
    own `system`; `monitor` acts on no request."""
    own = {"system", "lead_department", "task_department"}
    assert own <= definition.ROLES
    assert definition.ROLES - own <= set(roles.ROLES)
    assert (definition.ROLES - own) | {roles.DEPARTMENT} == set(roles.REQUEST_WORKERS)
    assert roles.MONITOR not in definition.ROLES


def test_the_groups_are_made_of_roles() -> None:
    groups = {name: value for name, value in vars(roles).items() if name.isupper()}
    for name, value in groups.items():
        members = (value,) if isinstance(value, str) else value
        assert set(members) <= set(roles.ROLES), name
        assert len(set(members)) == len(members), name
    assert tuple(r for r in roles.ROLES if r not in roles.SYSTEM_ROLES) == roles.STAFF_ROLES


def test_every_role_has_a_chinese_name() -> None:
    assert set(roles.ROLES) | definition.ROLES <= set(labels.ROLES)
