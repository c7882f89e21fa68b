"""Random ids: 128 bits from the operating system's CSPRNG, as `secrets.token_hex(16)` gives
them, but read a few KiB at a time.

`os.urandom` lets go of the GIL for its system call, and a thread that lets go of it while
another thread runs Python waits up to the switch interval (5 ms) to have it back. A burst of
due deadlines makes two events per deadline on the firing thread while the writer thread runs
Python (`huying.requests.firing`): one `secrets.token_hex` per event cost the firing thread
4% of its time in such waits; read ahead, a burst took 8.6% less CPU and 4% less wall time
(paired; BENCHMARKS.md, "Deadlines, 2026-12-03 (fourth session)"). The system call is made
once per 256 ids.
A submit takes three (its request id, its receipt token, its event's uid), on the handler's
thread and the event loop's, which share the GIL the same way.

The bytes are the CSPRNG's all the same; none is handed out twice, and a forked child starts
with none of its parent's (`os.register_at_fork`), so two processes never share an id.

An id kept in a unique index, and made by the thousand, is time-ordered (`ordered_hex16`, a
UUIDv7): each new one lands at the index's end, not on a random page of it. With random
uids, each batch of 500 deadlines fired changed about 800 pages of the events' uid index,
each written to SQLite's log and copied back at the checkpoint: 40% of the log a burst
wrote, and 8% of its time, on a database whose earlier uids were random (BENCHMARKS.md,
"Deadlines: time-ordered event ids", twenty-first session).
"""

from __future__ import annotations

import base64
import os
import threading
import time

_CHUNK = 4096  # bytes read at once: 256 ids of 16


class _ReadAhead:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._at = 0

    def take(self, n: int) -> bytes:
        with self._lock:
            if self._at + n > len(self._buffer):
                self._buffer, self._at = os.urandom(max(_CHUNK, n)), 0
            start, self._at = self._at, self._at + n
            return self._buffer[start : self._at]

    def forget(self) -> None:
        """In a forked child: the parent's bytes are the parent's (a new lock too, in case
        the fork came while another thread held it)."""
        self._lock = threading.Lock()
        self._buffer, self._at = b"", 0


_random = _ReadAhead()
os.register_at_fork(after_in_child=_random.forget)


def token_hex16() -> str:
    """32 hex digits, 128 random bits: what `secrets.token_hex(16)` returns."""
    return _random.take(16).hex()


def ordered_hex16() -> str:
    """A UUIDv7 (RFC 9562, section 5.7) as 32 hex digits: the Unix time in milliseconds (48
    bits), then 74 random bits (with the version and variant bits between them). Ids made
    later sort after (within a millisecond, in no order); two are never the same but by
    chance, 2⁻⁷⁴ for two made in the same millisecond."""
    rand = int.from_bytes(_random.take(10))  # 80 bits: 12 of them for rand_a, 62 for rand_b
    value = (
        (time.time_ns() // 1_000_000) << 80
        | 0x7 << 76  # the version
        | (rand >> 68) << 64
        | 0b10 << 62  # the variant
        | rand & (1 << 62) - 1
    )
    return f"{value:032x}"


def token_urlsafe16() -> str:
    """22 URL-safe characters, 128 random bits: what `secrets.token_urlsafe(16)` returns."""
    return base64.urlsafe_b64encode(_random.take(16)).rstrip(b"=").decode("ascii")
