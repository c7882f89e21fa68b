"""The worker removes attachments left unbound `attachments.unbound_hours` after their
upload, and the bytes no attachment names any more; bound ones and shared bytes stay."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from huying.attachments import storage
from huying.attachments.models import Attachment, AttachmentBlob
from huying.clock import FrozenClock
from huying.runtime import Runtime
from huying.worker import Worker
from tests.attachments import samples
from tests.attachments.conftest import REQUESTS, UPLOAD, uploaded
from tests.conftest import World, submit_body


@pytest.fixture(params=["database", "directory"])
def attachment_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "database":
        return {}
    return {"storage": {"directory": str(tmp_path / "files")}}


def _ids(rt: Runtime) -> set[int]:
    with rt.transaction() as s:
        return {a.id for a in s.query(Attachment)}


def _kept(rt: Runtime, sha256: str) -> bool:
    """Whether the bytes are still stored. Files are aged first: the clean-up leaves alone
    a file an upload used within the last hour (DirectoryStorage.grace_seconds)."""
    directory = rt.settings.attachments_dir
    if directory is None:
        with rt.transaction() as s:
            return s.get(AttachmentBlob, sha256) is not None
    return storage.DirectoryStorage(directory).path(sha256).exists()


def _age_files(rt: Runtime) -> None:
    directory = rt.settings.attachments_dir
    if directory is not None:
        two_hours_ago = time.time() - 7200
        for path in directory.rglob("*"):
            if path.is_file():
                os.utime(path, (two_hours_ago, two_hours_ago))


def test_unbound_attachments_go_after_the_period(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    worker = Worker(rt)
    forgotten = uploaded(client, world, "gxj", samples.pdf())
    shared = uploaded(client, world, "integration", samples.png())  # same bytes as `bound`
    bound = uploaded(client, world, "integration", samples.png())
    r = client.post(
        REQUESTS, json=submit_body(attachment_ids=[bound["id"]]), headers=world.h("integration")
    )
    assert r.status_code == 201, r.text
    clock.advance(timedelta(hours=23))
    recent = uploaded(client, world, "gxj", samples.ofd())
    _age_files(rt)

    clock.advance(timedelta(minutes=59, seconds=59))  # 23:59:59 after the first uploads
    assert worker.clean() == 0
    assert _ids(rt) == {forgotten["id"], shared["id"], bound["id"], recent["id"]}

    clock.advance(timedelta(seconds=2))  # 24 hours and a second
    assert worker.clean() == 2
    assert _ids(rt) == {bound["id"], recent["id"]}
    assert not _kept(rt, forgotten["sha256"])  # no attachment names it any more
    assert _kept(rt, bound["sha256"])  # the bound one still does
    assert _kept(rt, recent["sha256"])
    assert client.get(f"{UPLOAD}/{bound['id']}", headers=world.h("admin")).status_code == 200

    clock.advance(timedelta(hours=23))  # the last one's period is over too
    assert worker.clean() == 1
    assert _ids(rt) == {bound["id"]}


@pytest.mark.parametrize("attachment_settings", ["directory"], indirect=True)
def test_a_file_used_within_the_hour_is_kept(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    """An upload reusing the bytes marks the file used, so that a clean-up running meanwhile
    cannot remove it under the upload's feet."""
    old = uploaded(client, world, "gxj", samples.pdf())
    clock.advance(timedelta(hours=25))
    assert Worker(rt).clean() == 1  # the file was written just now: it stays
    assert _kept(rt, old["sha256"])
    _age_files(rt)
    assert Worker(rt).clean() == 0
    # nothing is unbound now, so nothing names the file as a candidate; an upload of the
    # same bytes reuses it
    again = uploaded(client, world, "gxj", samples.pdf())
    assert client.get(f"{UPLOAD}/{again['id']}", headers=world.h("gxj")).content == (samples.pdf())
