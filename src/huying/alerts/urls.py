"""Which hosts a webhook may call: not this machine (loopback), not link-local (which holds
the cloud metadata service at 169.254.169.254), not the unspecified address, unless
`webhooks.allow_hosts` names the host. Private ranges (10/8, 172.16/12, 192.168/16,
fc00::/7) are allowed: intranet IM gateways live there.

A host is read the way the HTTP client reads it. httpx hands any host that is not four
plain decimal parts to the OS resolver, whose inet_aton takes `127.1`, `0x7f000001`,
`0x7f.1`, `2130706433` and `017700000001` for 127.0.0.1 (httpx itself refuses `0177.0.0.1`,
and maps `127。0。0。1` to 127.0.0.1). So every host made only of digits, dots and hex is read
with `socket.inet_aton` here too, and a URL is judged on its host as both `urllib.parse`
and httpx see it. That check needs no DNS; `huying.alerts.transport` checks the addresses a
name resolves to at the moment of connecting.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

RULE = (
    "a webhook may not call loopback, link-local or unspecified addresses "
    "unless webhooks.allow_hosts names the host"
)
_INET_ATON = re.compile(r"[0-9][0-9a-fx.]*")  # what inet_aton may read as an IPv4 address
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")  # "this host on this network": 0.0.0.0


def host_key(host: str) -> str:
    """A host as written in a URL or in `allow_hosts`, in one spelling: lower case, without
    brackets or a trailing dot, a percent-encoded IPv6 zone decoded."""
    key = unquote(host).strip().lower()
    if key.startswith("[") and key.endswith("]"):
        key = key[1:-1]
    return key.rstrip(".")


def literal_address(host: str) -> Address | None:
    """The address a host names by itself, read as the resolver would; None for a name."""
    key = host_key(host)
    if ":" in key:
        try:
            return ipaddress.IPv6Address(key)
        except ValueError:
            return None
    if _INET_ATON.fullmatch(key):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(key))
        except OSError:
            return None
    return None


def _plain(address: Address) -> Address:
    """An IPv4-mapped IPv6 address (::ffff:127.0.0.1) reaches its IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_kind(address: Address) -> str | None:
    """'loopback', 'link-local' or 'unspecified' for an address webhooks may not call."""
    address = _plain(address)
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified or (
        isinstance(address, ipaddress.IPv4Address) and address in _THIS_NETWORK
    ):
        return "unspecified"
    return None


def _name_kind(key: str) -> str | None:
    # RFC 6761: localhost and every name under it is this machine, whatever DNS says.
    return "loopback" if key == "localhost" or key.endswith(".localhost") else None


@dataclass(frozen=True)
class HostPolicy:
    """The hosts `webhooks.allow_hosts` names, as names and as addresses (so 127.0.0.1 also
    allows 127.1 and ::ffff:127.0.0.1, which are the same host)."""

    names: frozenset[str] = frozenset()
    addresses: frozenset[Address] = frozenset()

    @classmethod
    def allowing(cls, hosts: Iterable[str]) -> HostPolicy:
        names: set[str] = set()
        addresses: set[Address] = set()
        for host in hosts:
            address = literal_address(host)
            if address is None:
                names.add(host_key(host))
            else:
                addresses.add(_plain(address))
        return cls(frozenset(names), frozenset(addresses))

    def names_host(self, host: str) -> bool:
        address = literal_address(host)
        return host_key(host) in self.names if address is None else self.names_address(address)

    def names_address(self, address: Address) -> bool:
        return _plain(address) in self.addresses

    def host_refusal(self, host: str) -> str | None:
        """Why a URL's host may not be called, judged on the host alone (no DNS); None if
        it may."""
        if self.names_host(host):
            return None
        key, address = host_key(host), literal_address(host)
        if address is None:
            kind = _name_kind(key)
            return None if kind is None else f"{key} is the {kind} host name; {RULE}"
        kind = address_kind(address)
        if kind is None:
            return None
        same = key == str(_plain(address))
        named = key if same else f"{key} (that is {_plain(address)})"
        return f"{named} is {'an' if kind == 'unspecified' else 'a'} {kind} address; {RULE}"

    def url_refusal(self, url: str) -> str | None:
        """Why a webhook URL may not be called, or None. The host is judged as urllib.parse
        reads it and as httpx, which will send the POSTs, reads it; a URL httpx cannot send
        to is refused too."""
        if refusal := self.host_refusal(urlsplit(url).hostname or ""):
            return refusal
        try:
            client_host = httpx.URL(url).host
        except httpx.InvalidURL as exc:
            return f"the webhook client cannot send to it: {exc}"
        return self.host_refusal(client_host)

    def connect_refusal(self, host: str, address: Address) -> str | None:
        """Why the connection for `host` may not go to `address`, one of the addresses it
        resolved to, or None. `allow_hosts` may name either."""
        if self.names_host(host) or self.names_address(address):
            return None
        kind = address_kind(address)
        if kind is None:
            return None
        if literal_address(host) is None:
            return f"refused: {host_key(host)} resolves to {address}, which is {kind}"
        return f"refused: address {_plain(address)} is {kind}"


_TOKEN_SEGMENT = re.compile(r"[A-Za-z0-9_-]{16,}")


def masked(url: str) -> str:
    """A webhook URL as a page may show it: the scheme, host and path, with what works as a
    credential hidden but for its last four characters: every query value (a WeCom `key`, a
    DingTalk `access_token`) and every long token-like path segment (a Feishu hook's id)."""

    def hide(value: str) -> str:
        return "****" + value[-4:] if len(value) > 8 else "****"

    parts = urlsplit(url)
    path = "/".join(
        hide(seg) if _TOKEN_SEGMENT.fullmatch(seg) else seg for seg in parts.path.split("/")
    )
    query = "&".join(
        f"{name}={hide(value)}" if sep else name
        for name, sep, value in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{path}"
    return f"{shown}?{query}" if query else shown
