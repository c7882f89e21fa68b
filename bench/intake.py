"""Intake throughput: `POST /api/v1/requests` end to end over real HTTP, against a bare
SQLAlchemy Core transaction inserting the same rows, in one run on one database.

    .venv/bin/python bench/intake.py --db sqlite|postgresql [--n 2000] [--concurrency 8]
        [--rounds 3] [--warmup 100] [--idempotency-key] [--profile server.prof]

What it does, all on 127.0.0.1:

1. creates a fresh database (SQLite file in a temp dir, or `huying_bench_<hex>` on the
   PostgreSQL at $HUYING_BENCH_PG_URL, default postgres@127.0.0.1:5432; dropped at the end),
   runs the migrations (`huying.migrate.upgrade`), loads the directory tests/conftest.py's
   `World` loads and makes an `integration` API key;
2. starts `uvicorn` serving `huying.app.create_app(runtime)` in a subprocess on a free port
   (bench/_server.py; one process with uvicorn's defaults, uvloop and httptools, as
   `huying serve` runs; access log off);
3. makes one real submit and reads back every row it wrote (the request and every row that
   points at it, found through the foreign keys; the per-table row counts before and after are
   compared so nothing is missed). Those rows are the template of the bare transaction:
   `INSERT requests … RETURNING id`, then the child rows with the new id (executemany), with
   fresh values in every unique column (number, event uid, idempotency key);
4. alternates `--rounds` rounds of: N/rounds submits over HTTP with C concurrent workers
   (httpx.AsyncClient, keep-alive pool of C), then N/rounds bare transactions with C threads
   on the engine `build_runtime` makes for the same database (same pool, same SQLite pragmas);
5. stops the server (SIGINT, then SIGKILL after 30 s) and prints a Markdown table row.

Targets (DESIGN.md, "Targets, part two"): intake >= 50% of the bare transaction behind the
same HTTP server stack (the bare route of `--http-bare`, on by default), and >= 20% of the bare
transaction in process; server CPU per submit <= 2.5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import httpx  # noqa: E402
from _common import (  # noqa: E402
    build_world,
    fresh_database,
    load_average,
    machine_line,
    make_settings,
    now_utc,
    submit_body,
)
from sqlalchemy import (  # noqa: E402
    Engine,
    Integer,
    String,
    Table,
    UniqueConstraint,
    func,
    insert,
    inspect,
    select,
)

import huying.models  # noqa: E402,F401  (every table into Base.metadata)
from huying import migrate  # noqa: E402
from huying.db import Base  # noqa: E402
from huying.runtime import build_runtime  # noqa: E402

TARGET_RATIO = 0.50  # of the bare transaction behind the same HTTP stack
TARGET_RATIO_IN_PROCESS = 0.20
TARGET_SERVER_CPU_MS = 2.5


# --- measurement helpers ----------------------------------------------------------


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    user, system = _cpu_split(pid)
    return user + system


def _cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _machine_busy() -> tuple[float, float, float]:
    """(busy, total, stolen) jiffies of the whole machine. Stolen: time the hypervisor gave
    this virtual machine's CPUs to others while they had work (`st` in vmstat); counted in
    busy. A few percent and the figures move; at 20% they are the neighbours' as much as
    ours (a run's CPU per submit doubled between runs a minute apart)."""
    vals = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = vals[3] + vals[4]
    total = sum(vals[:8])
    return total - idle, total, vals[7]


@dataclass
class Phase:
    name: str
    n: int = 0
    seconds: float = 0.0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    server_cpu: float = 0.0
    server_system: float = 0.0  # the part of server_cpu spent in the kernel (sockets, I/O)
    bench_cpu: float = 0.0
    busy: float = 0.0  # machine busy jiffies
    total: float = 0.0
    stolen: float = 0.0  # of busy: the hypervisor's (`_machine_busy`)

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds else 0.0

    def add(self, other: Phase) -> None:
        self.n += other.n
        self.seconds += other.seconds
        self.errors += other.errors
        self.latencies.extend(other.latencies)
        self.server_cpu += other.server_cpu
        self.server_system += other.server_system
        self.bench_cpu += other.bench_cpu
        self.busy += other.busy
        self.total += other.total
        self.stolen += other.stolen

    def pct(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


def measured(name: str, server_pid: int, body: Callable[[], tuple[int, int, list[float]]]) -> Phase:
    (u0, k0), b0, (m0, t0, s0) = _cpu_split(server_pid), time.process_time(), _machine_busy()
    start = time.perf_counter()
    n, errors, lat = body()
    seconds = time.perf_counter() - start
    (u1, k1), b1, (m1, t1, s1) = _cpu_split(server_pid), time.process_time(), _machine_busy()
    server = u1 - u0 + k1 - k0
    return Phase(name, n, seconds, errors, lat, server, k1 - k0, b1 - b0, m1 - m0, t1 - t0, s1 - s0)


# --- the HTTP side ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    url: str,
    port: int,
    profile: str | None,
    log: Path,
    script: str | None = None,
    bare_route: bool = False,
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, script or str(HERE / "_server.py"), url, str(port)]
    if profile:
        cmd += ["--profile", profile]
    if bare_route:
        cmd += ["--bare-route"]
    out = log.open("wb")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_server(proc)
    raise SystemExit(f"the server did not answer within 60 s:\n{log.read_text()}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def http_submits(
    port: int, token: str, n: int, concurrency: int, idempotency: bool, bare_of: int | None = None
) -> tuple[int, int, list[float]]:
    """n submits with `concurrency` workers sharing one keep-alive pool; (ok, errors, latencies).
    With `bare_of`, POST to the bench-only bare route instead (same client, same pool)."""
    path = "/api/v1/requests" if bare_of is None else f"/api/v1/requests/_bench/bare/{bare_of}"

    async def go() -> tuple[int, int, list[float]]:
        counter = itertools.count()
        latencies: list[float] = []
        errors: list[str] = []
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60
        ) as client:
            headers = {"Authorization": f"Bearer {token}"}

            async def worker() -> None:
                while (i := next(counter)) < n:
                    h = {**headers, "Idempotency-Key": uuid.uuid4().hex} if idempotency else headers
                    t = time.perf_counter()
                    r = await client.post(
                        path, json=submit_body(title=f"新厂房用电增容 {i}"), headers=h
                    )
                    latencies.append(time.perf_counter() - t)
                    if r.status_code != 201:
                        errors.append(f"{r.status_code} {r.text[:300]}")

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        for e in errors[:3]:
            print(f"  submit failed: {e}", file=sys.stderr)
        return n - len(errors), len(errors), latencies

    return asyncio.run(go())


