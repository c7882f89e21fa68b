"""413 past `attachments.max_bytes`, with nothing past the limit read and nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Scope

from huying.app import create_app
from huying.attachments.router import ENVELOPE_BYTES
from huying.runtime import Runtime
from tests.api.support import assert_problem, nothing_written
from tests.attachments import samples
from tests.attachments.conftest import UPLOAD, upload
from tests.conftest import World

MAX_BYTES = 4096
CHUNK = 8192
BOUNDARY = "huying-test-boundary"


@pytest.fixture
def attachment_settings() -> dict[str, Any]:
    return {"max_bytes": MAX_BYTES}


def _multipart_chunks(file_bytes: int) -> Iterator[bytes]:
    """A multipart body whose one file part holds `file_bytes` bytes of a PNG, in chunks."""
    yield (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    head = samples.png()
    yield head
    left = file_bytes - len(head)
    while left > 0:
        yield bytes(min(CHUNK, left))
        left -= CHUNK
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def _post_streamed(
    rt: Runtime, token: str, chunks: Iterator[bytes]
) -> tuple[int, bytes, int, bool]:
    """POST the chunks straight to the ASGI app, as a chunked body (no Content-Length):
    (status, body, bytes the app read, whether it read them all)."""
    app = create_app(rt)
    read = 0
    finished = False
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal read, finished
        chunk = next(chunks, None)
        if chunk is None:
            finished = True
            return {"type": "http.request", "body": b"", "more_body": False}
        read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": UPLOAD,
        "raw_path": UPLOAD.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    anyio.run(app, scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, read, finished


def test_a_streamed_upload_past_the_limit_is_read_no_further(
    rt: Runtime, world: World, client: TestClient
) -> None:
    total = 4 << 20  # a thousand times the limit
    with nothing_written(rt):
        status, body, read, finished = _post_streamed(
            rt, world.tokens["gxj"], _multipart_chunks(total)
        )
    assert status == 413, body
    assert b"too_large" in body
    assert not finished
    assert read <= MAX_BYTES + ENVELOPE_BYTES + CHUNK  # the limit and the chunk that passed it


def test_a_declared_length_past_the_limit_is_refused_before_reading(
    client: TestClient, world: World, rt: Runtime
) -> None:
    with nothing_written(rt):
        r = upload(client, world, "gxj", samples.png() + bytes(MAX_BYTES + ENVELOPE_BYTES))
    assert_problem(r, 413)


def test_a_file_just_past_the_limit_is_refused(
    client: TestClient, world: World, rt: Runtime
) -> None:
    """Within the body's allowance for the multipart framing, but larger than max_bytes."""
    data = samples.png()
    data += bytes(MAX_BYTES + 1 - len(data))
    with nothing_written(rt):
        r = upload(client, world, "gxj", data)
    assert_problem(r, 413, str(MAX_BYTES))
    exactly = data[:MAX_BYTES]
    assert upload(client, world, "gxj", exactly).status_code == 201
