"""Lookup (DESIGN.md part two, "Lookup"): a request is found again by its number
(`?number=HY-…`, `GET /requests/HY-…`) and by the submitter's own `external_id`
(`?external_id=…`), exactly. `external_id` is unique per submitter: the same body again
replays (200, the same request), another body is 409 `external_id_taken` naming the
request that has it, and a concurrent submit that loses the race answers the same way.
Different submitters may use one external_id each.

Submitted Wednesday 2026-11-18 10:00 Shanghai: request n is HY-20261118-00000n."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from huying.requests import repository
from huying.requests.models import Request
from huying.runtime import Runtime
from tests.api.conftest import API, act, submit
from tests.api.support import assert_problem, nothing_written
from tests.conftest import PG_URL, World, submit_body


def found(client: TestClient, world: World, who: str = "dispatcher", **query: str) -> list[int]:
    """The ids a list with these query parameters answers, newest first."""
    r = client.get(API, params=query, headers=world.h(who))
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


def request_count(rt: Runtime) -> int:
    with rt.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(Request)) or 0)


# --- by number ---------------------------------------------------------------------------


def test_number_finds_exactly_that_request(client: TestClient, world: World) -> None:
    made = [submit(client, world) for _ in range(3)]
    assert [m["number"] for m in made] == [f"HY-20261118-{i:06d}" for i in (1, 2, 3)]
    for m in made:
        assert found(client, world, number=m["number"]) == [m["id"]]
    assert found(client, world, number="HY-20261118-00000") == []  # a prefix is not a number
    assert found(client, world, number="HY-20261118-000004") == []
    assert found(client, world, number="HY-20261117-000001") == []  # another day's
    assert len(found(client, world)) == 3


def test_a_request_is_read_and_acted_on_by_its_number(client: TestClient, world: World) -> None:
    made = submit(client, world)
    number = made["number"]
    by_id = client.get(f"{API}/{made['id']}", headers=world.h("supervisor"))
    by_number = client.get(f"{API}/{number}", headers=world.h("supervisor"))
    assert by_number.status_code == 200, by_number.text
    assert by_number.json() == by_id.json()
    assert by_number.headers["ETag"] == by_id.headers["ETag"]
    actions = client.get(f"{API}/{number}/actions", headers=world.h("gxj"))
    assert actions.status_code == 200, actions.text
    assert "sign" in actions.json()["actions"]
    signed = client.post(f"{API}/{number}/actions/sign", json={}, headers=world.h("gxj"))
    assert signed.status_code == 200, signed.text
    assert (signed.json()["id"], signed.json()["state"]) == (made["id"], "in_progress")


def test_an_unknown_number_is_404_and_a_malformed_one_422(client: TestClient, world: World) -> None:
    submit(client, world)
    missing = client.get(f"{API}/HY-20261118-000009", headers=world.h("supervisor"))
    assert_problem(missing, 404, "HY-20261118-000009")
    assert missing.json()["code"] == "request_not_found"
    for bad in ("HY-2026-1", "HY-20261118-1", "XY-20261118-000001"):
        r = client.get(f"{API}/{bad}", headers=world.h("supervisor"))
        assert r.status_code == 422, (bad, r.text)


def test_a_number_outside_the_callers_departments_is_not_found(
    client: TestClient, world: World
) -> None:
    """POWER is led by GXJ with STREET assisting: RSJ may neither list nor read it, and the
    answer is the same as for a number that does not exist."""
    number = submit(client, world)["number"]
    assert found(client, world, "rsj", number=number) == []
    r = client.get(f"{API}/{number}", headers=world.h("rsj"))
    assert_problem(r, 404, number)
    assert found(client, world, "gxj", number=number) != []
    assert found(client, world, "street", number=number) != []


# --- by external_id --------------------------------------------------------------------------


def test_external_id_finds_exactly_that_request(client: TestClient, world: World) -> None:
    seven = submit(client, world, external_id="grid-7")
    seventy = submit(client, world, external_id="grid-77")
    submit(client, world)
    assert found(client, world, external_id="grid-7") == [seven["id"]]
    assert found(client, world, external_id="grid-77") == [seventy["id"]]
    assert found(client, world, external_id="grid-") == []
    assert found(client, world, external_id="GRID-7") == []
    assert found(client, world, external_id="grid-8") == []
    assert seven["external_id"] == "grid-7"
    assert found(client, world, external_id="grid-7", number=seventy["number"]) == []
    assert found(client, world, external_id="grid-7", number=seven["number"]) == [seven["id"]]


@pytest.mark.parametrize("name", ["number", "external_id"])
def test_an_empty_lookup_never_lists_everything(
    client: TestClient, world: World, name: str
) -> None:
    """`?external_id=` with the grid system's id left empty must not answer every request,
    which the grid system would take for its own: 422 or nothing."""
    submit(client, world, external_id="grid-1")
    submit(client, world)
    r = client.get(API, params={name: ""}, headers=world.h("integration"))
    assert r.status_code == 422 or r.json()["items"] == [], r.text


def test_the_same_external_id_and_body_replays(
    client: TestClient, world: World, rt: Runtime
) -> None:
    body = submit_body(external_id="grid-2026-0042")
    first = client.post(API, json=body, headers=world.h("integration"))
    assert first.status_code == 201, first.text
    act(client, world, "gxj", first.json()["id"], "sign")
    with nothing_written(rt):
        again = client.post(API, json=body, headers=world.h("integration"))
    assert again.status_code == 200, again.text
    assert (again.json()["id"], again.json()["number"]) == (
        first.json()["id"],
        first.json()["number"],
    )
    assert again.json()["state"] == "in_progress"  # as it is now
    assert again.headers["Location"] == first.headers["Location"]
    assert again.json()["receipt_url"] == first.json()["receipt_url"]
    # a new Idempotency-Key does not make it a new request
    keyed = client.post(
        API, json=body, headers=world.h("integration", **{"Idempotency-Key": "retry-1"})
    )
    assert keyed.status_code == 200, keyed.text
    assert keyed.json()["id"] == first.json()["id"]
    assert request_count(rt) == 1


def test_the_same_external_id_with_another_body_is_409_naming_the_request(
    client: TestClient, world: World, rt: Runtime
) -> None:
    first = submit(client, world, external_id="grid-2026-0043")
    with nothing_written(rt):
        r = client.post(
            API,
            json=submit_body(external_id="grid-2026-0043", title="另一件事"),
            headers=world.h("integration"),
        )
        problem = assert_problem(r, 409, "grid-2026-0043", first["number"])
    assert problem["code"] == "external_id_taken"
    assert (problem["existing_id"], problem["existing_number"]) == (first["id"], first["number"])
    assert request_count(rt) == 1


def test_different_submitters_may_use_one_external_id(
    client: TestClient, world: World, rt: Runtime
) -> None:
    mine = client.post(API, json=submit_body(external_id="A-1"), headers=world.h("integration"))
    theirs = client.post(API, json=submit_body(external_id="A-1"), headers=world.h("dispatcher"))
    assert (mine.status_code, theirs.status_code) == (201, 201), (mine.text, theirs.text)
    assert mine.json()["id"] != theirs.json()["id"]
    assert sorted(found(client, world, "supervisor", external_id="A-1")) == sorted(
        [mine.json()["id"], theirs.json()["id"]]
    )
    assert request_count(rt) == 2


def test_an_integration_finds_its_own_request_by_its_external_id(
    client: TestClient, world: World
) -> None:
    """external_id is the submitter's: another submitter's request under the same id is not
    the one the grid system is looking for (DESIGN.md: "the grid system finds its request
    again"). Staff, who see every submitter's, get both (above)."""
    mine = submit(client, world, external_id="A-2")
    theirs = client.post(API, json=submit_body(external_id="A-2"), headers=world.h("dispatcher"))
    assert theirs.status_code == 201, theirs.text
    assert found(client, world, "integration", external_id="A-2") == [mine["id"]]


# --- the race: two submits under one external_id at once --------------------------------------


def _miss_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The submit's own look-up misses, as when a concurrent submit under the same
    external_id commits between that look-up and this insert: the insert then meets the
    unique index (requests/router.py submit's IntegrityError path)."""
    real = repository.by_external_id
    calls: list[str] = []

    def by_external_id(session: Any, submitted_by: str, external_id: str) -> Request | None:
        calls.append(external_id)
        return None if len(calls) == 1 else real(session, submitted_by, external_id)

    monkeypatch.setattr(repository, "by_external_id", by_external_id)


def test_a_submit_that_loses_the_race_with_the_same_body_replays(
    client: TestClient, world: World, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = submit(client, world, external_id="race-1")
    _miss_once(monkeypatch)
    with nothing_written(rt):
        r = client.post(API, json=submit_body(external_id="race-1"), headers=world.h("integration"))
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["number"]) == (first["id"], first["number"])
    assert request_count(rt) == 1


def test_a_submit_that_loses_the_race_with_another_body_is_409(
    client: TestClient, world: World, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = submit(client, world, external_id="race-2")
    _miss_once(monkeypatch)
    with nothing_written(rt):
        r = client.post(
            API,
            json=submit_body(external_id="race-2", title="另一件事"),
            headers=world.h("integration"),
        )
        problem = assert_problem(r, 409, "race-2")
    assert problem["code"] == "external_id_taken"
    assert (problem["existing_id"], problem["existing_number"]) == (first["id"], first["number"])


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL: set HUYING_TEST_DATABASE_URL")
def test_parallel_submits_under_one_external_id_make_one_request(
    client: TestClient, world: World, rt: Runtime
) -> None:
    n = 6
    barrier = threading.Barrier(n)
    answers: list[tuple[int, int]] = []
    lock = threading.Lock()

    def post() -> None:
        barrier.wait()
        r = client.post(API, json=submit_body(external_id="race-3"), headers=world.h("integration"))
        with lock:
            answers.append((r.status_code, r.json().get("id", 0)))

    threads = [threading.Thread(target=post) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert Counter(code for code, _ in answers) == Counter({201: 1, 200: n - 1}), answers
    assert len({rid for _, rid in answers}) == 1
    assert request_count(rt) == 1
