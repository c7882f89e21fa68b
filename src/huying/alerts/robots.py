"""Group robots: 企业微信 (WeCom), 钉钉 (DingTalk) and 飞书 (Feishu) custom robots, pure.

For each platform: which URLs are its robots', which secret it takes, how a notice
(`huying.alerts.messages`) becomes its message, how the message is signed, and how its answer
says whether the message was taken. Each as the platform documents it:

- WeCom: `POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…` with
  `{"msgtype": "text", "text": {"content", "mentioned_mobile_list"}}`, no signature (the key
  in the URL is the credential); text at most 2,048 bytes.
- DingTalk: `POST https://oapi.dingtalk.com/robot/send?access_token=…` with
  `{"msgtype": "markdown", "markdown": {"title", "text"}, "at": {"atMobiles", "isAtAll"}}`;
  with a secret (`SEC…`) the URL also gets `timestamp` (ms) and `sign`, the URL-encoded
  Base64 HMAC-SHA256 of `timestamp + "\\n" + secret` keyed by the secret. A mention shows
  only if the text holds `@<mobile>`, so the text ends with them.
- Feishu: `POST https://open.feishu.cn/open-apis/bot/v2/hook/…` with `{"msg_type": "text",
  "content": {"text"}}`; with a secret the body also gets `timestamp` (seconds, a string) and
  `sign`, the Base64 HMAC-SHA256 keyed by `timestamp + "\\n" + secret` over an empty message.
  Its robots mention by user id, not by mobile, so the leaders are named.

All three answer HTTP 200 and put the outcome in the body: `errcode` (WeCom, DingTalk) or
`code` (Feishu; `StatusCode` from older deployments), 0 when the message was taken.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

from huying.alerts import signing
from huying.alerts.messages import Notice
from huying.alerts.urls import host_key

STANDARD = "standard"
ROBOTS = ("wecom", "dingtalk", "feishu")
NAMES = {"wecom": "企业微信", "dingtalk": "钉钉", "feishu": "飞书"}
# The platforms' own hosts; a private deployment's (政务微信, 浙政钉 …) are configured in
# `webhooks.robot_hosts`.
PUBLIC_HOSTS: dict[str, tuple[str, ...]] = {
    "wecom": ("qyapi.weixin.qq.com",),
    "dingtalk": ("oapi.dingtalk.com",),
    "feishu": ("open.feishu.cn", "open.larksuite.com"),
}
# What a public host's robot URL looks like: the path, and where its token is.
_PUBLIC_PATHS = {
    "wecom": (re.compile(r"/cgi-bin/webhook/send"), "key"),
    "dingtalk": (re.compile(r"/robot/send"), "access_token"),
    "feishu": (re.compile(r"/open-apis/bot/v2/hook/[A-Za-z0-9_-]{8,}"), None),
}
# The largest message each takes (bytes of the text), less a margin for the envelope.
MAX_TEXT_BYTES = {"wecom": 2000, "dingtalk": 18000, "feishu": 18000}
MAX_ANSWER_BYTES = 64 * 1024
# Every message ends with it, so a robot that requires a keyword can be given "呼应".
SIGNATURE = "（呼应 · 诉求督办提醒）"
_PRINTABLE = re.compile(r"[\x21-\x7e]+")

# Error codes the platforms document, in our words (their own message is never stored).
KNOWN_ERRORS = {
    "wecom": {
        93000: "the key in the URL is not valid",
        45009: "the robot's rate limit was exceeded",
        40008: "the message type is not accepted",
    },
    "dingtalk": {
        310000: "signature, keyword or IP allow-list mismatch",
        300001: "the access_token in the URL is not valid",
        130101: "the robot's rate limit was exceeded",
        400013: "the group is dissolved or the robot removed",
    },
    "feishu": {
        19021: "signature mismatch, or the timestamp is more than an hour off",
        19022: "the IP address is not on the robot's allow-list",
        19024: "the message lacks the robot's keyword",
        9499: "the message is malformed",
        11232: "the robot's rate limit was exceeded",
    },
}


def is_robot(fmt: str) -> bool:
    return fmt in ROBOTS


# --- what a subscription may say -----------------------------------------------------


def secret_problem(fmt: str, secret: str) -> str | None:
    """Why `secret` does not fit a subscription of this format, or None."""
    if fmt == STANDARD:
        return signing.secret_problem(secret)
    if fmt == "wecom":
        return "a WeCom robot has no secret: its key is in the URL"
    if not _PRINTABLE.fullmatch(secret):
        return "a robot's secret is printable ASCII without spaces"
    if fmt == "dingtalk" and not (secret.startswith("SEC") and len(secret) >= 16):
        return "a DingTalk robot's secret starts with SEC (加签 in the robot's security settings)"
    return None


def url_problem(fmt: str, url: str, private_hosts: Mapping[Any, Sequence[str]]) -> str | None:
    """Why `url` is not a robot URL of this format, or None. On a platform's public host
    the URL must be its robot URL (https, its path, its token), which catches a URL pasted
    under the wrong format; on a private host that `webhooks.robot_hosts` names for the
    format, any http(s) URL is taken, since private deployments lay out their own paths."""
    if not is_robot(fmt):
        return None
    parts = urlsplit(url)
    host = host_key(parts.hostname or "")
    if host in {host_key(h) for h in private_hosts.get(fmt, ())}:
        return None
    name = NAMES[fmt]
    if host not in PUBLIC_HOSTS[fmt]:
        configured = f"webhooks.robot_hosts.{fmt}"
        return (
            f"a {fmt} ({name}) robot URL is on {' or '.join(PUBLIC_HOSTS[fmt])}, "
            f"or on a private host that {configured} names; {host or 'no host'} is neither"
        )
    path, token = _PUBLIC_PATHS[fmt]
    if parts.scheme.lower() != "https":
        return f"a {fmt} ({name}) robot URL starts with https://"
    if not path.fullmatch(parts.path):
        return f"this is not a {fmt} ({name}) robot URL: the path is not the robot's"
    if token is not None and not parse_qs(parts.query).get(token, [""])[0]:
        return f"a {fmt} ({name}) robot URL carries its {token}"
    return None


# --- the message ----------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    url: str
    body: bytes
    headers: dict[str, str]


def _fit(fmt: str, head: Sequence[str], lines: Sequence[str], tail: Sequence[str]) -> list[str]:
    """`head`, as many of `lines` as fit the platform's size, a line counting the rest, and
    `tail`: a long digest is cut, never refused by the robot."""
    limit = MAX_TEXT_BYTES[fmt]

    def size(parts: Sequence[str]) -> int:
        return len("\n".join(parts).encode())

    kept = list(lines)
    if size([*head, *kept, *tail]) <= limit:
        return [*head, *kept, *tail]
    while kept:
        rest = len(lines) - len(kept)
        more = f"……另有 {rest} 条未列出，请到系统中查看"
        if size([*head, *kept, more, *tail]) <= limit:
            return [*head, *kept, more, *tail]
        kept.pop()
    return [*head, f"……共 {len(lines)} 条，请到系统中查看", *tail]


def _mobiles(notice: Notice) -> list[str]:
    return list(dict.fromkeys(x.mobile for x in notice.leaders if x.mobile))


def _dump(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's `sign` query value (already URL-encoded)."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode("ascii"))


def feishu_sign(secret: str, timestamp: int) -> str:
    """Feishu's `sign` body field."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


