"""Naming uploads in `attachment_ids` binds them to the request and its timeline entry: the
caller's own, unbound ones, at most `attachments.max_per_request` on a request."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from huying.attachments import service as attachments
from huying.attachments.models import Attachment
from huying.runtime import Runtime
from tests.api.support import assert_problem, nothing_written
from tests.attachments import samples
from tests.attachments.conftest import REQUESTS, uploaded
from tests.conftest import World, submit_body

MAX_PER_REQUEST = 3


@pytest.fixture
def attachment_settings() -> dict[str, Any]:
    return {"max_per_request": MAX_PER_REQUEST}


def _bound(rt: Runtime, attachment_id: int) -> tuple[int | None, int | None]:
    with rt.transaction() as s:
        a = s.get(Attachment, attachment_id)
        assert a is not None
        return a.request_id, a.timeline_seq


def _submit(client: TestClient, world: World, ids: list[int], **extra: Any) -> Any:
    body = submit_body(attachment_ids=ids, **extra)
    return client.post(REQUESTS, json=body, headers=world.h("integration"))


def _act(client: TestClient, world: World, who: str, rid: int, action: str, **body: Any) -> Any:
    return client.post(f"{REQUESTS}/{rid}/actions/{action}", json=body, headers=world.h(who))


def test_a_submit_binds_its_photos_to_its_first_entry(
    client: TestClient, world: World, rt: Runtime
) -> None:
    photo = uploaded(client, world, "integration", samples.jpeg(), name="现场.jpg")
    r = _submit(client, world, [photo["id"]])
    assert r.status_code == 201, r.text
    req = r.json()
    assert _bound(rt, photo["id"]) == (req["id"], 1)
    staff_view = client.get(f"{REQUESTS}/{req['id']}", headers=world.h("admin")).json()
    submitted = staff_view["timeline"][0]
    assert submitted["action"] == "submit" and submitted["data"]["attachments"] == [photo["id"]]


def test_a_reply_binds_its_evidence_to_the_reply(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = _submit(client, world, []).json()["id"]
    assert _act(client, world, "gxj", rid, "sign").status_code == 200
    report = uploaded(client, world, "gxj", samples.pdf(), name="整改报告.pdf")
    r = _act(
        client,
        world,
        "gxj",
        rid,
        "reply",
        content="已完成",
        resolved=True,
        attachment_ids=[report["id"]],
    )
    assert r.status_code == 200, r.text
    reply = r.json()["timeline"][-1]
    assert reply["action"] == "reply" and reply["data"]["attachments"] == [report["id"]]
    assert "attachment_ids" not in reply["data"]
    assert _bound(rt, report["id"]) == (rid, reply["seq"])
    with rt.transaction() as s:
        listed = attachments.of_requests(session=s, request_ids=[rid, rid + 1], public_only=False)
        public = attachments.of_requests(session=s, request_ids=[rid], public_only=True)
    assert [a.id for a in listed[rid]] == [report["id"]] and listed[rid + 1] == []
    assert listed[rid][0].url == f"/api/v1/attachments/{report['id']}"
    assert public[rid] == []  # uploaded by staff: internal


def test_someone_elses_attachment_cannot_be_bound(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = _submit(client, world, []).json()["id"]
    assert _act(client, world, "gxj", rid, "sign").status_code == 200
    theirs = uploaded(client, world, "street", samples.pdf())
    with nothing_written(rt):
        r = _act(
            client,
            world,
            "gxj",
            rid,
            "reply",
            content="好",
            resolved=True,
            attachment_ids=[theirs["id"]],
        )
    body = assert_problem(r, 422, "attachment_ids")
    assert body["code"] == "unknown_reference" and body["kind"] == "attachment"
    assert body["codes"] == [str(theirs["id"])] and body["field"] == "attachment_ids"
    assert _bound(rt, theirs["id"]) == (None, None)


def test_an_attachment_binds_to_one_request_once(
    client: TestClient, world: World, rt: Runtime
) -> None:
    photo = uploaded(client, world, "integration", samples.png())
    first = _submit(client, world, [photo["id"]]).json()
    with nothing_written(rt):
        r = _submit(client, world, [photo["id"]], title="另一件事")
    assert_problem(r, 422, "attachment_ids", str(photo["id"]))
    # nor again on the same request
    assert _act(client, world, "gxj", first["id"], "sign").status_code == 200
    r = client.post(
        f"{REQUESTS}/{first['id']}/actions/reply",
        json={"content": "好", "resolved": True, "attachment_ids": [photo["id"]]},
        headers=world.h("gxj"),
    )
    assert_problem(r, 422, "attachment_ids")
    assert _bound(rt, photo["id"]) == (first["id"], 1)


def test_unknown_or_repeated_ids_are_refused(client: TestClient, world: World, rt: Runtime) -> None:
    photo = uploaded(client, world, "integration", samples.png())
    with nothing_written(rt):
        assert_problem(_submit(client, world, [photo["id"] + 50]), 422, "attachment_ids")
        assert_problem(_submit(client, world, [photo["id"], photo["id"]]), 422, "twice")


def test_a_request_holds_at_most_max_per_request(
    client: TestClient, world: World, rt: Runtime
) -> None:
    ids = [uploaded(client, world, "integration", samples.png())["id"] for _ in range(2)]
    rid = _submit(client, world, ids).json()["id"]
    assert _act(client, world, "gxj", rid, "sign").status_code == 200
    more = [uploaded(client, world, "gxj", samples.pdf())["id"] for _ in range(2)]
    with nothing_written(rt):
        r = _act(
            client, world, "gxj", rid, "reply", content="好", resolved=True, attachment_ids=more
        )
    assert_problem(r, 422, "attachment_ids", f"at most {MAX_PER_REQUEST}")
    r = _act(
        client, world, "gxj", rid, "reply", content="好", resolved=True, attachment_ids=more[:1]
    )
    assert r.status_code == 200, r.text
