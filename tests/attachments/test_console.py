"""The console: a reply with files attached, the request's page showing them (images as
thumbnails), and the same guards as every form (sign-in, CSRF)."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from huying.attachments.models import Attachment
from huying.auth.service import Principal
from huying.runtime import Runtime
from tests.api.support import nothing_written
from tests.attachments import samples
from tests.web.conftest import act, csrf_in, login, state_of, submit


def _signed_for_by_gxj(rt: Runtime, staff: dict[str, Principal]) -> int:
    rid = submit(rt)
    act(rt, staff["gxj"], rid, "sign")
    return rid


def _reply(web: TestClient, rid: int, files: list[tuple[str, bytes]], **fields: Any) -> Any:
    page = web.get(f"/requests/{rid}")
    version = re.search(r'name="version" value="(\d+)"', page.text)
    assert version
    data = {
        "csrf": csrf_in(page.text),
        "version": version.group(1),
        "content": "已协调供电局完成增容，附现场照片和验收报告。",
        "resolved": "true",
        **fields,
    }
    return web.post(
        f"/requests/{rid}/actions/reply",
        data=data,
        files=[
            ("attachment_files", (name, body, "application/octet-stream")) for name, body in files
        ],
        follow_redirects=False,
    )


def _attachments(rt: Runtime) -> list[Attachment]:
    with rt.transaction() as s:
        return list(s.query(Attachment).order_by(Attachment.id))


def test_a_reply_with_files_attaches_them_and_the_page_shows_them(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    rid = _signed_for_by_gxj(rt, staff)
    login(web, "gxj")
    page = web.get(f"/requests/{rid}").text
    reply_form = re.search(r'<form [^>]*actions/reply"[^>]*>(.*?)</form>', page, re.S)
    assert reply_form and 'enctype="multipart/form-data"' in reply_form.group(0)
    assert 'type="file" name="attachment_files" multiple' in reply_form.group(1)

    files = [("现场照片.png", samples.png()), ("验收报告.pdf", samples.pdf())]
    r = _reply(web, rid, files, attachment_visibility="public")
    assert r.status_code == 303, r.text
    assert state_of(rt, rid)[0] == "replied"
    photo, report = _attachments(rt)
    assert (photo.name, photo.content_type, photo.request_id) == ("现场照片.png", "image/png", rid)
    assert (report.name, report.visibility, report.uploaded_by) == (
        "验收报告.pdf",
        "public",
        "user:gxj",
    )

    page = web.get(f"/requests/{rid}").text
    thumb = re.search(rf'<img class="thumb" src="/api/v1/attachments/{photo.id}"[^>]*>', page)
    assert thumb and 'loading="lazy"' in thumb.group(0) and 'width="160"' in thumb.group(0)
    assert f'<a href="/api/v1/attachments/{report.id}" download>验收报告.pdf</a>' in page
    assert "企业可见" in page and "随“答复”提交" in page
    # the thumbnail loads with the console's own cookie
    image = web.get(f"/api/v1/attachments/{photo.id}")
    assert image.status_code == 200 and image.content == samples.png()


def test_files_are_internal_unless_marked_public(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    rid = _signed_for_by_gxj(rt, staff)
    login(web, "gxj")
    assert _reply(web, rid, [("a.png", samples.png())]).status_code == 303
    assert [a.visibility for a in _attachments(rt)] == ["internal"]


def test_a_disguised_file_is_refused_in_chinese_and_nothing_is_saved(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    rid = _signed_for_by_gxj(rt, staff)
    login(web, "gxj")
    with nothing_written(rt):
        r = _reply(web, rid, [("照片.jpg", samples.elf())])
    assert r.status_code == 422
    assert "data-error" in r.text
    assert state_of(rt, rid)[0] == "in_progress"


def test_a_form_with_files_needs_its_csrf_token(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    rid = _signed_for_by_gxj(rt, staff)
    login(web, "gxj")
    with nothing_written(rt):
        r = web.post(
            f"/requests/{rid}/actions/reply",
            data={"content": "好", "resolved": "true"},
            files=[("attachment_files", ("a.png", samples.png(), "image/png"))],
            follow_redirects=False,
        )
    assert r.status_code == 403


def test_files_from_someone_not_signed_in_are_not_taken(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    rid = _signed_for_by_gxj(rt, staff)
    with nothing_written(rt):
        r = web.post(
            f"/requests/{rid}/actions/reply",
            data={"content": "好", "resolved": "true"},
            files=[("attachment_files", ("a.png", samples.png(), "image/png"))],
            follow_redirects=False,
        )
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
