"""Webhook 与投递 in Chromium: a subscription created (its secret shown once), paused, and a
dead delivery sent again with 重新投递."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from huying.alerts.models import Delivery, Event, WebhookSubscription
from huying.runtime import Runtime
from tests.web.browsing import needs_browser, shot, sign_in

pytestmark = needs_browser


def _dead_delivery(rt: Runtime, subscription_id: int) -> int:
    with rt.transaction() as s:
        s.add(Event(uid="msg_browser", type="request.overdue", occurred_at=rt.now(), data={}))
    with rt.transaction() as s:
        d = Delivery(
            event_id=s.scalar(select(func.max(Event.id))),
            subscription_id=subscription_id,
            event_type="request.overdue",
            status="dead",
            attempts=8,
            last_status_code=503,
            last_error="HTTP 503",
            created_at=rt.now(),
            last_attempt_at=rt.now(),
        )
        s.add(d)
        s.flush()
        return d.id


def test_an_admin_manages_webhooks_in_the_browser(desktop: Any, console: str, rt: Runtime) -> None:
    page = desktop.new_page()
    sign_in(page, console, "admin")

    page.goto(f"{console}/admin/webhooks")
    form = page.locator("section#new-webhook form")
    form.locator("input[name=url]").fill("https://hooks.example/huying")
    form.locator("select[name=format]").select_option("standard")
    form.locator("input[name=description]").fill("区督查室对接系统")
    form.locator("input[value='request.dispatched']").check()
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    secret = page.locator("[data-secret]").inner_text()
    with rt.transaction() as s:
        sub = s.scalars(select(WebhookSubscription)).one()
        assert secret == sub.secret and secret.startswith("whsec_")
        # the ticked boxes, in the catalogue's order: the three preset and the one added
        assert set(sub.event_types) == {
            "request.warning",
            "request.overdue",
            "request.escalated",
            "request.dispatched",
        }
        sub_id = sub.id
    shot(page, "admin-webhook-created")

    row = page.locator(f"#w-{sub_id}")
    row.locator("button:text('暂停')").click()
    page.wait_for_load_state()
    row = page.locator(f"#w-{sub_id}")
    assert row.get_attribute("data-status") == "paused" and "已暂停" in row.inner_text()
    assert secret not in page.content()  # shown once only

    delivery_id = _dead_delivery(rt, sub_id)
    page.goto(f"{console}/admin/webhooks#dead")
    dead = page.locator(f"#d-{delivery_id}")
    assert "HTTP 503" in dead.inner_text() and "超期" in dead.inner_text()
    shot(page, "admin-webhooks", full=True)
    dead.locator("button:text('重新投递')").click()
    page.wait_for_load_state()
    assert "已将投递" in page.content()
    assert page.locator(f"#d-{delivery_id}").count() == 0
    with rt.transaction() as s:
        again = s.get(Delivery, delivery_id)
        assert again is not None and again.status == "pending"