# --- the bare side ----------------------------------------------------------------


@dataclass
class Step:
    table: Table
    rows: list[dict[str, Any]]
    drop_pk: str | None  # an autoincrement id the database assigns
    returning: bool  # later steps point at this table's new ids
    fresh: list[tuple[str, int]]  # unique string columns to fill anew: (column, length)
    remap: dict[str, str]  # fk column -> referenced table name (its ids are remapped)


def _counts(engine: Engine) -> dict[str, int]:
    names = inspect(engine).get_table_names()
    with engine.connect() as conn:
        return {
            n: conn.execute(
                select(func.count()).select_from(Table(n, Base.metadata.__class__()))
            ).scalar_one()
            for n in names
            if n != "alembic_version"
        }


def _auto_pk(t: Table) -> str | None:
    pk = list(t.primary_key.columns)
    if len(pk) == 1 and isinstance(pk[0].type, Integer) and not pk[0].foreign_keys:
        return pk[0].name
    return None


def capture_template(engine: Engine, request_id: int, written: dict[str, int]) -> list[Step]:
    """Every row one submit wrote: the request and, through the foreign keys, what points at it."""
    tables = {t.name: t for t in Base.metadata.sorted_tables}
    captured: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        req = tables["requests"]
        captured["requests"] = [
            dict(r._mapping) for r in conn.execute(select(req).where(req.c.id == request_id))
        ]
        grew = True
        while grew:
            grew = False
            for t in Base.metadata.sorted_tables:
                if t.name in captured:
                    continue
                for fk in t.foreign_keys:
                    ref = fk.column.table.name
                    if ref in captured and ref != t.name and fk.column.primary_key:
                        ids = [r[fk.column.name] for r in captured[ref]]
                        rows = [
                            dict(r._mapping)
                            for r in conn.execute(select(t).where(fk.parent.in_(ids)))
                        ]
                        if rows:
                            captured[t.name] = rows
                            grew = True
                        break
    missing = {n: c for n, c in written.items() if c and len(captured.get(n, ())) != c}
    if missing:
        print(
            f"warning: the submit wrote rows the template does not cover: {missing}",
            file=sys.stderr,
        )

    referenced = {
        fk.column.table.name
        for n in captured
        for fk in tables[n].foreign_keys
        if fk.column.table.name in captured and fk.column.table.name != n
    }
    steps: list[Step] = []
    for t in Base.metadata.sorted_tables:
        if t.name not in captured:
            continue
        remap = {
            fk.parent.name: fk.column.table.name
            for fk in t.foreign_keys
            if fk.column.table.name in captured and fk.column.table.name != t.name
        }
        drop_pk = _auto_pk(t)
        fresh: list[tuple[str, int]] = []
        row0 = captured[t.name][0]
        uniques = [list(c.columns) for c in t.constraints if isinstance(c, UniqueConstraint)]
        uniques += [list(ix.columns) for ix in t.indexes if ix.unique]
        for cols in uniques:
            names = [c.name for c in cols]
            if any(n in remap or n == drop_pk for n in names):
                continue
            if any(row0.get(n) is None for n in names):
                continue  # NULLs never collide
            strings = [(c.name, c.type) for c in cols if isinstance(c.type, String)]
            if strings:
                name, string = strings[-1]
                fresh.append((name, min(string.length or 32, 32)))
        rows = [{k: v for k, v in r.items() if k != drop_pk} for r in captured[t.name]]
        if drop_pk and t.name in referenced:
            for r, orig in zip(rows, captured[t.name], strict=True):
                r["__old_id"] = orig[drop_pk]
        steps.append(Step(t, rows, drop_pk, t.name in referenced, fresh, remap))
    return steps


