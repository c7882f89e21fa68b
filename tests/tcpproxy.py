"""A TCP proxy on loopback that a test can cut and restore: the database "briefly
unreachable" without touching the database server itself."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType
from typing import Literal

Mode = Literal["up", "down", "silent", "paused"]


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`. `cut()` drops every open connection and resets
    new ones; `black_hole()` drops them and takes new ones without ever answering (a route
    that drops packets); `pause()` keeps every connection open and holds every byte, both
    ways (a server that hangs, or a proxy in front of a dead one: the kernel still
    acknowledges every packet); `restore()` forwards again. One listener for the proxy's
    lifetime, so no other socket can take its port in between."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.mode: Mode = "up"
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._stop = threading.Event()
        self._flowing = threading.Event()
        self._flowing.set()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> TcpProxy:
        self._acceptor.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._flowing.set()
        self._acceptor.join()
        self._listener.close()
        self._drop_all()

    def cut(self) -> None:
        self.mode = "down"
        self._drop_all()

    def black_hole(self) -> None:
        self.mode = "silent"
        self._drop_all()

    def pause(self) -> None:
        self.mode = "paused"
        self._flowing.clear()

    def restore(self) -> None:
        self.mode = "up"
        self._flowing.set()

    def _drop_all(self) -> None:
        with self._lock:
            doomed, self._open = self._open, set()
        for s in doomed:
            _reset(s)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.mode == "down":
                _reset(client)
                continue
            with self._lock:
                self._open.add(client)
            if self.mode == "silent":
                continue  # held open, never read: reset by the next cut or at the end
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._open.add(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                self._flowing.wait()
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _reset(s: socket.socket) -> None:
    """Close with an RST, as a host that lost the connection would answer."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
