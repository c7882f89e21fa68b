"""Intake with `huying serve --workers N`: one server process against N, in one run on one
database, the sides alternating.

    .venv/bin/python bench/serve_workers.py --db postgresql [--workers 1,2] [--n 1500]
        [--rounds 3] [--concurrency 8] [--warmup 100]

What it does, all on 127.0.0.1:

1. a fresh database (`huying_bench_<hex>` on $HUYING_BENCH_PG_URL, or a SQLite file), the
   migrations, the tests' directory and an `integration` key (`_common.build_world`);
2. one server per entry of `--workers`, each on its own free port, started as `huying serve`
   starts them (`huying.cli`: one process is `uvicorn.Server` on `create_app`, N > 1 is
   `cli._serve_processes`, uvicorn's supervisor over N spawned processes sharing one
   socket), without the deadline worker, so that only submits are measured. On SQLite,
   where `huying serve` refuses N > 1, the same supervisor is started directly, to show why;
3. `--rounds` rounds; in each, every server in turn takes N/rounds submits
   (`POST /api/v1/requests`) from one load generator in this process (httpx.AsyncClient,
   C concurrent workers sharing a keep-alive pool of C connections);
4. per server: submits/s, the ratio to the first server (the rounds' ratios too), p50/p99,
   server CPU per submit (the whole process tree), how the answers spread over the server
   processes (the `X-Huying-Process` header), and the machine's load average.

The two cores are shared by the server processes, PostgreSQL and the load generator: quote
the ratio, not the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

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

from huying import migrate  # noqa: E402
from huying.runtime import build_runtime  # noqa: E402


def serve(url: str, port: int, workers: int) -> None:
    """The server side (`--serve`): what `huying serve --no-worker --workers N` runs, minus
    its SQLite refusal and its migrations (done once by the bench)."""
    import uvicorn

    from huying import cli, serving
    from huying.app import create_app

    rt = build_runtime(make_settings(url))
    sock = cli._bind("127.0.0.1", port)
    if workers > 1:
        serving.serve_processes(rt, sock, workers=workers, run_worker=False)
        return
    app = serving.ServedBy(create_app(rt, run_worker=False))
    config = uvicorn.Config(app, log_level="warning", access_log=False, log_config=None)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


# --- measurement helpers ----------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (Linux /proc)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def _cpu_of_tree(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants, as they stand."""
    total = 0.0
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@dataclass
class Side:
    workers: int
    port: int
    proc: subprocess.Popen[bytes]
    n: int = 0
    errors: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    by_process: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else 0.0


def start(url: str, workers: int, port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, __file__, "--serve", url, "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--workers", str(workers)], stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        time.sleep(0.2)
    stop(proc)
    raise SystemExit(f"the server did not answer within 90 s:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def submits(side: Side, token: str, n: int, concurrency: int, first: int) -> None:
    """n submits to `side`'s port; adds them to its totals."""

    async def go() -> tuple[int, list[float], collections.Counter[str]]:
        counter = itertools.count()
        latencies: list[float] = []
        errors: list[str] = []
        pids: collections.Counter[str] = collections.Counter()
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{side.port}", limits=limits, timeout=60
        ) as client:
            headers = {"Authorization": f"Bearer {token}"}

            async def worker() -> None:
                while (i := next(counter)) < n:
                    body = submit_body(title=f"新厂房用电增容 {first + i}")
                    t = time.perf_counter()
                    r = await client.post("/api/v1/requests", json=body, headers=headers)
                    latencies.append(time.perf_counter() - t)
                    pids[r.headers.get("x-huying-process", "?")] += 1
                    if r.status_code != 201:
                        errors.append(f"{r.status_code} {r.text[:300]}")

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        for e in errors[:3]:
            print(f"  submit failed: {e}", file=sys.stderr)
        return len(errors), latencies, pids

    cpu0 = _cpu_of_tree(side.proc.pid)
    t0 = time.perf_counter()
    errors, latencies, pids = asyncio.run(go())
    seconds = time.perf_counter() - t0
    side.cpu += _cpu_of_tree(side.proc.pid) - cpu0
    side.n += n - errors
    side.errors += errors
    side.seconds += seconds
    side.rates.append((n - errors) / seconds)
    side.latencies += latencies
    side.by_process.update(pids)


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="postgresql")
    ap.add_argument("--workers", default="1,2", help="server processes per server, e.g. 1,2,3")
    ap.add_argument("--n", type=int, default=1500, help="submits per server, over all rounds")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=100, help="unmeasured submits per server")
    ap.add_argument("--pg-url")
    ap.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.port, int(args.workers))
        return 0

    counts = [int(w) for w in args.workers.split(",")]
    per_round = args.n // args.rounds
    print(f"# serve --workers bench, {now_utc()}; {machine_line()}", flush=True)
    print(f"load before: {load_average()}", flush=True)
    with fresh_database(args.db, args.pg_url) as url, tempfile.TemporaryDirectory() as tmp:
        rt = build_runtime(make_settings(url))
        sides: list[Side] = []
        try:
            migrate.upgrade(rt.db, calendar=rt.calendar)
            token = build_world(rt)["integration"]
            for w in counts:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    port = int(s.getsockname()[1])
                proc = start(url, w, port, Path(tmp) / f"serve-{w}.log")
                sides.append(Side(w, port, proc))
            first = 0
            for side in sides:  # warm-up: every process imports, connects, fills its caches
                scratch = Side(side.workers, side.port, side.proc)
                submits(scratch, token, args.warmup, args.concurrency, first)
                first += args.warmup
            for r in range(args.rounds):
                for side in sides if r % 2 == 0 else reversed(sides):
                    submits(side, token, per_round, args.concurrency, first)
                    first += per_round
                print(
                    f"round {r + 1}: "
                    + ", ".join(f"{s.workers}p {s.rates[-1]:.0f}/s" for s in sides)
                    + f"; load {load_average()}",
                    flush=True,
                )
        finally:
            for side in sides:
                stop(side.proc)
            rt.close()

    base = sides[0]
    print(
        f"\n| {args.db}, C={args.concurrency}, {per_round * args.rounds} submits each | "
        "submits/s | vs first | rounds vs first | p50 | p99 | server CPU/submit | "
        "answers per process |\n|---|---|---|---|---|---|---|---|"
    )
    for side in sides:
        ratios = [f"{a / b:.2f}" for a, b in zip(side.rates, base.rates, strict=True)]
        spread = " / ".join(str(n) for _, n in side.by_process.most_common())
        print(
            f"| {side.workers} process{'es' if side.workers > 1 else ''} | {side.rate:.0f} | "
            f"{side.rate / base.rate:.2f}× | {', '.join(ratios)} | {side.pct(0.5):.0f} ms | "
            f"{side.pct(0.99):.0f} ms | {side.cpu / max(side.n, 1) * 1000:.2f} ms | {spread} |"
        )
        if side.errors:
            print(f"  ({side.errors} submits failed)")
    print(
        f"\nload after: {load_average()}; median round ratio "
        + ", ".join(
            f"{s.workers}p {statistics.median(a / b for a, b in zip(s.rates, base.rates, strict=True)):.2f}×"
            for s in sides[1:]
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
