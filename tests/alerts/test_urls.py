"""The webhook URL policy, pure: no database, no DNS, no connection."""

from __future__ import annotations

import ipaddress

import pytest

from huying.alerts.urls import HostPolicy

RULE = HostPolicy()  # allow_hosts empty


@pytest.mark.parametrize(
    ("url", "kind", "address"),
    [
        ("http://127.0.0.1:8080/hooks", "loopback", "127.0.0.1"),
        ("http://127.8.9.10/", "loopback", "127.8.9.10"),
        # the forms the resolver's inet_aton reads as 127.0.0.1 (httpx hands them to it)
        ("http://0x7f000001/", "loopback", "127.0.0.1"),
        ("http://2130706433/", "loopback", "127.0.0.1"),
        ("http://127.1/", "loopback", "127.0.0.1"),
        ("http://0x7f.1/", "loopback", "127.0.0.1"),
        ("http://017700000001/", "loopback", "127.0.0.1"),
        ("http://0177.0.0.1/", "loopback", "127.0.0.1"),
        ("http://127.0.0.1./", "loopback", "127.0.0.1"),
        ("http://127\u30020\u30020\u30021/", "loopback", "127.0.0.1"),  # httpx reads 127.0.0.1
        ("http://hooks.example\\@127.0.0.1/", "loopback", "127.0.0.1"),
        ("https://user:pw@127.0.0.1/", "loopback", "127.0.0.1"),
        ("http://[::1]/", "loopback", "::1"),
        ("http://[0:0:0:0:0:0:0:1]:9000/", "loopback", "::1"),
        ("http://[::ffff:127.0.0.1]/", "loopback", "127.0.0.1"),
        ("http://[::ffff:7f00:1]/", "loopback", "127.0.0.1"),
        ("http://localhost:8000/", "loopback", None),
        ("http://LocalHost./", "loopback", None),
        ("http://hooks.localhost/", "loopback", None),
        ("http://169.254.169.254/latest/meta-data/", "link-local", "169.254.169.254"),
        ("http://0xa9fea9fe/", "link-local", "169.254.169.254"),
        ("http://[fe80::1]/", "link-local", "fe80::1"),
        ("http://[fe80::1%25eth0]/", "link-local", "fe80::1"),
        ("http://[::ffff:169.254.169.254]/", "link-local", "169.254.169.254"),
        ("http://0.0.0.0:8000/", "unspecified", "0.0.0.0"),
        ("http://0/", "unspecified", "0.0.0.0"),
        ("http://[::]/", "unspecified", "::"),
    ],
)
def test_loopback_link_local_and_unspecified_hosts_are_refused(
    url: str, kind: str, address: str | None
) -> None:
    refusal = RULE.url_refusal(url)
    assert refusal is not None, url
    assert f" {kind} " in refusal
    if address is not None:
        assert address in refusal
    assert refusal.endswith("unless webhooks.allow_hosts names the host")


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/in",
        "http://10.1.2.3:8080/im",  # intranet IM gateways live in the private ranges
        "http://172.16.0.1/",
        "http://172.31.255.254/",
        "http://192.168.1.10/",
        "http://[fd12:3456::1]/",
        "https://203.0.113.7/",
        "http://0x0a000001/",  # 10.0.0.1
        "http://localhost.example.com/",
        "http://1.2.3.4.5/",  # not an address: a (strange) name
        "http://xn--fiq228c.example/",
    ],
)
def test_private_ranges_and_other_hosts_are_allowed(url: str) -> None:
    assert RULE.url_refusal(url) is None


def test_a_url_httpx_cannot_send_to_is_refused() -> None:
    # 10.0.0.8 to inet_aton; httpx refuses a dotted quad with a leading zero
    refusal = RULE.url_refusal("http://10.0.0.010/")
    assert refusal is not None and refusal.startswith("the webhook client cannot send to it")


def test_allow_hosts_names_a_host_in_any_spelling() -> None:
    policy = HostPolicy.allowing(["127.0.0.1", "Hooks.Localhost.", "[::1]"])
    for url in (
        "http://127.0.0.1:9000/",
        "http://127.1/",
        "http://0x7f000001/",
        "http://[::ffff:127.0.0.1]/",
        "http://hooks.localhost/",
        "http://[::1]/",
        "http://[0::1]/",
    ):
        assert policy.url_refusal(url) is None, url
    for url in ("http://127.0.0.2/", "http://localhost/", "http://169.254.169.254/"):
        assert policy.url_refusal(url) is not None, url


def test_at_connection_the_resolved_address_is_judged() -> None:
    loopback = ipaddress.ip_address("127.0.0.1")
    public = ipaddress.ip_address("203.0.113.7")
    metadata = ipaddress.ip_address("169.254.169.254")
    assert RULE.connect_refusal("hooks.example", loopback) == (
        "refused: hooks.example resolves to 127.0.0.1, which is loopback"
    )
    assert RULE.connect_refusal("0x7f000001", loopback) == "refused: address 127.0.0.1 is loopback"
    assert RULE.connect_refusal("meta.example", metadata) == (
        "refused: meta.example resolves to 169.254.169.254, which is link-local"
    )
    mapped = ipaddress.ip_address("::ffff:127.0.0.1")
    assert RULE.connect_refusal("::ffff:127.0.0.1", mapped) == (
        "refused: address 127.0.0.1 is loopback"
    )
    assert RULE.connect_refusal("hooks.example", public) is None
    # allow_hosts may name the host or the address it resolves to
    assert HostPolicy.allowing(["hooks.example"]).connect_refusal("hooks.example", loopback) is None
    assert HostPolicy.allowing(["127.0.0.1"]).connect_refusal("hooks.example", loopback) is None
    assert HostPolicy.allowing(["127.0.0.1"]).connect_refusal("meta.example", metadata)
