"""The admin page Webhook 与投递 through the TestClient: admins only, CSRF, Chinese field errors
with nothing written, create (the secret once), pause and resume, event types, a test
message, and 重新投递."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from huying.alerts import delivery, service
from huying.alerts.models import Delivery, Event, WebhookSubscription
from huying.alerts.schemas import WebhookIn
from huying.audit.models import AuditEntry
from huying.auth.service import Principal
from huying.clock import FrozenClock
from huying.runtime import Runtime
from tests.alerts.receivers import Robot
from tests.web.conftest import console_app, csrf_in, login

PAGE = "/admin/webhooks"
WECOM = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7a1c-4bc4-97a0-0ec2sifa5aaa"


@pytest.fixture
def robot(clock: FrozenClock) -> Robot:
    return Robot(clock, "wecom")


@pytest.fixture
def admin(rt: Runtime, staff: dict[str, Principal], robot: Robot) -> Iterator[TestClient]:
    """The console signed in as the admin; test messages go to `robot`."""
    app = console_app(rt)

    def robot_client() -> Iterator[httpx.Client]:
        with robot.client() as c:
            yield c

    app.dependency_overrides[delivery.one_off_client] = robot_client
    with TestClient(app, raise_server_exceptions=True) as c:
        assert login(c, "admin").status_code == 303
        yield c


def subscriptions(rt: Runtime) -> list[WebhookSubscription]:
    with rt.transaction() as s:
        return list(s.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id)))


def audited(rt: Runtime, action: str) -> list[AuditEntry]:
    with rt.transaction() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def subscribe(rt: Runtime, url: str = "https://hooks.example/in", **kw: object) -> int:
    with rt.transaction() as s:
        data = WebhookIn.model_validate({"url": url, "event_types": ["*"], **kw})
        return service.subscribe(rt=rt, session=s, data=data, now=rt.now()).id


def post(c: TestClient, path: str, data: dict[str, object]) -> httpx.Response:
    csrf = csrf_in(c.get(PAGE).text)
    response: httpx.Response = c.post(path, data={"csrf": csrf, **data}, follow_redirects=False)
    return response


def test_only_admins(rt: Runtime, web: TestClient) -> None:
    subscribe(rt)
    for who in ("dispatcher", "supervisor", "gxj"):
        web.cookies.clear()
        login(web, who)
        r = web.get(PAGE)
        assert r.status_code == 403 and "无权访问" in r.text and "hooks.example" not in r.text


def test_csrf_is_checked(rt: Runtime, admin: TestClient) -> None:
    sub = subscribe(rt)
    r = admin.post(f"{PAGE}/{sub}/paused", data={"csrf": "forged", "paused": "true"})
    assert r.status_code == 403 and "操作未执行" in r.text
    r = admin.post(PAGE, data={"url": "https://hooks.example/x", "event_types": "*"})
    assert r.status_code == 403
    assert subscriptions(rt)[0].paused_at is None and len(subscriptions(rt)) == 1


def test_page_lists_subscriptions_masked_with_their_counts(rt: Runtime, admin: TestClient) -> None:
    sub = subscribe(rt, WECOM, format="wecom", description="区督查室领导群")
    with rt.transaction() as s:
        s.add(Event(uid="msg_1", type="request.overdue", occurred_at=rt.now(), data={}))
    with rt.transaction() as s:
        event_id = s.scalar(select(func.max(Event.id)))
        s.add(
            Delivery(
                event_id=event_id,
                subscription_id=sub,
                event_type="request.overdue",
                status="dead",
                attempts=8,
                last_status_code=200,
                last_error="robot error 93000: the key in the URL is not valid",
                created_at=rt.now(),
                last_attempt_at=rt.now(),
            )
        )
    page = admin.get(PAGE)
    assert page.status_code == 200
    text = page.text
    assert "693a91f6" not in text and "key=****5aaa" in text
    assert "企业微信群机器人" in text and "区督查室领导群" in text and "启用" in text
    row = re.search(rf'<tr id="w-{sub}".*?</tr>', text, re.S)
    assert row is not None and re.search(r"data-dead><a[^>]*>1<", row.group(0))
    assert "超期" in text and "robot error 93000" in text and "重新投递" in text


def test_create_a_standard_one_shows_its_secret_once(rt: Runtime, admin: TestClient) -> None:
    r = post(
        admin,
        PAGE,
        {"url": "https://hooks.example/in", "event_types": "request.overdue", "format": "standard"},
    )
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    (sub,) = subscriptions(rt)
    assert sub.secret.startswith("whsec_") and sub.secret in r.text
    assert "只显示这一次" in r.text
    assert sub.secret not in admin.get(PAGE).text
    (entry,) = audited(rt, "webhook.create")
    assert entry.actor == "user:admin" and sub.secret not in str(entry.after)


def test_create_a_robot(rt: Runtime, admin: TestClient) -> None:
    r = post(
        admin,
        PAGE,
        {
            "url": WECOM,
            "format": "wecom",
            "event_types": ["request.warning", "request.escalated"],
            "description": "领导群",
        },
    )
    assert r.status_code == 303 and r.headers["location"].startswith(PAGE + "?done=webhook.create")
    (sub,) = subscriptions(rt)
    assert (sub.format, sub.secret, sub.event_types) == (
        "wecom",
        "",
        ["request.warning", "request.escalated"],
    )
    assert "已新建订阅" in admin.get(r.headers["location"]).text


@pytest.mark.parametrize(
    ("data", "field", "said"),
    [
        ({"url": "http://127.0.0.1:9/in"}, "url", "本机"),
        ({"url": "not a url"}, "url", "地址（URL）格式不正确"),
        ({"url": "https://hooks.example/in", "format": "wecom"}, "url", "企业微信群机器人"),
        ({"url": WECOM, "format": "wecom", "secret": "SECabc"}, "secret", "企业微信"),
        (
            {
                "url": "https://oapi.dingtalk.com/robot/send?access_token=abc",
                "format": "dingtalk",
                "secret": "nope",
            },
            "secret",
            "SEC",
        ),
        ({"url": "https://hooks.example/in", "event_types": []}, "event_types", "事件类型"),
    ],
)
def test_a_bad_form_shows_the_error_in_chinese_and_writes_nothing(
    rt: Runtime, admin: TestClient, data: dict[str, object], field: str, said: str
) -> None:
    form: dict[str, object] = {"event_types": "*", "format": "standard", **data}
    r = post(admin, PAGE, form)
    assert r.status_code == 422
    error = re.search(
        rf'<em class="field-error" role="alert" data-field="{field}">([^<]*)</em>', r.text
    )
    assert error is not None and said in error.group(1), r.text
    assert subscriptions(rt) == [] and audited(rt, "webhook.create") == []


def test_pause_and_resume(rt: Runtime, admin: TestClient) -> None:
    sub = subscribe(rt)
    r = post(admin, f"{PAGE}/{sub}/paused", {"paused": "true"})
    assert r.status_code == 303
    assert subscriptions(rt)[0].paused_at == rt.now()
    page = admin.get(r.headers["location"]).text
    assert "已暂停订阅" in page and 'data-status="paused"' in page and "恢复" in page
    r = post(admin, f"{PAGE}/{sub}/paused", {"paused": "false"})
    assert r.status_code == 303 and subscriptions(rt)[0].paused_at is None
    assert [e.actor for e in audited(rt, "webhook.pause") + audited(rt, "webhook.resume")] == [
        "user:admin",
        "user:admin",
    ]


def test_event_types_edit_refuses_an_unknown_one(rt: Runtime, admin: TestClient) -> None:
    sub = subscribe(rt)
    r = post(admin, f"{PAGE}/{sub}/event-types", {"event_types": ["request.overdue", "x.y"]})
    assert r.status_code == 422 and "以下事件类型不存在：x.y" in r.text
    assert subscriptions(rt)[0].event_types == ["*"]
    r = post(admin, f"{PAGE}/{sub}/event-types", {"event_types": ["request.overdue"]})
    assert r.status_code == 303 and subscriptions(rt)[0].event_types == ["request.overdue"]


def test_deactivate_then_nothing_more(rt: Runtime, admin: TestClient) -> None:
    sub = subscribe(rt)
    assert post(admin, f"{PAGE}/{sub}/deactivate", {}).status_code == 303
    assert subscriptions(rt)[0].active is False
    r = post(admin, f"{PAGE}/{sub}/paused", {"paused": "true"})
    assert r.status_code == 422 and "该订阅已停用" in r.text


def test_send_a_test_message(rt: Runtime, admin: TestClient, robot: Robot) -> None:
    sub = subscribe(rt, WECOM, format="wecom", description="区督查室")
    r = post(admin, f"{PAGE}/{sub}/test", {})
    assert r.status_code == 200 and 'data-test-ok="true"' in r.text and "已送达" in r.text
    (text,) = robot.texts()
    assert "测试消息" in text and "区督查室" in text
    robot.refuse = lambda n: 93000
    r = post(admin, f"{PAGE}/{sub}/test", {})
    assert 'data-test-ok="false"' in r.text and "robot error 93000" in r.text


def test_redeliver_a_dead_delivery(rt: Runtime, admin: TestClient) -> None:
    sub = subscribe(rt)
    with rt.transaction() as s:
        s.add(Event(uid="msg_dead", type="request.overdue", occurred_at=rt.now(), data={}))
    with rt.transaction() as s:
        event_id = s.scalar(select(func.max(Event.id)))
        d = Delivery(
            event_id=event_id,
            subscription_id=sub,
            event_type="request.overdue",
            status="dead",
            attempts=8,
            last_status_code=503,
            last_error="HTTP 503",
            created_at=rt.now(),
        )
        s.add(d)
        s.flush()
        delivery_id = d.id
    r = post(admin, f"/admin/deliveries/{delivery_id}/redeliver", {})
    assert r.status_code == 303, r.text[-3000:]
    assert "已将投递" in admin.get(r.headers["location"]).text
    with rt.transaction() as s:
        again = s.get(Delivery, delivery_id)
        assert again is not None and (again.status, again.attempts) == ("pending", 0)
    (entry,) = audited(rt, "delivery.redeliver")
    assert entry.actor == "user:admin"
    r = post(admin, f"/admin/deliveries/{delivery_id}/redeliver", {})
    assert r.status_code == 422 and "仍在等待发送" in r.text
