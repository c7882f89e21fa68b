"""The webhook client's transport: it resolves the URL's host itself, checks every address
against the host policy (`huying.alerts.urls`), and connects to exactly an address it
checked. A name that resolves to 127.0.0.1, whether always or only at the moment of
sending (DNS rebinding), is refused before any connection is made.

The request keeps its Host header and, for https, the name is sent as SNI and the
certificate checked against it. Connections are pooled per host name, so a TLS connection
made for one name is never reused for another name on the same address. The policy's
`allow_hosts` come with each request (`extensions[ALLOW_HOSTS]`); without them nothing
beyond the rule is allowed. Proxies from the environment are not used: the check must see
where the connection really goes.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from huying.alerts.urls import Address, HostPolicy, literal_address

ALLOW_HOSTS = "huying.allow_hosts"

# socket.getaddrinfo's signature, as far as it is used here; tests inject their own DNS.
Resolver = Callable[..., Sequence[tuple[Any, Any, Any, Any, tuple[Any, ...]]]]


class Refused(httpx.ConnectError):
    """The host policy forbids the connection; nothing was sent."""


class GuardedTransport(httpx.BaseTransport):
    def __init__(
        self, resolve: Resolver = socket.getaddrinfo, verify: ssl.SSLContext | bool = True
    ) -> None:
        self._resolve = resolve
        self._verify = verify
        self._pools: dict[str, httpx.HTTPTransport] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        host = url.raw_host.decode("ascii")
        policy = HostPolicy.allowing(request.extensions.get(ALLOW_HOSTS, ()))
        addresses = self._addresses(
            request, host, url.port or (443 if url.scheme == "https" else 80)
        )
        for address in addresses:
            if refusal := policy.connect_refusal(host, address):
                raise Refused(refusal, request=request)
        if literal_address(host) is None and url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": host}
        pool = self._pool(host)
        failure: httpx.ConnectError | None = None
        for address in addresses:  # in the resolver's order, as socket.create_connection does
            request.url = url.copy_with(host=str(address))
            try:
                return pool.handle_request(request)
            except httpx.ConnectError as exc:
                failure = exc
        assert failure is not None  # _addresses never returns an empty list
        raise failure

    def _addresses(self, request: httpx.Request, host: str, port: int) -> list[Address]:
        try:
            found = self._resolve(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:  # socket.gaierror: no such name, or DNS is down
            raise httpx.ConnectError(f"cannot resolve {host}", request=request) from exc
        addresses: list[Address] = []
        for *_, sockaddr in found:
            address = literal_address(str(sockaddr[0]))
            if address is not None and address not in addresses:
                addresses.append(address)
        if not addresses:
            raise httpx.ConnectError(f"{host} resolves to no address", request=request)
        return addresses

    def _pool(self, host: str) -> httpx.HTTPTransport:
        with self._lock:
            pool = self._pools.get(host)
            if pool is None:
                pool = self._pools[host] = httpx.HTTPTransport(verify=self._verify)
            return pool

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
