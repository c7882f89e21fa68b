"""What a failed attempt records: the HTTP status, or a short reason in our own words
("timed out after 10 s", "connection refused", "refused: address 127.0.0.1 is loopback").

Never the receiver's response body and never an exception's message: either can carry
what the far end said (a banner, an error page, an h11 complaint quoting the bytes it got),
and the deliveries' ledger would turn that into an oracle for probing the network.
"""

from __future__ import annotations

import os
import re
import ssl
from socket import gaierror

import httpx

from huying.alerts.transport import Refused

# Rows written before reasons were ours: "HTTP 503: <body>", "RemoteProtocolError: <text>".
_OLD_FORM = re.compile(r"(HTTP \d{3}|[A-Z][A-Za-z]*(?:Error|Exception|Timeout)): .*", re.DOTALL)


def http_status(code: int) -> str:
    return f"HTTP {code}"


def failure(exc: Exception, *, timeout: float) -> str:
    """The reason an attempt failed, for the ledger."""
    if isinstance(exc, Refused):
        return str(exc)  # our own words, see huying.alerts.urls
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g} s"
    cause = _os_cause(exc)
    if isinstance(cause, gaierror):
        return "cannot resolve the host name"
    if isinstance(cause, ssl.SSLError):
        code = (cause.reason or "").lower().replace("_", " ")
        return f"TLS handshake failed ({code})" if code else "TLS handshake failed"
    if cause is not None and cause.errno:
        return os.strerror(cause.errno).lower()  # connection refused, no route to host, ...
    if isinstance(exc, httpx.ConnectError):
        return "connection failed"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the receiver did not answer with valid HTTP"
    if isinstance(exc, httpx.NetworkError):
        return "the connection broke off"
    if isinstance(exc, httpx.HTTPError):
        return f"failed ({type(exc).__name__})"
    return f"internal error ({type(exc).__name__}); see the worker's log"


def _os_cause(exc: BaseException) -> OSError | None:
    """The socket or TLS error under httpx's and httpcore's wrappers, if there is one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def shown(stored: str | None) -> str | None:
    """A stored reason as the ledger shows it: rows from before reasons were ours lose
    whatever followed the status or the exception's name."""
    if stored is None:
        return None
    old = _OLD_FORM.fullmatch(stored)
    return stored if old is None else old.group(1)
