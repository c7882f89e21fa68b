"""Logging: plain lines, or one JSON object per line (`logging.json: true`), each carrying the
id of the HTTP request it was written for.

The request id comes from the caller's `X-Request-ID` header when it is a sane token (up to
64 letters, digits, `.`, `_`, `-`), else a new random one; it is sent back in `X-Request-ID`
and kept in a context variable for the duration of the request, so every line logged while
serving it (in the event loop or in the thread pool that runs sync endpoints) names it.

Only the message and its arguments are written: never headers, bodies or tokens.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from huying import uids
from huying.settings import LoggingSettings

HEADER = "X-Request-ID"
request_id: ContextVar[str | None] = ContextVar("huying_request_id", default=None)
_SANE = re.compile(r"[A-Za-z0-9._-]{1,64}")
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
# The attributes every LogRecord has; anything else was passed in `extra=` and is kept.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id", "taskName"}
)


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or "-") on every record, for either format."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, request_id,
    any `extra` fields, and the formatted exception if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
        }
        if entry["request_id"] == "-":
            entry["request_id"] = None
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(settings: LoggingSettings, *, stream: IO[str] | None = None) -> logging.Handler:
    """Send the root logger's records to `stream` (standard error) in the configured format
    and level. Calling it again replaces the handler it installed before."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_huying", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._huying = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if settings.json_ else logging.Formatter(PLAIN_FORMAT))
    root.addHandler(handler)
    root.setLevel(settings.level)
    # Alembic lists each autogenerate plugin it sets up at INFO on every migration run.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    return handler


class RequestIdMiddleware:
    """Sets the request id for the duration of each HTTP request and echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == HEADER.lower().encode()),
            "",
        )
        rid = given if _SANE.fullmatch(given) else uids.token_hex16()

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = rid
            await send(message)

        token = request_id.set(rid)
        try:
            await self.app(scope, receive, sending)
        finally:
            request_id.reset(token)


def install(app: FastAPI) -> None:
    """Request ids on every HTTP request of `app` (once, however often it is called)."""
    if getattr(app.state, "request_ids", False):
        return
    app.state.request_ids = True
    app.add_middleware(RequestIdMiddleware)