def bare_once(engine: Engine, steps: list[Step]) -> None:
    """One transaction inserting the template's rows, as a minimal hand-written intake would."""
    new_ids: dict[str, dict[Any, Any]] = {}
    with engine.begin() as conn:
        for step in steps:
            rows = []
            for template in step.rows:
                row = dict(template)
                for col, length in step.fresh:
                    row[col] = uuid.uuid4().hex[:length]
                for col, ref in step.remap.items():
                    if row.get(col) is not None:
                        row[col] = new_ids[ref][row[col]]
                rows.append(row)
            if step.returning:
                t, pk = step.table, step.drop_pk
                ids = new_ids.setdefault(t.name, {})
                for row in rows:
                    old = row.pop("__old_id")
                    ids[old] = conn.execute(insert(t).returning(t.c[pk]), row).scalar_one()  # type: ignore[index]
            elif len(rows) == 1:
                conn.execute(insert(step.table), rows[0])
            else:
                conn.execute(insert(step.table), rows)


def bare_transactions(
    engine: Engine, steps: list[Step], n: int, concurrency: int
) -> tuple[int, int, list[float]]:
    counter = itertools.count()
    latencies: list[float] = []
    errors: list[str] = []

    def worker() -> None:
        while next(counter) < n:
            t = time.perf_counter()
            try:
                bare_once(engine, steps)
            except Exception as exc:  # counted, shown, and the run fails
                errors.append(repr(exc)[:300])
            latencies.append(time.perf_counter() - t)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for e in errors[:3]:
        print(f"  bare transaction failed: {e}", file=sys.stderr)
    return n - len(errors), len(errors), latencies


# --- the run ----------------------------------------------------------------------


