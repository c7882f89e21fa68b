"""Idempotent submit: the same Idempotency-Key with the same body replays the request made
first (200, same id); with another body it is refused (422) and still one request exists."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from huying.requests.models import Request
from huying.runtime import Runtime
from tests.api.conftest import API
from tests.api.support import assert_problem, nothing_written
from tests.conftest import World, submit_body


def _requests(rt: Runtime) -> int:
    with rt.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(Request)) or 0)


def test_same_key_same_body_replays_the_same_request(
    client: TestClient, world: World, rt: Runtime
) -> None:
    headers = world.h("integration", **{"Idempotency-Key": "grid-2026-000042"})
    first = client.post(API, json=submit_body(), headers=headers)
    assert first.status_code == 201, first.text
    with nothing_written(rt):
        again = client.post(API, json=submit_body(), headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["number"] == first.json()["number"]
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert _requests(rt) == 1


def test_same_key_other_body_is_422_and_still_one_request(
    client: TestClient, world: World, rt: Runtime
) -> None:
    headers = world.h("integration", **{"Idempotency-Key": "grid-2026-000043"})
    first = client.post(API, json=submit_body(), headers=headers)
    assert first.status_code == 201, first.text
    with nothing_written(rt):
        other = client.post(API, json=submit_body(title="另一件事"), headers=headers)
        assert_problem(other, 422, "grid-2026-000043", first.json()["number"], "new key")
    assert _requests(rt) == 1


def test_replay_answers_the_request_as_it_is_now(
    client: TestClient, world: World, rt: Runtime
) -> None:
    headers = world.h("integration", **{"Idempotency-Key": "k-signed"})
    first = client.post(API, json=submit_body(), headers=headers).json()
    signed = client.post(f"{API}/{first['id']}/actions/sign", headers=world.h("gxj"))
    assert signed.status_code == 200, signed.text
    again = client.post(API, json=submit_body(), headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first["id"]
    assert again.json()["state"] == "in_progress"
    assert _requests(rt) == 1


def test_different_keys_make_different_requests(
    client: TestClient, world: World, rt: Runtime
) -> None:
    for key in ("k-1", "k-2"):
        r = client.post(
            API, json=submit_body(), headers=world.h("integration", **{"Idempotency-Key": key})
        )
        assert r.status_code == 201, r.text
    assert _requests(rt) == 2


def test_bad_idempotency_keys_are_422(client: TestClient, world: World, rt: Runtime) -> None:
    with nothing_written(rt):
        for key in ("", "k" * 201):
            r = client.post(
                API, json=submit_body(), headers=world.h("integration", **{"Idempotency-Key": key})
            )
            assert_problem(r, 422, "Idempotency-Key")


def test_invalid_body_with_a_key_does_not_burn_the_key(
    client: TestClient, world: World, rt: Runtime
) -> None:
    headers = world.h("integration", **{"Idempotency-Key": "k-retry"})
    with nothing_written(rt):
        assert_problem(client.post(API, json=submit_body(category="NOPE"), headers=headers), 422)
    r = client.post(API, json=submit_body(), headers=headers)
    assert r.status_code == 201, r.text
