"""`huying.uids`: ids from the OS's CSPRNG, read ahead, never handed out twice: not across
threads, not across a fork; and time-ordered ones (UUIDv7)."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

import pytest

from huying import uids


def test_an_id_is_128_bits_in_hex_and_none_comes_twice() -> None:
    got = [uids.token_hex16() for _ in range(3000)]  # more than one read ahead
    assert all(re.fullmatch(r"[0-9a-f]{32}", g) for g in got)
    assert len(set(got)) == len(got)


def test_threads_never_get_the_same_id() -> None:
    got: list[list[str]] = [[] for _ in range(8)]

    def take(mine: list[str]) -> None:
        mine.extend(uids.token_hex16() for _ in range(1000))

    threads = [threading.Thread(target=take, args=(g,)) for g in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [i for g in got for i in g]
    assert len(flat) == 8000 and len(set(flat)) == 8000


def test_a_forked_child_never_hands_out_its_parents_next_ids() -> None:
    uids.token_hex16()  # bytes read ahead and still unused in the parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            os.write(write, "".join(uids.token_hex16() for _ in range(4)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    parent = "".join(uids.token_hex16() for _ in range(4))
    assert len(child) == 128 and child != parent
    assert not {child[i : i + 32] for i in range(0, 128, 32)} & {
        parent[i : i + 32] for i in range(0, 128, 32)
    }


def test_a_url_safe_token_is_128_bits_in_22_characters() -> None:
    got = [uids.token_urlsafe16() for _ in range(600)]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", g) for g in got)
    assert len(set(got)) == len(got)


def test_an_ordered_id_is_a_uuid7_of_its_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    at_ms = 1_764_900_000_123  # 2025-12-05
    monkeypatch.setattr(time, "time_ns", lambda: at_ms * 1_000_000 + 999_999)
    got = [uids.ordered_hex16() for _ in range(3000)]  # one millisecond, more than one read ahead
    assert all(re.fullmatch(r"[0-9a-f]{32}", g) for g in got)
    assert len(set(got)) == len(got)
    for g in got:
        u = uuid.UUID(g)
        assert (u.version, u.variant) == (7, uuid.RFC_4122)
        assert int(g[:12], 16) == at_ms
    assert len({g[12:] for g in got}) == len(got)  # told apart by their random bits alone


def test_an_ordered_id_made_later_sorts_after(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(1_764_900_000_000, 1_764_900_000_050))
    monkeypatch.setattr(time, "time_ns", lambda: next(clock) * 1_000_000)
    got = [uids.ordered_hex16() for _ in range(50)]
    assert got == sorted(got)
