"""The enterprise's receipt page (回执, DESIGN.md part two): `/r/{token}` from the submit's
`receipt_url`, no login, the public view only, and once replied the enterprise's own
answer to 是否解决 with its rating, which closes or reopens the request like an
integration's `rate`.

tests/world.yaml routes POWER to 区工信局 (GXJ) at once. Dates: submitted Wednesday
2026-11-18 10:00 Shanghai; sign due Thursday 17:30 (1 working day); signed at once, the
reply is due Wednesday 2026-11-25 17:30 (5 working days); replied at once, the rating is due
Monday 2026-11-23 17:30 (3 working days)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from huying.app import create_app
from huying.clock import FrozenClock
from huying.requests.models import Request, TimelineEntry
from huying.runtime import Runtime
from huying.web import receipt
from tests.attachments import samples
from tests.conftest import World
from tests.requests.many_hands import act, submit

REPLY = "已协调供电局出具增容方案，两周内完成线路改造"
URGE_NOTE = "请加快办理，企业反映强烈"  # internal: never on the receipt
SUPERVISION_NOTE = "列入区政府重点督办事项"
SECURITY = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-robots-tag": "noindex",
}


@pytest.fixture
def client(rt: Runtime, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(rt)) as c:
        yield c


def receipt_path(answer: dict[str, Any]) -> str:
    """The path of the submit's `receipt_url` (`server.public_url` + /r/{token})."""
    url: str = answer["receipt_url"]
    assert url.startswith("http://127.0.0.1:8000/r/"), url
    return urlsplit(url).path


def new_request(client: TestClient, world: World, **over: Any) -> tuple[int, str]:
    answer = submit(client, world, **over)
    return answer["id"], receipt_path(answer)


def replied(client: TestClient, world: World, content: str = REPLY) -> tuple[int, str]:
    rid, path = new_request(client, world)
    act(client, world, "gxj", rid, "sign")
    act(client, world, "gxj", rid, "reply", content=content, resolved=True)
    return rid, path


