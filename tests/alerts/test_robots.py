"""Group robots (issue 15): each platform's message and signature as the platform checks it,
the error code in a 200 as a failed attempt, the minute's limit folding a burst into one
digest (nothing lost, order kept), the robot URL and secret rules, and the test message."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from huying.alerts import delivery, robots, service
from huying.alerts.schemas import WebhookIn
from huying.clock import FrozenClock
from huying.errors import InvalidInput
from huying.runtime import Runtime
from tests.alerts.conftest import deliveries, emit, new_requests
from tests.alerts.receivers import Robot
from tests.conftest import World

WECOM = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7a1c-4bc4-97a0-0ec2sifa5aaa"
DINGTALK = "https://oapi.dingtalk.com/robot/send?access_token=9f8e7d6c5b4a"
FEISHU = "https://open.feishu.cn/open-apis/bot/v2/hook/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
URLS = {"wecom": WECOM, "dingtalk": DINGTALK, "feishu": FEISHU}
SECRETS = {"wecom": "", "dingtalk": "SEC" + "ab12" * 16, "feishu": "fs-secret-42"}
LEADER = {
    "name": "陈局长",
    "title": "局长",
    "phone": "13800000001",
    "role": "department_head",
    "department": "GXJ",
    "department_name": "区工信局",
}


def robot_subscribe(rt: Runtime, fmt: str, *patterns: str, secret: str | None = None) -> int:
    data = WebhookIn(
        url=URLS[fmt],
        event_types=list(patterns or ("*",)),
        format=fmt,
        secret=(SECRETS[fmt] if secret is None else secret) or None,
    )
    with rt.transaction() as s:
        return service.subscribe(rt=rt, session=s, data=data, now=rt.now()).id


def escalate(rt: Runtime, request_id: int, *, level: int = 2, late: timedelta) -> str:
    """A `request.escalated` event as the deadline firing writes it, `late` past the reply
    deadline."""
    due = rt.now() - late
    return emit(
        rt,
        "request.escalated",
        request_id,
        request={"id": request_id, "number": "", "lead_department": "GXJ"},
        deadline="reply",
        due_at=due.isoformat(),
        level=level,
        rung=level,
        notify=[{"role": "department_head", "leaders": [LEADER]}],
    )


def run_robot(rt: Runtime, clock: FrozenClock, http: httpx.Client, *, ticks: int = 400) -> int:
    """Worker ticks, the clock one second on after each (a robot gets one message an
    instant), until nothing is pending. Returns the messages sent."""
    sent = 0
    for _ in range(ticks):
        sent += delivery.tick(rt, client=http, now=clock.now())
        if all(d.status != "pending" for d in deliveries(rt)):
            return sent
        clock.advance(timedelta(seconds=1))
    raise AssertionError("still pending")


@pytest.fixture
def rid(api: TestClient, world: World) -> int:
    (request_id,) = new_requests(api, world, 1)
    return request_id


@pytest.mark.parametrize("fmt", ["wecom", "dingtalk", "feishu"])
def test_an_escalation_as_each_platform_shows_it(
    rt: Runtime, clock: FrozenClock, rid: int, fmt: str
) -> None:
    robot_subscribe(rt, fmt, "request.escalated")
    escalate(rt, rid, late=timedelta(hours=2, minutes=5))
    robot = Robot(clock, fmt, SECRETS[fmt])
    with robot.client() as http:
        assert run_robot(rt, clock, http) == 1
    (body,) = robot.taken()
    (text,) = robot.texts()
    for said in (
        "升级·2级",
        "新厂房用电增容",  # the title
        "北京示例科技有限公司",  # the enterprise
        "区工信局",  # the lead department
        "答复时限",
        "已超期 2小时05分",
        "陈局长（局长）",
        f"http://127.0.0.1:8000/requests/{rid}",
        "呼应",
    ):
        assert said in text, (said, text)
    if fmt == "wecom":
        assert body["msgtype"] == "text"
        assert body["text"]["mentioned_mobile_list"] == ["13800000001"]
    elif fmt == "dingtalk":
        assert body["msgtype"] == "markdown" and body["markdown"]["title"].startswith(
            "【升级·2级】"
        )
        assert body["at"] == {"atMobiles": ["13800000001"], "isAtAll": False}
        assert "@13800000001" in text  # DingTalk shows the mention only if the text has it
    else:
        assert body["msg_type"] == "text" and set(body) == {
            "msg_type",
            "content",
            "timestamp",
            "sign",
        }
    (d,) = deliveries(rt)
    assert (d.status, d.attempts, d.last_status_code) == ("delivered", 1, 200)


@pytest.mark.parametrize(("fmt", "code"), [("dingtalk", 310000), ("feishu", 19021)])
def test_a_wrong_secret_is_refused_in_a_200_and_retried(
    rt: Runtime, clock: FrozenClock, rid: int, fmt: str, code: int
) -> None:
    robot_subscribe(rt, fmt, "request.*", secret=SECRETS[fmt])
    escalate(rt, rid, late=timedelta(hours=1))
    robot = Robot(clock, fmt, secret=SECRETS[fmt][:-1] + "X")  # the group has another secret
    with robot.client() as http:
        delivery.tick(rt, client=http, now=clock.now())
    (d,) = deliveries(rt)
    assert (d.status, d.attempts, d.last_status_code) == ("pending", 1, 200)
    assert d.last_error is not None and d.last_error.startswith(f"robot error {code}")
    assert d.next_attempt_at == clock.now() + delivery.backoff(1)
    robot.secret = SECRETS[fmt]  # the admin fixed the robot's settings
    with robot.client() as http:
        run_robot(rt, clock, http)
    assert len(robot.taken()) == 1 and deliveries(rt)[0].status == "delivered"


def test_an_unsigned_message_to_a_signing_robot_is_refused(
    rt: Runtime, clock: FrozenClock, rid: int
) -> None:
    robot_subscribe(rt, "dingtalk", "*", secret="")  # subscribed without the secret
    escalate(rt, rid, late=timedelta(hours=1))
    robot = Robot(clock, "dingtalk", SECRETS["dingtalk"])
    with robot.client() as http:
        delivery.tick(rt, client=http, now=clock.now())
    assert robot.taken() == [] and "310000" in (deliveries(rt)[0].last_error or "")


def test_a_burst_of_100_escalations_is_folded_nothing_lost_order_kept(
    api: TestClient, rt: Runtime, clock: FrozenClock, world: World
) -> None:
    ids = new_requests(api, world, 4)
    robot_subscribe(rt, "dingtalk", "request.escalated")
    uids = [
        escalate(rt, ids[i % 4], level=1 + i // 40, late=timedelta(minutes=i)) for i in range(100)
    ]
    robot = Robot(clock, "dingtalk", SECRETS["dingtalk"])
    with robot.client() as http:
        messages = run_robot(rt, clock, http)
    assert messages == 1  # more were due than the minute's 20: one digest
    (text,) = robot.texts()
    assert "共 100 条" in text and "每分钟超过 20 条" in text
    # every escalation is there, in the order it happened (each line ends with its lateness)
    lines = [line for line in text.splitlines() if line.startswith("- ") and "已超期" in line]
    assert len(lines) == 100
    assert [line.rsplit("已超期 ", 1)[1] for line in lines[:3]] == ["不足1分钟", "1分钟", "2分钟"]
    assert lines[-1].endswith("已超期 1小时39分")
    assert robot.taken()[0]["at"]["atMobiles"] == ["13800000001"]  # each leader once
    ds = deliveries(rt)
    assert len(ds) == len(uids) == 100
    assert {(d.status, d.attempts, d.delivered_at) for d in ds} == {("delivered", 1, clock.now())}


def test_the_minute_limit_then_a_digest_after_a_failure_all_retried_together(
    api: TestClient, rt: Runtime, clock: FrozenClock, world: World
) -> None:
    ids = new_requests(api, world, 30)
    robot_subscribe(rt, "wecom", "request.escalated")
    robot = Robot(clock, "wecom", refuse=lambda n: 45009 if n == 21 else 0)
    with robot.client() as http:
        # one a second: each alone while the minute has room
        for i, request_id in enumerate(ids[:20]):
            escalate(rt, request_id, late=timedelta(minutes=i))
            delivery.tick(rt, client=http, now=clock.now())
            clock.advance(timedelta(seconds=1))
        assert len(robot.taken()) == 20
        # the minute is full: the next ten wait for its first slot, then go as one digest
        start = clock.now()
        for request_id in ids[20:]:
            escalate(rt, request_id, late=timedelta(hours=1))
        delivery.tick(rt, client=http, now=clock.now())
        assert len(robot.calls) == 20
        waiting = [d for d in deliveries(rt) if d.status == "pending"]
        assert len(waiting) == 10 and {d.attempts for d in waiting} == {0}
        first_slot = min(w for w in (d.next_attempt_at for d in waiting) if w is not None)
        assert first_slot == start - timedelta(seconds=20) + timedelta(minutes=1)
        clock.set(first_slot)
        delivery.tick(rt, client=http, now=clock.now())  # refused (45009): all ten retried
        assert len(robot.calls) == 21
        waiting = [d for d in deliveries(rt) if d.status == "pending"]
        assert len(waiting) == 10 and {d.attempts for d in waiting} == {1}
        assert {d.last_error for d in waiting} == {
            "robot error 45009: the robot's rate limit was exceeded"
        }
        run_robot(rt, clock, http)
    texts = robot.texts()
    assert len(texts) == 21 and "共 10 条" in texts[-1]
    assert all(d.status == "delivered" for d in deliveries(rt))


def test_order_per_request_across_robot_messages(rt: Runtime, clock: FrozenClock, rid: int) -> None:
    robot_subscribe(rt, "feishu", "*", secret="")
    first = emit(rt, "request.warning", rid, deadline="reply", due_at=clock.now().isoformat())
    second = emit(rt, "request.overdue", rid, deadline="reply", due_at=clock.now().isoformat())
    robot = Robot(clock, "feishu", refuse=lambda n: 9499 if n == 1 else 0)
    with robot.client() as http:
        run_robot(rt, clock, http)
    texts = robot.texts()
    assert [t.splitlines()[0][:4] for t in texts] == ["【预警】", "【超期】"]
    assert first and second and len(robot.calls) == 3  # the first failed once, was sent again


def test_generic_events_get_a_short_line(rt: Runtime, clock: FrozenClock, rid: int) -> None:
    robot_subscribe(rt, "wecom", "request.dispatched")
    emit(rt, "request.dispatched", rid, lead_department="GXJ")
    robot = Robot(clock, "wecom")
    with robot.client() as http:
        run_robot(rt, clock, http)
    (text,) = robot.texts()
    assert (
        text.splitlines()[0].startswith("【自动派单】") and "（区工信局）" in text.splitlines()[0]
    )


@pytest.mark.parametrize(
    ("fmt", "url", "where"),
    [
        ("wecom", "https://hooks.example/in", "qyapi.weixin.qq.com"),
        ("wecom", DINGTALK, "qyapi.weixin.qq.com"),
        ("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send", "carries its key"),
        ("wecom", "http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=a", "https://"),
        ("dingtalk", "https://oapi.dingtalk.com/robot/send", "access_token"),
        ("feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/", "path"),
    ],
)
def test_robot_urls_are_checked(rt: Runtime, fmt: str, url: str, where: str) -> None:
    data = WebhookIn.model_validate({"url": url, "event_types": ["*"], "format": fmt})
    with pytest.raises(InvalidInput) as refused, rt.transaction() as s:
        service.subscribe(rt=rt, session=s, data=data, now=rt.now())
    assert where in refused.value.detail and refused.value.extra["field"] == "url"


def test_a_private_robot_host_is_taken_when_configured() -> None:
    private = {"wecom": ("wx.gov.example.cn",)}
    assert robots.url_problem("wecom", "http://wx.gov.example.cn/any/path", private) is None
    assert robots.url_problem("dingtalk", "http://wx.gov.example.cn/any/path", private)


@pytest.mark.parametrize(
    ("fmt", "secret", "ok"),
    [
        ("wecom", "anything", False),
        ("dingtalk", "SEC" + "a" * 20, True),
        ("dingtalk", "a" * 23, False),
        ("feishu", "abc", True),
        ("feishu", "有 空格", False),
        ("standard", "whsec_x", False),
    ],
)
def test_secrets_by_format(fmt: str, secret: str, ok: bool) -> None:
    assert (robots.secret_problem(fmt, secret) is None) is ok


def test_signatures_as_the_platforms_document_them() -> None:
    """DingTalk: quote_plus(base64(HMAC-SHA256(key=secret, msg=f"{ms}\\n{secret}")));
    Feishu: base64(HMAC-SHA256(key=f"{s}\\n{secret}", msg=b"")). Written out here apart
    from huying.alerts.robots."""
    import base64
    import hashlib
    import hmac
    from urllib.parse import quote_plus

    secret, ms = "SEC" + "ab12" * 16, 1700000000123
    digest = hmac.new(secret.encode(), f"{ms}\n{secret}".encode(), hashlib.sha256).digest()
    assert robots.dingtalk_sign(secret, ms) == quote_plus(base64.b64encode(digest).decode())
    key = f"{ms // 1000}\n{secret}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert robots.feishu_sign(secret, ms // 1000) == expected


@pytest.fixture
def robot_api(api: TestClient, clock: FrozenClock) -> Iterator[tuple[TestClient, Robot]]:
    robot = Robot(clock, "feishu", SECRETS["feishu"])

    def client() -> Iterator[httpx.Client]:
        with robot.client() as c:
            yield c

    app: Any = api.app
    app.dependency_overrides[delivery.one_off_client] = client
    yield api, robot
    app.dependency_overrides.clear()


def test_the_test_message_api(
    robot_api: tuple[TestClient, Robot], world: World, rt: Runtime
) -> None:
    api, robot = robot_api
    r = api.post(
        "/api/v1/webhooks",
        json={"url": FEISHU, "event_types": ["*"], "format": "feishu", "secret": SECRETS["feishu"],
              "description": "区督查室"},
        headers=world.h("admin"),
    )  # fmt: skip
    assert r.status_code == 201 and r.json()["format"] == "feishu"
    hook = r.json()["id"]
    r = api.post(f"/api/v1/webhooks/{hook}/test", headers=world.h("admin"))
    assert r.json() == {"ok": True, "status_code": 200, "error": None}
    assert "测试消息" in robot.texts()[0] and "区督查室" in robot.texts()[0]
    robot.refuse = lambda n: 19024
    r = api.post(f"/api/v1/webhooks/{hook}/test", headers=world.h("admin"))
    assert r.json()["ok"] is False and r.json()["error"].startswith("robot error 19024")
    assert deliveries(rt) == []  # nothing queued
    assert api.post("/api/v1/webhooks/999/test", headers=world.h("admin")).status_code == 404
    api.delete(f"/api/v1/webhooks/{hook}", headers=world.h("admin"))
    assert api.post(f"/api/v1/webhooks/{hook}/test", headers=world.h("admin")).status_code == 409


def test_digest_is_cut_to_the_platform_size_and_counts_the_rest() -> None:
    from huying.alerts.messages import Notice, digest

    notices = [
        Notice(
            f"【升级·1级】HY-{i:04d}「很长的标题" + "字" * 40 + "」",
            (),
            "",
            (),
            f"【升级·1级】HY-{i:04d}「" + "字" * 40 + "」",
        )
        for i in range(100)
    ]
    prepared = robots.prepare(
        "wecom", WECOM, None, digest(notices, limit_note="合并"), now_ms=0, fallback_link="L"
    )
    content = prepared.body.decode()
    assert len(content.encode()) < 2048 + 200
    assert "另有" in content and "未列出" in content
