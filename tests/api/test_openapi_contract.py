"""The OpenAPI document against what the API answers: security, and error responses."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import API
from tests.api.support import PROBLEM
from tests.conftest import World

PUBLIC = {("POST", "/api/v1/auth/login"), ("GET", "/healthz")}


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
    ]


def test_every_operation_but_login_and_health_declares_bearer_auth(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for method, path, op in _operations(doc):
        secured = any("HTTPBearer" in s for s in op.get("security", []))
        assert secured == ((method, path) not in PUBLIC), (method, path)
        assert path == "/healthz" or path.startswith("/api/v1/"), path


def test_error_responses_are_documented_as_problems(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    wrong: list[str] = []
    for method, path, op in _operations(doc):
        codes = op["responses"]
        for code, response in codes.items():
            if code[0] in "45" or code == "default":
                media = sorted(response.get("content", {}))
                if PROBLEM not in media:
                    wrong.append(f"{method} {path} {code}: documented as {media}")
        if (method, path) not in PUBLIC and not {"401", "4XX", "default"} & set(codes):
            wrong.append(f"{method} {path}: 401 not documented")
    assert not wrong, "\n".join(wrong)


def test_a_422_is_sent_as_a_problem(client: TestClient, world: World) -> None:
    """The body sent matches what the document says (the fuzz run checks every response)."""
    r = client.get(f"{API}?limit=0", headers=world.h("admin"))
    assert r.status_code == 422
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert set(body) >= {"type", "title", "status", "detail", "errors"}
    assert isinstance(body["detail"], str)
    assert body["errors"][0]["loc"] == ["query", "limit"]


def test_every_api_operation_documents_the_503_problem(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for method, path, op in _operations(doc):
        if path.startswith("/api/v1/"):
            assert PROBLEM in op["responses"].get("503", {}).get("content", {}), (method, path)


def test_healthz_documents_its_503(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert "503" in doc["paths"]["/healthz"]["get"]["responses"]