def prepare(
    fmt: str, url: str, secret: str | None, notice: Notice, *, now_ms: int, fallback_link: str
) -> Prepared:
    """The POST for one notice to a robot of format `fmt`, signed when there is a secret."""
    link = notice.link or fallback_link
    headers = {"content-type": "application/json"}
    mobiles = _mobiles(notice)
    if fmt == "wecom":
        text = _fit(fmt, [notice.title], notice.lines, [f"详情：{link}", SIGNATURE])
        message: dict[str, Any] = {
            "msgtype": "text",
            "text": {"content": "\n".join(text), "mentioned_mobile_list": mobiles},
        }
        return Prepared(url, _dump(message), headers)
    if fmt == "dingtalk":
        ats = [" ".join(f"@{m}" for m in mobiles)] if mobiles else []
        text = _fit(
            fmt,
            [f"#### {notice.title}"],
            [f"- {line}" for line in notice.lines],
            [f"[查看详情]({link})", SIGNATURE, *ats],
        )
        message = {
            "msgtype": "markdown",
            "markdown": {"title": notice.title, "text": "\n".join(text)},
            "at": {"atMobiles": mobiles, "isAtAll": False},
        }
        if secret:
            sep = "&" if urlsplit(url).query else "?"
            url = f"{url}{sep}timestamp={now_ms}&sign={dingtalk_sign(secret, now_ms)}"
        return Prepared(url, _dump(message), headers)
    if fmt == "feishu":
        text = _fit(fmt, [notice.title], notice.lines, [f"详情：{link}", SIGNATURE])
        message = {"msg_type": "text", "content": {"text": "\n".join(text)}}
        if secret:
            seconds = now_ms // 1000
            message = {"timestamp": str(seconds), "sign": feishu_sign(secret, seconds), **message}
        return Prepared(url, _dump(message), headers)
    raise ValueError(f"not a robot format: {fmt!r}")


# --- the answer -----------------------------------------------------------------------


def answer_error(fmt: str, raw: bytes) -> str | None:
    """Why a robot's 2xx answer means the message was not taken, or None when it was. The
    error code is kept, with its meaning when the platform documents it; never the
    platform's own message."""
    try:
        answer = json.loads(raw)
    except ValueError:
        return "the robot's answer is not JSON"
    if not isinstance(answer, dict):
        return "the robot's answer is not a JSON object"
    for key in ("errcode", "code", "StatusCode"):
        code = answer.get(key)
        if code is None:
            continue
        if code == 0:
            return None
        if not isinstance(code, int) or isinstance(code, bool):
            return "the robot answered an error code that is not a number"
        known = KNOWN_ERRORS.get(fmt, {}).get(code)
        return f"robot error {code}" + (f": {known}" if known else "")
    return "the robot's answer has no error code"
