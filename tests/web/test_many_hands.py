"""The console's side of many hands: a co-department's task on the request page (its form,
its own deadline in its inbox), the lead's reply form listing tasks not done, and a return
under review waiting in the dispatchers' queue with its decision forms."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from huying.auth.service import Principal
from huying.requests.models import Request, RequestTask
from huying.runtime import Runtime
from tests.web.conftest import act, state_of, submit
from tests.web.test_console import error_on, forms_on, post_action, signed_in


def _task_of(rt: Runtime, rid: int) -> RequestTask:
    with rt.transaction() as s:
        req = s.get(Request, rid)
        assert req is not None
        (task,) = req.tasks
        s.expunge(task)
        return task


def test_a_co_department_signs_and_replies_to_its_task_from_the_request_page(
    rt: Runtime, web: TestClient
) -> None:
    rid = submit(rt)  # POWER: GXJ leads, STREET co-handles (an assist task)
    task = _task_of(rt, rid)
    signed_in(web, "street")
    page = web.get(f"/requests/{rid}").text
    assert "协办与下派任务" in page and f'data-task="{task.id}"' in page
    assert re.search(rf'<option value="{task.id}"[^>]*>[^<]*（协办）</option>', page)

    signed = post_action(web, rid, "task_sign", task_id=str(task.id))
    assert signed.status_code == 303, error_on(signed.text)
    replied = post_action(
        web, rid, "task_reply", task_id=str(task.id), content="街道已核实用电需求"
    )
    assert replied.status_code == 303, error_on(replied.text)
    done = _task_of(rt, rid)
    assert (done.status, done.reply, done.on_time) == ("done", "街道已核实用电需求", True)
    assert state_of(rt, rid)[0] == "dispatched"  # the lead's request moved not at all
    assert forms_on(web.get(f"/requests/{rid}").text, rid) == set()  # nothing left to do


def test_a_task_reply_without_content_is_refused_in_chinese(rt: Runtime, web: TestClient) -> None:
    rid = submit(rt)
    task = _task_of(rt, rid)
    signed_in(web, "street")
    response = post_action(web, rid, "task_reply", task_id=str(task.id), content="  ")
    assert response.status_code == 422
    assert "答复内容" in error_on(response.text)
    assert _task_of(rt, rid).status == "pending"


def test_the_co_departments_inbox_shows_its_task_deadline_not_the_leads(
    rt: Runtime, web: TestClient
) -> None:
    submit(rt)
    signed_in(web, "street")
    inbox = web.get("/inbox").text
    assert "任务时限" in inbox and "签收时限" not in inbox


def test_the_lead_s_reply_form_lists_the_tasks_not_done(
    rt: Runtime, web: TestClient, staff: dict[str, Principal]
) -> None:
    rid = submit(rt)
    act(rt, staff["gxj"], rid, "sign")
    signed_in(web, "gxj")
    page = web.get(f"/requests/{rid}").text
    assert "尚未完成的任务" in page and "（协办）" in page


def test_a_return_under_review_waits_in_the_queue_and_is_decided_there(
    rt: Runtime, web: TestClient, staff: dict[str, Principal]
) -> None:
    rid = submit(rt)
    act(rt, staff["gxj"], rid, "return", reason="非本部门职责，请改派街道")
    signed_in(web, "dispatcher")
    queue = web.get("/queue").text
    assert "退单待审核" in queue and "非本部门职责，请改派街道" in queue
    assert f'action="/requests/{rid}/actions/accept_return"' in queue
    assert f'action="/requests/{rid}/actions/refuse_return"' in queue
    refused = post_action(web, rid, "refuse_return", reason="属于工信局职责，请继续办理")
    assert refused.status_code == 303, error_on(refused.text)
    assert state_of(rt, rid)[0] == "dispatched"
    assert f"/requests/{rid}/actions/accept_return" not in web.get("/queue").text
