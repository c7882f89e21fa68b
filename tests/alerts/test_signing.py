"""Signatures and patterns: pure, no database."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from huying.alerts import signing
from huying.alerts.patterns import matches, pattern_problem

# The example of the Standard Webhooks specification (its reference libraries' test vector).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def independent_signature(secret: str, msg_id: str, ts: int, body: bytes) -> str:
    key = base64.b64decode(secret.split("_", 1)[1])
    mac = hmac.new(key, msg_id.encode() + b"." + str(ts).encode() + b"." + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def test_signature_is_the_standard_webhooks_one() -> None:
    assert signing.sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE
    secret = signing.new_secret()
    body = '{"data":{"title":"用电"}}'.encode()
    assert signing.sign(secret, "msg_1", 1700000000, body) == independent_signature(
        secret, "msg_1", 1700000000, body
    )


def test_headers_carry_id_timestamp_signature() -> None:
    h = signing.headers(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY)
    assert h == {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TS),
        "webhook-signature": SPEC_SIGNATURE,
        "content-type": "application/json",
    }


def test_verify_accepts_the_message_and_refuses_tampering() -> None:
    h = signing.headers(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY)
    upper = {k.upper(): v for k, v in h.items()}
    assert signing.verify(SPEC_SECRET, upper, SPEC_BODY, now=SPEC_TS + 10)
    # several signatures (a rotated secret): one match is enough
    rotated = {**h, "webhook-signature": f"v1,AAAA {SPEC_SIGNATURE}"}
    assert signing.verify(SPEC_SECRET, rotated, SPEC_BODY, now=SPEC_TS)

    assert not signing.verify(SPEC_SECRET, h, SPEC_BODY + b" ", now=SPEC_TS)
    assert not signing.verify(signing.new_secret(), h, SPEC_BODY, now=SPEC_TS)
    assert not signing.verify(SPEC_SECRET, {**h, "webhook-id": "msg_x"}, SPEC_BODY, now=SPEC_TS)
    assert not signing.verify(SPEC_SECRET, h, SPEC_BODY, now=SPEC_TS + 301)  # a replay
    assert not signing.verify(SPEC_SECRET, h, SPEC_BODY, now=SPEC_TS - 301)
    assert not signing.verify(SPEC_SECRET, {**h, "webhook-timestamp": "x"}, SPEC_BODY, now=0)
    no_sig = {k: v for k, v in h.items() if k != "webhook-signature"}
    assert not signing.verify(SPEC_SECRET, no_sig, SPEC_BODY, now=SPEC_TS)


def test_new_secrets_are_standard_and_random() -> None:
    a, b = signing.new_secret(), signing.new_secret()
    assert a != b
    assert a.startswith("whsec_") and len(base64.b64decode(a[6:])) == 32
    assert signing.secret_problem(a) is None


@pytest.mark.parametrize(
    "secret",
    [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # no prefix
        "whsec_not base64!",
        "whsec_" + base64.b64encode(b"x" * 23).decode(),  # too short
        "whsec_" + base64.b64encode(b"x" * 65).decode(),  # too long
    ],
)
def test_bad_secrets_are_named(secret: str) -> None:
    assert signing.secret_problem(secret)
    with pytest.raises(ValueError):
        signing.sign(secret, "msg", 1, b"")


def test_patterns() -> None:
    assert matches(["*"], "request.dispatched")
    assert matches(["request.*"], "request.dispatched")
    assert matches(["deadline.*", "request.signed"], "request.signed")
    assert matches(["*.overdue"], "deadline.overdue")
    assert not matches(["request.*"], "deadline.overdue")
    assert not matches(["request.signed"], "request.signed_off")
    assert not matches(["request.*"], "requests.x")
    assert not matches([], "request.signed")
    for good in ("*", "request.*", "request.dispatched", "*.overdue", "a_b.c1"):
        assert pattern_problem(good) is None
    for bad in ("", "Request.*", "request..x", "request.", "re?uest", "a b", "x" * 65, "a\n"):
        assert pattern_problem(bad), bad
