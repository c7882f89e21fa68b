"""Shared helpers for the benchmarks: settings, a fresh database per run, the directory and
keys the tests use (tests/conftest.py's `World`, copied here so bench/ does not import tests/).

Nothing here is timed; it only builds what the timed loops need.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# A bench measures the tree it is in: its src first, ahead of an editable install's (which
# is another checkout's when the bench runs from a worktree of another commit). Each bench
# imports this module before anything that imports huying.
if str(ROOT / "src") in sys.path:
    sys.path.remove(str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "src"))

from huying.settings import Settings, settings_from_mapping  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

# The small directory the tests load too.
WORLD_YAML = (ROOT / "tests" / "world.yaml").read_text(encoding="utf-8")
USCC_A = "91110000600037341L"


def make_settings(url: str, **overrides: object) -> Settings:
    """As tests/conftest.py's make_settings: the project's workflows, defaults otherwise."""
    data: dict[str, object] = {
        # the generators' INSERT … SELECT and VACUUM over 1M rows outlast the 30 s default
        "database": {"url": url, "statement_timeout": 3600},
        "workflows": {"path": str(ROOT / "src/huying/data/workflows")},
    }
    data.update(overrides)
    return settings_from_mapping(data, base_dir=ROOT)


def submit_body(**overrides: object) -> dict[str, object]:
    """As tests/conftest.py's submit_body: POWER routes to GXJ with STREET co-handling."""
    body: dict[str, object] = {
        "enterprise_uscc": USCC_A,
        "category": "POWER",
        "title": "新厂房用电增容",
        "description": "二期厂房投产需要增容至 2000 kVA，请协调供电方案。",
    }
    body.update(overrides)
    return body


@contextmanager
def fresh_database(kind: str, pg_url: str | None = None) -> Iterator[str]:
    """A new, empty database for one run; dropped (PostgreSQL) or deleted (SQLite) after."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="huying_bench_") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    if kind != "postgresql":
        raise SystemExit(f"--db: sqlite or postgresql, not {kind!r}")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(pg_url or os.environ.get("HUYING_BENCH_PG_URL") or DEFAULT_PG)
    name = f"huying_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def build_world(rt: object, roles: tuple[str, ...] = ("integration",)) -> dict[str, str]:
    """Load WORLD_YAML and make one API key per role, as tests/conftest.py's World does.
    Returns role -> bearer token."""
    from huying.auth.service import create_key
    from huying.directory.loader import load_text

    tokens: dict[str, str] = {}
    with rt.transaction() as s:  # type: ignore[attr-defined]
        load_text(
            session=s,
            text=WORLD_YAML,
            path="world.yaml",
            urgencies=rt.settings.urgencies,  # type: ignore[attr-defined]
            now=rt.now(),  # type: ignore[attr-defined]
        )
        for role in roles:
            _, token = create_key(
                session=s,
                role=role,
                department=None,
                name=f"bench {role}",
                now=rt.now(),  # type: ignore[attr-defined]
            )
            tokens[role] = token
    return tokens


def machine_line() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; {interpreter_speed()}"
    )


def interpreter_speed() -> str:
    """The CPU time of a fixed loop of Python additions, the best of three: how fast this
    machine ran the interpreter when the header line was printed (before the timed work or
    after it, as each bench prints its header). Two
    machines with the same model name gave the same code's submit 2.6 ms of server CPU one
    day and 6.5 ms the next, and on the second this loop took 318 ms at one moment and 742
    ms a few minutes later (BENCHMARKS.md, the seventeenth session): a hint for comparing
    runs, not a unit to convert them with."""
    best = float("inf")
    for _ in range(3):
        start, total = time.process_time(), 0
        for i in range(5_000_000):
            total += i
        best = min(best, time.process_time() - start)
    return f"5M Python additions in {best * 1000:.0f} ms"


def load_average() -> str:
    """The 1/5/15-minute load averages: on 2 cores, anything above ~1 means someone else is busy."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def median(values: list[float]) -> float:
    return statistics.median(values)


async def asgi_call(
    app: Any, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> int:
    """One HTTP call straight into an ASGI app on this event loop (no socket, no server):
    the body in one message; the response's status."""
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            *[(k.lower().encode(), v.encode()) for k, v in headers.items()],
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    return int(sent[0]["status"])
