"""`POST /api/v1/attachments` and `GET /api/v1/attachments/{id}`: upload, the limits, the
types, and who may download what, on both storages."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from huying.attachments import sniff
from huying.attachments.storage import DirectoryStorage
from huying.runtime import Runtime
from tests.api.support import assert_problem, nothing_written
from tests.attachments import samples
from tests.attachments.conftest import REQUESTS, UPLOAD, upload, uploaded
from tests.conftest import World, submit_body


@pytest.fixture(params=["database", "directory"])
def attachment_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "database":
        return {}
    return {"storage": {"directory": str(tmp_path / "files")}}


def test_an_upload_comes_back_as_it_went(client: TestClient, world: World, rt: Runtime) -> None:
    data = samples.png()
    made = uploaded(client, world, "gxj", data, name="整改后 现场.png")
    assert made["name"] == "整改后 现场.png" and made["size"] == len(data)
    assert made["content_type"] == "image/png" and made["visibility"] == "internal"
    r = client.get(f"{UPLOAD}/{made['id']}", headers=world.h("gxj"))
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["etag"] == f'"{made["sha256"]}"'
    assert r.headers["content-disposition"] == (
        "inline; filename=\"___ __.png\"; filename*=UTF-8''"
        "%E6%95%B4%E6%94%B9%E5%90%8E%20%E7%8E%B0%E5%9C%BA.png"
    )
    again = client.get(
        f"{UPLOAD}/{made['id']}", headers=world.h("gxj", **{"If-None-Match": r.headers["etag"]})
    )
    assert again.status_code == 304 and again.content == b""


def test_a_document_is_saved_not_shown(client: TestClient, world: World) -> None:
    made = uploaded(client, world, "gxj", samples.docx(), name="报告.docx")
    r = client.get(f"{UPLOAD}/{made['id']}", headers=world.h("gxj"))
    assert r.headers["content-disposition"].startswith('attachment; filename="__.docx"')
    assert r.headers["content-type"] == sniff.DOCX


def test_the_same_bytes_are_kept_once(client: TestClient, world: World, rt: Runtime) -> None:
    first = uploaded(client, world, "gxj", samples.pdf(), name="a.pdf")
    second = uploaded(client, world, "street", samples.pdf(), name="b.pdf")
    assert first["id"] != second["id"] and first["sha256"] == second["sha256"]
    directory = rt.settings.attachments_dir
    if directory is None:
        from huying.attachments.models import AttachmentBlob

        with rt.transaction() as s:
            assert s.query(AttachmentBlob).count() == 1
    else:
        files = [p for p in directory.rglob("*") if p.is_file()]
        assert files == [DirectoryStorage(directory).path(first["sha256"])]
        assert stat.S_IMODE(files[0].stat().st_mode) == 0o600  # no temporary file left


def test_staff_upload_internal_and_integrations_public(client: TestClient, world: World) -> None:
    assert uploaded(client, world, "gxj", samples.pdf())["visibility"] == "internal"
    assert uploaded(client, world, "gxj", samples.pdf(), visibility="public")["visibility"] == (
        "public"
    )
    assert uploaded(client, world, "integration", samples.pdf())["visibility"] == "public"
    r = upload(client, world, "integration", samples.pdf(), visibility="internal")
    assert_problem(r, 403, "public")
    assert_problem(upload(client, world, "gxj", samples.pdf(), visibility="secret"), 422)


@pytest.mark.parametrize("make", [samples.elf, samples.pe])
def test_an_executable_named_jpg_is_refused(
    client: TestClient, world: World, rt: Runtime, make: Any
) -> None:
    with nothing_written(rt):
        r = upload(client, world, "integration", make(), name="现场照片.jpg")
    body = assert_problem(r, 422, "none of the accepted types")
    assert body["field"] == "file"
    directory = rt.settings.attachments_dir
    assert directory is None or not any(p.is_file() for p in directory.rglob("*"))


def test_an_ofd_is_accepted(client: TestClient, world: World) -> None:
    made = uploaded(client, world, "gxj", samples.ofd(), name="批复.ofd")
    assert made["content_type"] == "application/ofd"
    assert_problem(upload(client, world, "gxj", samples.plain_zip(), name="批复.ofd"), 422)


def test_an_upload_needs_a_file_part(client: TestClient, world: World) -> None:
    r = client.post(UPLOAD, json={"file": "x"}, headers=world.h("gxj"))
    assert_problem(r, 422, "file")
    r = client.post(UPLOAD, data={"file": "not a file part"}, headers=world.h("gxj"))
    assert_problem(r, 422, "file")
    assert_problem(upload(client, world, "gxj", b""), 422, "empty")


def test_no_key_no_upload(client: TestClient, world: World, rt: Runtime) -> None:
    with nothing_written(rt):
        r = client.post(UPLOAD, files={"file": ("a.pdf", samples.pdf())})
    assert_problem(r, 401)


# --- who may download ---------------------------------------------------------------


def _replied(client: TestClient, world: World, ids: list[int]) -> int:
    """A POWER request (GXJ leads, STREET co-handles) that GXJ replied to with `ids`."""
    r = client.post(REQUESTS, json=submit_body(), headers=world.h("integration"))
    rid = int(r.json()["id"])
    assert client.post(f"{REQUESTS}/{rid}/actions/sign", headers=world.h("gxj")).status_code == 200
    body = {"content": "已协调供电局完成增容。", "resolved": True, "attachment_ids": ids}
    r = client.post(f"{REQUESTS}/{rid}/actions/reply", json=body, headers=world.h("gxj"))
    assert r.status_code == 200, r.text
    return rid


def test_an_integration_gets_public_attachments_only(client: TestClient, world: World) -> None:
    internal = uploaded(client, world, "gxj", samples.pdf(), name="内部说明.pdf")
    public = uploaded(client, world, "gxj", samples.png(), visibility="public")
    _replied(client, world, [internal["id"], public["id"]])
    assert client.get(f"{UPLOAD}/{public['id']}", headers=world.h("integration")).status_code == (
        200
    )
    r = client.get(f"{UPLOAD}/{internal['id']}", headers=world.h("integration"))
    assert_problem(r, 404)
    assert client.get(f"{UPLOAD}/{internal['id']}", headers=world.h("admin")).status_code == 200


def test_those_who_cannot_see_the_request_cannot_download(client: TestClient, world: World) -> None:
    made = uploaded(client, world, "gxj", samples.pdf())
    _replied(client, world, [made["id"]])
    # STREET co-handles the request; RSJ, a sibling department under DIST, has nothing to do
    # with it and is told it does not exist
    assert client.get(f"{UPLOAD}/{made['id']}", headers=world.h("street")).status_code == 200
    assert_problem(client.get(f"{UPLOAD}/{made['id']}", headers=world.h("rsj")), 404)
    assert_problem(client.get(f"{UPLOAD}/{made['id'] + 99}", headers=world.h("admin")), 404)


def test_an_unbound_attachment_is_its_uploaders_only(client: TestClient, world: World) -> None:
    made = uploaded(client, world, "integration", samples.png())
    assert client.get(f"{UPLOAD}/{made['id']}", headers=world.h("integration")).status_code == (200)
    for other in ("admin", "gxj"):
        assert_problem(client.get(f"{UPLOAD}/{made['id']}", headers=world.h(other)), 404)
