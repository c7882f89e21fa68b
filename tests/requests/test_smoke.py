from fastapi.testclient import TestClient

from tests.conftest import World, submit_body


def test_submit_routes_to_lead_department(client: TestClient, world: World) -> None:
    r = client.post("/api/v1/requests", json=submit_body(), headers=world.h("integration"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "dispatched"
    assert body["lead_department"]["code"] == "GXJ"
    assert body["number"].startswith("HY-20261118-")
    assert [d["kind"] for d in body["deadlines"]] == ["sign"]
    assert [t["action"] for t in body["timeline"]] == ["submit", "route"]
