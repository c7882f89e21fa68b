"""Public webhooks: a subscription with `view: public` stands for someone outside the offices
(the grid system, the enterprise's own channel). It receives only the events of public
timeline entries, as the workflow file marks them, each reduced to the public fields: no
leaders notified, no internal notes, no escalation level or overdue mark. A full
subscription keeps receiving every event as written.

tests/world.yaml routes POWER to 区工信局 (GXJ) at once, with 萝岗街道 (STREET) assisting;
`workflow_rules.reopen_limit` is 1, so a second unsatisfied rating closes the request
unresolved and escalates it."""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from huying.alerts import public, service
from huying.alerts.models import Event
from huying.alerts.schemas import WebhookCreated, WebhookIn
from huying.clock import FrozenClock
from huying.runtime import Runtime
from tests.alerts.conftest import run_worker
from tests.conftest import World
from tests.requests.many_hands import act, submit

FULL_URL, PUBLIC_URL = "https://full.example/in", "https://public.example/in"
REPLY = "已协调供电局出具增容方案"
URGE_NOTE = "请加快办理，企业反映强烈"
SUPERVISION_NOTE = "列入区政府重点督办事项"
EXTENSION_REASON = "需等待供电局现场勘查"
INTERNAL_EVENTS = {
    "request.urged",
    "request.supervised",
    "request.escalated",
    "request.extension_requested",
}


def subscribe(rt: Runtime, url: str, view: str) -> WebhookCreated:
    data = WebhookIn.model_validate({"url": url, "event_types": ["*"], "view": view})
    with rt.transaction() as s:
        return service.subscribe(rt=rt, session=s, data=data, now=rt.now())


def live(api: TestClient, world: World) -> int:
    """A POWER request through sign, an urge and a supervision, an extension asked and
    approved, a reply, an unsatisfied rating (reopened), a second reply and a second
    unsatisfied rating (closed unresolved, escalated)."""
    rid: int = submit(api, world)["id"]
    act(api, world, "gxj", rid, "sign")
    act(api, world, "supervisor", rid, "urge", note=URGE_NOTE)
    act(api, world, "supervisor", rid, "supervise", note=SUPERVISION_NOTE)
    act(
        api,
        world,
        "gxj",
        rid,
        "request_extension",
        extend_by="2 working days",
        reason=EXTENSION_REASON,
    )
    act(api, world, "supervisor", rid, "decide_extension", approved=True)
    act(api, world, "gxj", rid, "reply", content=REPLY, resolved=True)
    rating = {"rating": "dissatisfied", "resolved": False, "note": "周期太长"}
    act(api, world, "integration", rid, "rate", **rating)
    act(api, world, "gxj", rid, "reply", content="已压缩工期", resolved=True)
    act(api, world, "integration", rid, "rate", **rating)
    return rid


def sent(rt: Runtime, clock: FrozenClock) -> dict[str, list[dict[str, Any]]]:
    """What the worker POSTs to each subscription's URL, in the order it arrives, as JSON
    (over a mock transport that answers 200)."""
    by_url: dict[str, list[dict[str, Any]]] = {FULL_URL: [], PUBLIC_URL: []}

    def receive(request: httpx.Request) -> httpx.Response:
        by_url[str(request.url)].append(json.loads(request.content))
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(receive)) as http:
        run_worker(rt, clock, http)
    return by_url


def test_a_public_subscription_gets_only_the_public_entries_events(
    rt: Runtime, api: TestClient, world: World, clock: FrozenClock
) -> None:
    subscribe(rt, FULL_URL, "full")
    subscribe(rt, PUBLIC_URL, "public")
    live(api, world)
    messages = sent(rt, clock)
    full = [m["type"] for m in messages[FULL_URL]]
    shown = [m["type"] for m in messages[PUBLIC_URL]]
    assert set(full) >= INTERNAL_EVENTS
    assert shown == [
        "request.dispatched",
        "request.signed",
        "request.extension_decided",
        "request.replied",
        "request.rated",
        "request.reopened",
        "request.replied",
        "request.rated",
        "request.closed",
    ]
    assert [t for t in full if t not in INTERNAL_EVENTS and not t.startswith("request.task")] == (
        shown
    )
    # the same messages: one webhook-id each, whoever receives them
    full_ids = {m["id"] for m in messages[FULL_URL]}
    assert {m["id"] for m in messages[PUBLIC_URL]} <= full_ids