def describe(steps: list[Step]) -> str:
    return ", ".join(f"{s.table.name} ×{len(s.rows)}" for s in steps)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    ap.add_argument(
        "--n", type=int, default=2000, help="measured submits (and as many bare transactions)"
    )
    ap.add_argument("--concurrency", type=int, default=8, help="concurrent workers on each side")
    ap.add_argument("--rounds", type=int, default=3, help="alternating intake/bare rounds")
    ap.add_argument(
        "--warmup", type=int, default=100, help="unmeasured submits and bare transactions first"
    )
    ap.add_argument(
        "--idempotency-key",
        action="store_true",
        help="send a fresh Idempotency-Key with each submit",
    )
    ap.add_argument(
        "--pg-url",
        default=None,
        help="admin URL of the PostgreSQL server (default $HUYING_BENCH_PG_URL or postgres@127.0.0.1)",
    )
    ap.add_argument("--profile", default=None, help="cProfile the server into this file (slows it)")
    ap.add_argument(
        "--http-bare",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the bare transaction behind a bare HTTP route of the same server, "
        "same client: the baseline of the first target (default on)",
    )
    ap.add_argument(
        "--server-script",
        default=None,
        help="run this instead of bench/_server.py (same arguments), e.g. a copy with a change to try",
    )
    args = ap.parse_args()
    n, c = max(args.n, 1), max(args.concurrency, 1)
    rounds = max(1, min(args.rounds, n))
    load_before = load_average()

    with fresh_database(args.db, args.pg_url) as url:
        rt = build_runtime(make_settings(url))
        migrate.upgrade(rt.db)
        token = build_world(rt)["integration"]
        log = Path(tempfile.gettempdir()) / f"huying_bench_server_{os.getpid()}.log"
        port = free_port()
        proc = start_server(
            url, port, args.profile, log, args.server_script, bare_route=args.http_bare
        )
        try:
            before = _counts(rt.db)
            headers = {"Authorization": f"Bearer {token}"}
            if args.idempotency_key:
                headers["Idempotency-Key"] = uuid.uuid4().hex
            r = httpx.post(
                f"http://127.0.0.1:{port}/api/v1/requests",
                json=submit_body(),
                headers=headers,
                timeout=30,
            )
            if r.status_code != 201:
                raise SystemExit(f"the template submit failed: {r.status_code} {r.text}")
            after = _counts(rt.db)
            written = {
                k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)
            }
            steps = capture_template(rt.db, r.json()["id"], written)

            template_id = r.json()["id"]
            if args.warmup:
                http_submits(port, token, args.warmup, c, args.idempotency_key)
                bare_transactions(rt.db, steps, args.warmup, c)
                if args.http_bare:
                    http_submits(port, token, args.warmup, c, False, bare_of=template_id)

            intake, bare, http_bare = Phase("intake"), Phase("bare"), Phase("bare over HTTP")
            per_round: list[tuple[float, float]] = []
            for i in range(rounds):
                k = n // rounds + (1 if i < n % rounds else 0)
                a = measured(
                    "intake",
                    proc.pid,
                    functools.partial(http_submits, port, token, k, c, args.idempotency_key),
                )
                b = measured(
                    "bare", proc.pid, functools.partial(bare_transactions, rt.db, steps, k, c)
                )
                intake.add(a)
                bare.add(b)
                per_round.append((a.rate, b.rate))
                if args.http_bare:
                    h = measured(
                        "bare over HTTP",
                        proc.pid,
                        functools.partial(
                            http_submits, port, token, k, c, False, bare_of=template_id
                        ),
                    )
                    http_bare.add(h)
        finally:
            stop_server(proc)
            rt.close()
    if intake.errors == 0 and http_bare.errors == 0:
        log.unlink(missing_ok=True)  # kept when something failed
    else:
        print(f"server log: {log}", file=sys.stderr)

    ratio = intake.rate / bare.rate if bare.rate else 0.0
    http_ratio = intake.rate / http_bare.rate if http_bare.rate else 0.0
    server_ms = intake.server_cpu / max(intake.n, 1) * 1000
    clean = intake.errors == 0 and bare.errors == 0 and http_bare.errors == 0
    ok = (
        clean
        and ratio >= TARGET_RATIO_IN_PROCESS
        and (not args.http_bare or http_ratio >= TARGET_RATIO)
        and server_ms <= TARGET_SERVER_CPU_MS
    )
    print(f"# intake — {args.db} — {now_utc()} — {machine_line()}")
    print(f"one submit writes: {describe(steps)} (counted: {written})")
    print(
        f"N={n} C={c} rounds={rounds} warmup={args.warmup} idempotency-key={'yes' if args.idempotency_key else 'no'}"
    )
    print(f"load average: {load_before} before, {load_average()} after")
    for i, (intake_rate, bare_rate) in enumerate(per_round, 1):
        print(
            f"  round {i}: intake {intake_rate:,.0f}/s, bare {bare_rate:,.0f}/s, ratio {intake_rate / bare_rate:.0%}"
        )
    for p in (intake, bare, http_bare) if args.http_bare else (intake, bare):
        busy = p.busy / p.total if p.total else 0.0
        stolen = p.stolen / p.total if p.total else 0.0
        print(
            f"{p.name}: {p.n} ok, {p.errors} errors in {p.seconds:.2f} s = {p.rate:,.0f}/s; "
            f"latency p50 {p.pct(0.5):.1f} ms, p99 {p.pct(0.99):.1f} ms; "
            f"CPU per op: server {p.server_cpu / max(p.n, 1) * 1000:.2f} ms "
            f"({p.server_system / max(p.n, 1) * 1000:.2f} ms of it in the kernel), "
            f"bench process {p.bench_cpu / max(p.n, 1) * 1000:.2f} ms; machine busy {busy:.0%} of {os.cpu_count()} cores, "
            f"{stolen:.0%} stolen by the host"
        )
    print()

    def verdict(met: bool) -> str:
        return "met" if met and clean else "NOT met"

    print("| benchmark | intake | baseline | figure | target | met |")
    print("|---|---|---|---|---|---|")
    label = f"intake `POST /api/v1/requests`, {args.db}, N={n}, C={c}"
    if args.http_bare:
        print(
            f"| {label}, vs the bare transaction behind the same HTTP stack | "
            f"{intake.rate:,.0f} req/s | {http_bare.rate:,.0f} req/s | {http_ratio:.0%} | ≥ 50% | "
            f"{verdict(http_ratio >= TARGET_RATIO)} |"
        )
    print(
        f"| {label}, vs the bare transaction in process | {intake.rate:,.0f} req/s | "
        f"{bare.rate:,.0f} tx/s | {ratio:.0%} | ≥ 20% | {verdict(ratio >= TARGET_RATIO_IN_PROCESS)} |"
    )
    print(
        f"| {label}, server CPU per submit | {server_ms:.2f} ms | | | ≤ 2.5 ms | "
        f"{verdict(server_ms <= TARGET_SERVER_CPU_MS)} |"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
