"""Standard Webhooks signatures (https://www.standardwebhooks.com), pure.

A secret is `whsec_` followed by the base64 of 24 to 64 random bytes. Each message is
signed with HMAC-SHA256, keyed by those bytes, over `{webhook-id}.{webhook-timestamp}.{body}`
and sent as `webhook-signature: v1,<base64 of the digest>`.

A receiver checks a message with `verify`::

    from huying.alerts.signing import verify

    if not verify(secret, request.headers, raw_body, now=time.time()):
        return 401

It takes the headers as received (any case) and the body exactly as received, before any
JSON parsing, and refuses timestamps more than five minutes away from `now` (replays).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping

PREFIX = "whsec_"
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64
TOLERANCE_SECONDS = 5 * 60


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_problem(secret: str) -> str | None:
    """Why `secret` is not a usable Standard Webhooks secret, or None."""
    if not secret.startswith(PREFIX):
        return f"a secret starts with {PREFIX}"
    try:
        key = base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError):
        return f"a secret is {PREFIX} followed by standard base64"
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        return f"a secret encodes {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, not {len(key)}"
    return None


def _key(secret: str) -> bytes:
    if problem := secret_problem(secret):
        raise ValueError(problem)
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def verify(
    secret: str,
    received: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """True when one of the `v1` signatures matches and the timestamp is recent."""
    lower = {k.lower(): v for k, v in received.items()}
    msg_id, stamp = lower.get("webhook-id"), lower.get("webhook-timestamp", "")
    if not msg_id or not stamp.isdigit() or abs(now - int(stamp)) > tolerance:
        return False
    expected = sign(secret, msg_id, int(stamp), body).encode()
    return any(
        hmac.compare_digest(candidate.encode(), expected)
        for candidate in lower.get("webhook-signature", "").split()
        if candidate.startswith("v1,")
    )
