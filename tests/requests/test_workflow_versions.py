"""Requests running on version 1 finish on version 1 (DESIGN.md part two): a deployment whose
workflow folder held only version 1 takes requests; version 2 is added to the folder and the
app restarted on the same database; new requests start on version 2, and both kinds run to
closed side by side, each on the version it started with."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from huying.app import create_app
from huying.clock import FrozenClock
from huying.runtime import Runtime, build_runtime
from tests.conftest import ROOT, World, make_settings, submit_body

API = "/api/v1/requests"
SHIPPED = ROOT / "src/huying/data/workflows"


class Deployment:
    """An app on the test database whose workflows are read from `folder` at start, as a
    server would read them; `restart` builds a new runtime and app on the same database."""

    def __init__(self, url: str, folder: Path, clock: FrozenClock) -> None:
        self.url, self.folder, self.clock = url, folder, clock
        self.runtimes: list[Runtime] = []
        self.clients: list[TestClient] = []

    def restart(self) -> TestClient:
        settings = make_settings(self.url, workflows={"path": str(self.folder)})
        runtime = build_runtime(settings, clock=self.clock)  # reads the folder
        client = TestClient(create_app(runtime), raise_server_exceptions=False)
        client.__enter__()
        self.runtimes.append(runtime)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.__exit__(None, None, None)
        for runtime in self.runtimes:
            runtime.close()


@pytest.fixture
def deployment(
    migrated: str, rt: Runtime, clock: FrozenClock, tmp_path: Path
) -> Iterator[Deployment]:
    """Starts with only version 1 in its folder. `rt` (tests/conftest.py) empties the
    database afterwards."""
    shutil.copy(SHIPPED / "service_request.yaml", tmp_path / "service_request.yaml")
    d = Deployment(migrated, tmp_path, clock)
    yield d
    d.close()


def submit(client: TestClient, world: World) -> dict[str, Any]:
    r = client.post(API, json=submit_body(), headers=world.h("integration"))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def act(client: TestClient, world: World, who: str, rid: int, action: str, **body: Any) -> Any:
    r = client.post(f"{API}/{rid}/actions/{action}", json=body, headers=world.h(who))
    assert r.status_code == 200, r.text
    return r.json()


def status(client: TestClient, world: World, who: str, rid: int, action: str, **body: Any) -> int:
    r = client.post(f"{API}/{rid}/actions/{action}", json=body, headers=world.h(who))
    code: int = r.status_code
    return code


def actions(client: TestClient, world: World, who: str, rid: int) -> list[str]:
    found: list[str] = client.get(f"{API}/{rid}/actions", headers=world.h(who)).json()["actions"]
    return found


def get(client: TestClient, world: World, rid: int) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"{API}/{rid}", headers=world.h("supervisor")).json()
    return body


def finish_on_v1(client: TestClient, world: World, rid: int) -> dict[str, Any]:
    """Version 1's way: suspend and resume at will, rate without the enterprise's answer."""
    act(client, world, "gxj", rid, "sign")
    assert "suspend" in actions(client, world, "gxj", rid)
    assert "request_suspension" not in actions(client, world, "gxj", rid)
    suspended = act(client, world, "gxj", rid, "suspend", reason="等待企业补充材料")
    assert suspended["state"] == "suspended"
    act(client, world, "gxj", rid, "resume")
    act(client, world, "gxj", rid, "reply", content="已协调供电方案", resolved=True)
    closed = act(client, world, "integration", rid, "rate", rating="satisfied")
    assert closed["enterprise_resolved"] is None
    result: dict[str, Any] = closed
    return result


def finish_on_v2(client: TestClient, world: World, rid: int) -> dict[str, Any]:
    """Version 2's way: a suspension asked and approved, rate with the enterprise's answer."""
    act(client, world, "gxj", rid, "sign")
    assert "request_suspension" in actions(client, world, "gxj", rid)
    assert status(client, world, "gxj", rid, "suspend", reason="r") == 404  # not in v2
    asked = act(
        client,
        world,
        "gxj",
        rid,
        "request_suspension",
        reason_code="site_survey",
        reason="需现场勘查",
        length="1 working day",
    )
    assert asked["state"] == "in_progress"
    suspended = act(client, world, "supervisor", rid, "decide_suspension", approved=True)
    assert suspended["state"] == "suspended"
    act(client, world, "gxj", rid, "resume")
    act(client, world, "gxj", rid, "reply", content="已协调供电方案", resolved=True)
    assert status(client, world, "integration", rid, "rate", rating="satisfied") == 422
    closed = act(client, world, "integration", rid, "rate", rating="satisfied", resolved=True)
    assert closed["enterprise_resolved"] is True
    result: dict[str, Any] = closed
    return result


def test_requests_on_version_1_finish_on_version_1_beside_version_2(
    deployment: Deployment, world: World
) -> None:
    before = deployment.restart()
    old = [submit(before, world) for _ in range(2)]
    assert [r["workflow"] for r in old] == [{"name": "service_request", "version": 1}] * 2

    shutil.copy(SHIPPED / "service_request_v2.yaml", deployment.folder / "service_request_v2.yaml")
    after = deployment.restart()
    new = [submit(after, world) for _ in range(2)]
    assert [r["workflow"]["version"] for r in new] == [2, 2]
    # the old requests did not move to version 2
    assert [get(after, world, r["id"])["workflow"]["version"] for r in old] == [1, 1]

    finished = [finish_on_v1(after, world, r["id"]) for r in old]
    finished += [finish_on_v2(after, world, r["id"]) for r in new]

    assert [(r["state"], r["workflow"]["version"]) for r in finished] == [
        ("closed", 1),
        ("closed", 1),
        ("closed", 2),
        ("closed", 2),
    ]
    steps = [[t["action"] for t in get(after, world, r["id"])["timeline"]] for r in finished]
    v1_steps = ["submit", "route", "sign", "suspend", "resume", "reply", "rate"]
    v2_steps = [
        "submit",
        "route",
        "sign",
        "request_suspension",
        "decide_suspension",
        "resume",
        "reply",
        "rate",
    ]
    assert steps == [v1_steps, v1_steps, v2_steps, v2_steps]


def test_without_version_2_in_the_folder_a_v2_request_cannot_be_acted_on(
    deployment: Deployment, world: World
) -> None:
    """The contrast: the versions a deployment loads are those in its folder. A request on
    version 2 taken back to an app with only version 1 is refused, never moved to it."""
    shutil.copy(SHIPPED / "service_request_v2.yaml", deployment.folder / "service_request_v2.yaml")
    both = deployment.restart()
    rid = submit(both, world)["id"]
    (deployment.folder / "service_request_v2.yaml").unlink()
    only_v1 = deployment.restart()
    r = only_v1.post(f"{API}/{rid}/actions/sign", json={}, headers=world.h("gxj"))
    assert r.status_code == 404, r.text
    assert r.json()["code"] == "unknown_workflow"
    assert get(only_v1, world, rid)["workflow"]["version"] == 2