def test_a_public_message_carries_the_public_fields_only(
    rt: Runtime, api: TestClient, world: World, clock: FrozenClock
) -> None:
    subscribe(rt, FULL_URL, "full")
    subscribe(rt, PUBLIC_URL, "public")
    live(api, world)
    messages = sent(rt, clock)
    text = json.dumps(messages[PUBLIC_URL], ensure_ascii=False)
    for withheld in (
        "notify",
        "escalation_level",
        "overdue",
        "level",
        "co_departments",
        "requested",
        "reopen_count",
        URGE_NOTE,
        SUPERVISION_NOTE,
        EXTENSION_REASON,
        "陈局长",
        "STREET",
    ):
        assert withheld not in text, withheld
    for m in messages[PUBLIC_URL]:
        assert set(m) == {"id", "type", "occurred_at", "data"}
        assert set(m["data"]) <= public.DATA_FIELDS | {"request"}, m
        assert tuple(m["data"]["request"]) == public.REQUEST_FIELDS, m
    by_type = {m["type"]: m["data"] for m in messages[PUBLIC_URL]}
    assert by_type["request.dispatched"]["lead_department"] == "GXJ"
    assert by_type["request.extension_decided"]["extend_by"] == "2 working days"
    replied = [m["data"] for m in messages[PUBLIC_URL] if m["type"] == "request.replied"]
    assert replied[0]["note"] == REPLY and replied[0]["resolved"] is True
    rated = by_type["request.rated"]
    assert (rated["rating"], rated["resolved"], rated["note"]) == (
        "dissatisfied",
        False,
        "周期太长",
    )
    assert rated["request"]["state"] == "closed"

    # the full view of the same rating: the level it reached, the summary's marks
    full = [m["data"] for m in messages[FULL_URL] if m["type"] == "request.rated"][-1]
    assert full["level"] >= 1 and "escalation_level" in full["request"]


def test_the_outbox_marks_which_events_are_public(
    rt: Runtime, api: TestClient, world: World
) -> None:
    rid = live(api, world)
    with rt.transaction() as s:
        marks = {
            (e.type, e.public) for e in s.scalars(select(Event).where(Event.request_id == rid))
        }
    assert ("request.signed", True) in marks
    assert ("request.rated", True) in marks
    assert ("request.escalated", False) in marks  # fired by the public rating, yet internal
    assert ("request.urged", False) in marks
    assert ("request.extension_requested", False) in marks


def test_the_view_is_set_and_shown_by_the_api(api: TestClient, world: World) -> None:
    hooks = "/api/v1/webhooks"
    body = {"url": PUBLIC_URL, "event_types": ["request.*"]}
    made = api.post(hooks, json={**body, "view": "public"}, headers=world.h("admin"))
    assert made.status_code == 201, made.text
    assert made.json()["view"] == "public"
    plain = api.post(hooks, json=body, headers=world.h("admin"))
    assert plain.json()["view"] == "full"
    listed = api.get(hooks, headers=world.h("admin")).json()
    assert [h["view"] for h in listed] == ["public", "full"]
    bad = api.post(hooks, json={**body, "view": "secret"}, headers=world.h("admin"))
    assert bad.status_code == 422
    assert len(api.get(hooks, headers=world.h("admin")).json()) == 2


def test_events_written_before_the_mark_are_not_sent_to_a_public_subscription(
    rt: Runtime, api: TestClient, world: World, clock: FrozenClock
) -> None:
    """An event that does not say it is public (one stored before the migration) is held
    back from public subscriptions: what cannot be judged is not sent."""
    subscribe(rt, PUBLIC_URL, "public")
    subscribe(rt, FULL_URL, "full")
    with rt.transaction() as s:
        s.add(
            Event(
                uid="msg_before",
                type="request.replied",
                occurred_at=rt.now(),
                data={"note": "旧事件"},
            )
        )
    messages = sent(rt, clock)
    assert [m["id"] for m in messages[FULL_URL]] == ["msg_before"]
    assert messages[PUBLIC_URL] == []


def test_public_data_keeps_named_fields_only() -> None:
    data = {
        "request": {"id": 1, "number": "HY-1", "state": "closed", "overdue": True},
        "note": "答复",
        "notify": [{"leaders": [{"name": "陈局长"}]}],
        "something_new": 1,
    }
    assert public.public_data(data) == {
        "request": {"id": 1, "number": "HY-1", "state": "closed"},
        "note": "答复",
    }
    assert public.receives("full", public_event=False)
    assert not public.receives("public", public_event=False)
    assert public.receives("public", public_event=True)