def form_of(client: TestClient, path: str) -> dict[str, str]:
    """The hidden fields of the page's rating form (the form token, the version shown)."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    fields = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', page.text))
    assert set(fields) == {"csrf", "version"}, "no rating form on the page"
    return fields


def rate(client: TestClient, path: str, **fields: str) -> Any:
    return client.post(path, data={**form_of(client, path), **fields}, follow_redirects=False)


def stored(rt: Runtime, rid: int) -> tuple[str, int, int]:
    """(state, version, timeline rows) of the request: what a refused form must not move."""
    with rt.transaction() as s:
        req = s.get(Request, rid)
        assert req is not None
        rows = s.scalar(
            select(func.count()).select_from(TimelineEntry).where(TimelineEntry.request_id == rid)
        )
        return req.state, req.version, int(rows or 0)


def has_form(html: str) -> bool:
    return 'name="rating"' in html


# --- the page in each state ----------------------------------------------------------


def test_dispatched_shows_where_it_is_who_handles_it_and_the_sign_deadline(
    client: TestClient, world: World
) -> None:
    _, path = new_request(client, world)
    page = client.get(path)
    assert page.status_code == 200
    html = page.text
    assert "HY-20261118-000001" in html and "新厂房用电增容" in html
    assert "待签收" in html
    assert "区工信局" in html
    assert "承办部门应于 2026-11-19 周四 17:30 前签收" in html
    assert "诉求已提交" in html and "已分派至区工信局办理" in html
    assert not has_form(html)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "https://" not in html and "//cdn" not in html  # nothing from elsewhere


def test_in_progress_shows_the_reply_deadline_in_working_days(
    client: TestClient, world: World
) -> None:
    rid, path = new_request(client, world)
    act(client, world, "gxj", rid, "sign")
    html = client.get(path).text
    assert "办理中" in html
    assert "承办部门应于 2026-11-25 周三 17:30 前答复（5 个工作日内答复）" in html
    assert "承办部门已签收，正在办理" in html
    assert not has_form(html)


def test_awaiting_dispatch_and_rejected(client: TestClient, world: World) -> None:
    rid, path = new_request(client, world, category="OTHER")  # no routing rule: the queue
    html = client.get(path).text
    assert "待派单" in html and "已受理，等待派单" in html
    act(client, world, "dispatcher", rid, "reject", reason="不属于企业诉求受理范围")
    html = client.get(path).text
    assert "不予受理" in html and "不属于企业诉求受理范围" in html
    assert not has_form(html)


def test_replied_shows_the_reply_and_the_rating_form_but_nothing_internal(
    client: TestClient, world: World
) -> None:
    rid, path = new_request(client, world)
    act(client, world, "gxj", rid, "sign")
    act(client, world, "supervisor", rid, "urge", note=URGE_NOTE)
    act(client, world, "supervisor", rid, "supervise", note=SUPERVISION_NOTE)
    act(client, world, "gxj", rid, "reply", content=REPLY, resolved=True)
    html = client.get(path).text
    assert "已答复" in html and REPLY in html and "承办部门已答复" in html
    assert "请于 2026-11-23 周一 17:30 前评价" in html
    assert has_form(html)
    for label in ("已解决", "未解决", "非常满意", "满意", "基本满意", "不满意", "非常不满意"):
        assert f"<span>{label}</span>" in html, label
    for internal in (URGE_NOTE, SUPERVISION_NOTE, "陈局长", "督办", "催办", "萝岗街道"):
        assert internal not in html, internal  # no notes, leaders, supervision or co-handling


# --- rating through the form ------------------------------------------------------------


def test_a_satisfied_rating_closes_it_and_the_form_is_gone(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid, path = replied(client, world)
    r = rate(client, path, resolved="true", rating="satisfied", note="  办理及时  ")
    assert r.status_code == 303
    assert r.headers["location"] == f"{path}?rated=closed"
    page = client.get(r.headers["location"])
    assert "感谢您的评价，诉求已办结。" in page.text
    assert "已办结" in page.text and "评价：满意，已解决" in page.text and "办理及时" in page.text
    assert not has_form(page.text)
    with rt.transaction() as s:
        req = s.get(Request, rid)
        assert req is not None
        assert (req.state, req.rating, req.enterprise_resolved) == ("closed", "satisfied", True)
        last = s.scalars(
            select(TimelineEntry)
            .where(TimelineEntry.request_id == rid)
            .order_by(TimelineEntry.seq.desc())
        ).first()
        assert last is not None
        assert (last.action, last.actor, last.role) == ("rate", f"receipt:{rid}", "integration")
        assert last.note == "办理及时"

    # the same form sent again (a second tap, a page kept open): rated once, nothing to rate
    before = stored(rt, rid)
    fields = {"resolved": "false", "rating": "very_dissatisfied", "version": str(before[1])}
    again = client.post(path, data={"csrf": client.cookies["huying_receipt"], **fields})
    assert again.status_code == 409 and "当前无需评价" in again.text
    assert stored(rt, rid) == before


def test_an_unsatisfied_rating_reopens_it_and_the_next_reply_is_rated_again(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid, path = replied(client, world)
    r = rate(client, path, resolved="false", rating="dissatisfied", note="周期太长")
    assert r.headers["location"] == f"{path}?rated=reopened"
    page = client.get(r.headers["location"])
    assert "诉求已退回承办部门重新办理" in page.text
    assert "办理中" in page.text and "评价：不满意，未解决" in page.text
    assert not has_form(page.text)
    with rt.transaction() as s:
        req = s.get(Request, rid)
        assert req is not None
        assert (req.state, req.reopen_count, req.enterprise_resolved) == ("in_progress", 1, None)

    act(client, world, "gxj", rid, "reply", content="已压缩至 10 个工作日", resolved=True)
    assert has_form(client.get(path).text)
    assert rate(client, path, resolved="true", rating="very_satisfied").status_code == 303
    assert stored(rt, rid)[0] == "closed"


# --- refused forms: nothing written --------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"rating": "satisfied"}, "请选择问题是否已解决。"),
        ({"resolved": "maybe", "rating": "satisfied"}, "请选择问题是否已解决。"),
        ({"resolved": "true"}, "请选择满意程度。"),
        ({"resolved": "true", "rating": "excellent"}, "请选择满意程度。"),
        ({"resolved": "true", "rating": "satisfied", "note": "长" * 2001}, "意见请勿超过 2000 字"),
    ],
)
def test_bad_input_shows_the_page_again_with_the_field_s_error(
    client: TestClient, world: World, rt: Runtime, fields: dict[str, str], said: str
) -> None:
    rid, path = replied(client, world)
    before = stored(rt, rid)
    r = rate(client, path, **fields)
    assert r.status_code == 422
    assert said in r.text
    assert has_form(r.text)  # to correct and send again, with what was chosen kept
    for value in fields.values():
        if value in ("satisfied", "true"):
            assert f'value="{value}" required checked' in r.text
    assert stored(rt, rid) == before


def test_a_form_without_its_token_is_refused(client: TestClient, world: World, rt: Runtime) -> None:
    rid, path = replied(client, world)
    before = stored(rt, rid)
    fields = {**form_of(client, path), "resolved": "true", "rating": "satisfied"}
    forged = client.post(path, data={**fields, "csrf": "x" * 43})
    assert forged.status_code == 403 and "页面已过期" in forged.text
    client.cookies.clear()  # another site's page: the browser sends no cookie of ours
    assert client.post(path, data=fields).status_code == 403
    assert stored(rt, rid) == before


def test_a_page_shown_before_a_change_does_not_rate_after_it(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid, path = replied(client, world)
    fields = {**form_of(client, path), "resolved": "true", "rating": "satisfied"}
    act(client, world, "supervisor", rid, "urge", note=URGE_NOTE)  # the version moves on
    before = stored(rt, rid)
    r = client.post(path, data=fields)
    assert r.status_code == 409 and "刚刚有了新进展" in r.text
    assert stored(rt, rid) == before


# --- tokens, limits, headers ------------------------------------------------------------------


def test_unknown_and_malformed_tokens_get_the_same_404(client: TestClient, world: World) -> None:
    _, path = new_request(client, world)
    token = path.removeprefix("/r/")
    near = token[:-1] + ("A" if token[-1] != "A" else "B")
    bodies = set()
    for bad in (near, "A" * 22, "short", "x" * 200, "%E4%B8%AD" * 3, token.upper()):
        for r in (
            client.get(f"/r/{bad}"),
            client.post(f"/r/{bad}", data={"csrf": "x"}),
            client.get(f"/r/{bad}/files/1"),
        ):
            assert r.status_code == 404, bad
            assert "找不到该回执" in r.text
            assert {k: r.headers[k] for k in SECURITY} == SECURITY
            bodies.add(r.text)
    for elsewhere in ("/r/", f"{path}/more", f"{path}/files/x", f"{path}/files/{'9' * 30}"):
        r = client.get(elsewhere)
        assert r.status_code == 404, elsewhere
        bodies.add(r.text)
    assert len(bodies) == 1  # nothing tells one kind of bad token from another


def test_every_answer_keeps_the_token_to_itself(client: TestClient, world: World) -> None:
    _, path = replied(client, world)
    page = client.get(path)
    assert {k: page.headers[k] for k in SECURITY} == SECURITY
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Path=/r/" in cookie and "SameSite=strict" in cookie
    refused = rate(client, path, resolved="true")
    assert refused.status_code == 422
    assert {k: refused.headers[k] for k in SECURITY} == SECURITY
    done = rate(client, path, resolved="true", rating="satisfied")
    assert done.status_code == 303
    assert {k: done.headers[k] for k in SECURITY} == SECURITY


def test_past_the_limit_a_client_waits(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    _, path = new_request(client, world)
    for _ in range(receipt.RATE_LIMIT - 1):
        assert client.get(path).status_code == 200
    assert client.get("/r/" + "A" * 22).status_code == 404  # bad tokens count too
    clock.advance(timedelta(seconds=20))
    r = client.get(path)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "40"  # the first of the minute's requests leaves then
    assert "访问过于频繁，请 40 秒后再试" in r.text
    assert {k: r.headers[k] for k in SECURITY} == SECURITY
    assert client.post(path, data={}).status_code == 429
    clock.advance(timedelta(seconds=40))
    assert client.get(path).status_code == 200


def test_the_throttle_counts_each_client_on_its_own(clock: FrozenClock) -> None:
    throttle = receipt.Throttle(limit=2, max_clients=4)
    now = clock.now()
    assert [throttle.wait("a", now) for _ in range(3)] == [0, 0, 60]
    assert throttle.wait("b", now) == 0  # another address: its own count
    assert throttle.wait("a", now + timedelta(seconds=59)) == 1
    assert throttle.wait("a", now + timedelta(seconds=60)) == 0  # a new minute
    for n, client in enumerate("cde", start=1):
        assert throttle.wait(client, now + timedelta(seconds=60 + n)) == 0
    # five addresses, past max_clients: the two seen last are kept, the rest forgotten
    assert throttle.clients == 2
    later = now + timedelta(seconds=64)
    assert [throttle.wait("e", later) for _ in range(2)] == [0, 59]  # e's count was kept
    assert throttle.wait("b", later) == 0


# --- public attachments -------------------------------------------------------------------------


def test_public_attachments_are_shown_and_internal_ones_are_not(
    client: TestClient, world: World
) -> None:
    def upload(who: str, name: str, visibility: str) -> int:
        r = client.post(
            "/api/v1/attachments",
            files={"file": (name, samples.png(), "application/octet-stream")},
            data={"visibility": visibility},
            headers=world.h(who),
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    photo = upload("integration", "现场照片.png", "public")
    rid, path = new_request(client, world, attachment_ids=[photo])
    act(client, world, "gxj", rid, "sign")
    proof = upload("gxj", "整改佐证.png", "public")
    memo = upload("gxj", "内部签报.png", "internal")
    act(
        client,
        world,
        "gxj",
        rid,
        "reply",
        content=REPLY,
        resolved=True,
        attachment_ids=[proof, memo],
    )
    html = client.get(path).text
    assert "现场照片.png" in html and "整改佐证.png" in html
    assert "内部签报.png" not in html
    assert f'<img src="{path}/files/{proof}"' in html

    got = client.get(f"{path}/files/{proof}")
    assert got.status_code == 200 and got.content == samples.png()
    assert got.headers["content-type"] == "image/png"
    assert {k: got.headers[k] for k in SECURITY} == SECURITY
    assert client.get(f"{path}/files/{memo}").status_code == 404
    _, other = new_request(client, world)
    assert client.get(f"{other}/files/{proof}").status_code == 404  # another request's
