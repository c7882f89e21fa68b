"""Conflicting actions from parallel clients on PostgreSQL: exactly one applies."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from fastapi.testclient import TestClient

from huying.runtime import Runtime
from tests.conftest import PG_URL, World, submit_body

pytestmark = pytest.mark.skipif(
    not PG_URL, reason="needs PostgreSQL: set HUYING_TEST_DATABASE_URL (.ci/run does)"
)
API = "/api/v1/requests"


def _race(client: TestClient, n: int, call) -> Counter[int]:  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(n)
    codes: list[int] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        code = call(i)
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return Counter(codes)


def test_parallel_conflicting_actions_apply_exactly_once(
    client: TestClient, world: World, rt: Runtime
) -> None:
    for _ in range(5):
        rid = client.post(API, json=submit_body(), headers=world.h("integration")).json()["id"]

        def sign(i: int, rid: int = rid) -> int:
            # Eight clerks sign at once; in workflow v2 a return after signing is a step of
            # its own (reviewed), so the conflict raced here is the signature itself.
            status: int = client.post(
                f"{API}/{rid}/actions/sign", json={"note": f"签收 {i}"}, headers=world.h("gxj")
            ).status_code
            return status

        codes = _race(client, 8, sign)
        assert codes[200] == 1, codes
        assert set(codes) <= {200, 409}, codes
        after = client.get(f"{API}/{rid}", headers=world.h("supervisor")).json()
        assert after["state"] == "in_progress"
        assert [t["seq"] for t in after["timeline"]] == [1, 2, 3]


def test_parallel_if_match_writers_one_wins_rest_412(client: TestClient, world: World) -> None:
    rid = client.post(API, json=submit_body(), headers=world.h("integration")).json()["id"]
    etag = client.get(f"{API}/{rid}", headers=world.h("supervisor")).headers["ETag"]

    def urge(i: int) -> int:
        status: int = client.post(
            f"{API}/{rid}/actions/urge",
            json={"note": f"第{i}次催办"},
            headers=world.h("supervisor", **{"If-Match": etag}),
        ).status_code
        return status

    codes = _race(client, 6, urge)
    assert codes == Counter({200: 1, 412: 5}), codes


def test_parallel_idempotent_submits_make_one_request(client: TestClient, world: World) -> None:
    def post(i: int) -> int:
        status: int = client.post(
            API,
            json=submit_body(),
            headers=world.h("integration", **{"Idempotency-Key": "grid-42"}),
        ).status_code
        return status

    codes = _race(client, 6, post)
    assert codes[201] == 1 and codes[200] == 5, codes
    items = client.get(API, headers=world.h("supervisor")).json()["items"]
    assert len(items) == 1
