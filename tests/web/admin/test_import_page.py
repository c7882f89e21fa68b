"""Importing enterprises: the console's upload, line-by-line preview and 确认导入, and the API
`POST /api/v1/enterprises/import` with and without `dry_run` (built into an app here as
huying.app is asked to include it)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from huying.audit.models import AuditEntry
from huying.auth.service import Principal
from huying.directory.import_router import router as import_router
from huying.directory.models import Enterprise
from huying.runtime import Runtime
from tests.conftest import USCC_A, World
from tests.web.admin.test_directory_pages import admin
from tests.web.conftest import console_app, login

NEW = "91310000MA1FL8TQ36"
GOOD = f"统一社会信用代码,企业名称,网格编码\n{NEW},新企业,440112012001002\n{USCC_A},改名企业,\n"
BAD = GOOD + "91110000600037341X,坏代码,\n"


@pytest.fixture
def api(rt: Runtime, world: World) -> Iterator[TestClient]:
    app = console_app(rt)
    app.include_router(import_router, prefix="/api/v1")
    with TestClient(app) as c:
        yield c


def names(rt: Runtime) -> dict[str, str]:
    with rt.transaction() as s:
        return {e.uscc: e.name for e in s.scalars(select(Enterprise))}


def imports_logged(rt: Runtime) -> list[AuditEntry]:
    with rt.transaction() as s:
        rows = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "enterprise.import")))
        s.expunge_all()
        return rows


def upload(web: TestClient, csrf: str, data: bytes, name: str = "企业.csv") -> Response:
    answer: Response = web.post(
        "/admin/enterprises/import/preview",
        data={"csrf": csrf},
        files={"file": (name, data, "text/csv")},
    )
    return answer


def test_preview_then_confirm_imports_the_file(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    csrf = admin(web)
    assert "上传并预览" in web.get("/admin/enterprises/import").text
    page = upload(web, csrf, GOOD.encode("gb18030"))
    assert page.status_code == 200
    text = page.text
    assert 'data-line="2"' in text and ">新增<" in text and ">更新<" in text
    assert names(rt)[USCC_A] == "北京示例科技有限公司"  # a preview writes nothing
    content = re.search(r'name="content" value="([^"]+)"', text)
    assert content and base64.b64decode(content.group(1)) == GOOD.encode("gb18030")
    done = web.post(
        "/admin/enterprises/import",
        data={"csrf": csrf, "name": "企业.csv", "content": content.group(1)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert "新增 1 家，更新 1 家" in web.get(done.headers["location"]).text
    assert names(rt)[NEW] == "新企业" and names(rt)[USCC_A] == "改名企业"
    [entry] = imports_logged(rt)
    assert entry.actor == "user:admin" and entry.after and entry.after["created"] == 1


def test_a_bad_line_disables_the_confirmation_and_a_forced_one_writes_nothing(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    csrf = admin(web)
    page = upload(web, csrf, BAD.encode())
    text = page.text
    assert "统一社会信用代码无效" in text and 'type="submit" disabled>确认导入' in text
    before = names(rt)
    forced = web.post(
        "/admin/enterprises/import",
        data={"csrf": csrf, "name": "f.csv", "content": base64.b64encode(BAD.encode()).decode()},
    )
    assert forced.status_code == 422 and "没有导入任何企业" in forced.text
    assert names(rt) == before and imports_logged(rt) == []


def test_upload_refusals(web: TestClient, rt: Runtime, staff: dict[str, Principal]) -> None:
    csrf = admin(web)
    no_uscc = upload(web, csrf, "企业名称\n某企业\n".encode())
    assert no_uscc.status_code == 422
    assert "缺少“统一社会信用代码”列" in no_uscc.text
    many = "uscc\n" + f"{NEW}\n" * 5001
    assert "5000 行上限" in upload(web, csrf, many.encode()).text
    forged = upload(web, "forged", GOOD.encode())
    assert forged.status_code == 403
    login(web, "supervisor")
    assert web.get("/admin/enterprises/import").status_code == 403


def test_api_dry_run_answers_the_preview(api: TestClient, world: World, rt: Runtime) -> None:
    files = {"file": ("e.csv", GOOD.encode(), "text/csv")}
    got = api.post("/api/v1/enterprises/import?dry_run=true", files=files, headers=world.h("admin"))
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["ok"] and body["counts"]["created"] == 1 and body["counts"]["updated"] == 1
    assert [line["status"] for line in body["lines"]] == ["created", "updated"]
    assert NEW not in names(rt)


def test_api_commit_all_or_nothing(api: TestClient, world: World, rt: Runtime) -> None:
    bad = api.post(
        "/api/v1/enterprises/import",
        files={"file": ("e.csv", BAD.encode(), "text/csv")},
        headers=world.h("admin"),
    )
    assert bad.status_code == 422
    assert [line["line"] for line in bad.json()["lines"]] == [4]
    assert NEW not in names(rt)
    ok = api.post(
        "/api/v1/enterprises/import",
        files={"file": ("e.csv", GOOD.encode(), "text/csv")},
        headers=world.h("admin"),
    )
    assert ok.status_code == 200
    assert ok.json()["created"] == 1 and ok.json()["updated"] == 1
    assert names(rt)[NEW] == "新企业"
    [entry] = imports_logged(rt)
    assert entry.actor.startswith("key:") and entry.target_id == "e.csv"


def test_api_is_for_admins(api: TestClient, world: World) -> None:
    files = {"file": ("e.csv", GOOD.encode(), "text/csv")}
    got = api.post("/api/v1/enterprises/import", files=files, headers=world.h("dispatcher"))
    assert got.status_code == 403
    missing = api.post("/api/v1/enterprises/import", headers=world.h("admin"), files={})
    assert missing.status_code in (400, 422)
