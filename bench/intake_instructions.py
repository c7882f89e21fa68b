"""Instructions per submit, counted by callgrind: a figure that does not move with whatever
else the machine runs, for a change too small to see in `intake.py`'s rates (a few percent
against a machine whose speed moves by a third between runs minutes apart).

    .venv/bin/python bench/intake_instructions.py [--db sqlite|postgresql] [--n 300]
    .venv/bin/python bench/intake_instructions.py --src /tmp/other-checkout/src   # another tree
    .venv/bin/python bench/intake_instructions.py --through asgi   # with FastAPI's part
    .venv/bin/python bench/intake_instructions.py --through bare   # the bare route, the floor

What it does: runs itself twice under `valgrind --tool=callgrind` (each run: a fresh database,
migrated, the tests' directory, 200 submits to warm up, then --n submits, or none), and prints
the difference of the two totals over --n: the instructions of one submit as
`POST /api/v1/requests` does it at the service level (the generations' read, the
credentials from the cache, `service.take_in`, `present_written` and its JSON), without
the HTTP stack. Valgrind runs the interpreter about 50 times slower: ~3 min for the two runs
at the default --n, one after the other. On PostgreSQL the count is the client's alone (the
server's work is not counted).

With --through asgi, each submit is `POST /api/v1/requests` into `create_app(runtime)` called
as an ASGI app on an event loop in the measured process (no socket, no uvicorn): the count
adds the middleware, routing, the gate, the dependencies, the body's validation and the
hand-off to the thread pool, the event loop's thread and the worker's both counted. With
--through bare, the same for the bare route of `intake.py --http-bare` (a plain endpoint
running the bare Core transaction that writes one submit's rows): the floor of the ratio
behind the same HTTP stack, so that the two counts give that ratio whatever the machine's
speed at the time.

With --src, both runs import Huying from that folder instead (e.g. a worktree of another
commit), so two trees compare side by side: run the script once per tree.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
WARMUP = 200


def submits(db: str, n: int, through: str) -> None:
    """The measured process: warm up, then `n` submits."""
    sys.path.insert(0, str(HERE))
    from _common import build_world, fresh_database, make_settings, submit_body

    if through in ("asgi", "bare"):
        asgi_submits(db, n, bare=through == "bare")
        return

    from huying import migrate
    from huying.auth.service import authenticate
    from huying.requests import service
    from huying.requests.presenters import present_written
    from huying.requests.schemas import SubmitIn
    from huying.runtime import build_runtime

    with fresh_database(db, None) as url:
        rt = build_runtime(make_settings(url))
        migrate.upgrade(rt.db)
        token = build_world(rt)["integration"]
        bodies = [
            SubmitIn.model_validate(submit_body(title=f"新厂房用电增容 {i}"))
            for i in range(WARMUP + n)
        ]
        for body in bodies:
            with rt.transaction() as s:
                service.start_submit(session=s)
                who = authenticate(session=s, token=token, now=rt.now())
                done = service.take_in(
                    rt=rt, session=s, principal=who, body=body, idempotency_key=None
                )
                assert done.names is not None
                present_written(
                    s,
                    done.request,
                    deadlines=done.deadlines,
                    timeline=done.timeline,
                    names=done.names,
                    tz=rt.calendar.tz,
                ).model_dump_json()
        rt.close()


def asgi_submits(db: str, n: int, *, bare: bool = False) -> None:
    """`submits` through the ASGI app, one call at a time; with `bare`, calls of the bare
    route of `intake.py --http-bare` instead (its Core transaction writing the rows of one
    submit made first), the floor of the intake's ratio behind the same HTTP stack."""
    import asyncio
    import json

    from _common import asgi_call, build_world, fresh_database, make_settings, submit_body
    from _server import _add_bare_route

    from huying import migrate
    from huying.app import create_app
    from huying.runtime import build_runtime

    with fresh_database(db, None) as url:
        rt = build_runtime(make_settings(url))
        migrate.upgrade(rt.db)
        token = build_world(rt)["integration"]
        if bare:
            _add_bare_route(rt)
        app = create_app(rt)
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
        bodies = [
            json.dumps(submit_body(title=f"新厂房用电增容 {i}")).encode() for i in range(WARMUP + n)
        ]

        async def call(path: str, body: bytes) -> None:
            status = await asgi_call(app, "POST", path, headers, body)
            if status != 201:
                raise SystemExit(f"ASGI {path}: {status}")

        async def run() -> None:
            if not bare:
                for body in bodies:
                    await call("/api/v1/requests", body)
                return
            await call("/api/v1/requests", bodies[0])
            with rt.db.connect() as conn:
                template = conn.exec_driver_sql("SELECT max(id) FROM requests").scalar_one()
            for _ in bodies:
                await call(f"/api/v1/requests/_bench/bare/{template}", b"")

        asyncio.run(run())
        rt.close()


def counted(db: str, n: int, src: str | None, through: str) -> int:
    """Total instructions of one run of `submits` under callgrind."""
    # one hash seed for every run: with a random one, dicts and sets of strings collide
    # differently each run, and the same tree's count moved by 1% between runs
    env = dict(os.environ, PYTHONHASHSEED="0")
    if src:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/callgrind.out",
                sys.executable,
                __file__,
                "--run",
                "--db",
                db,
                "--n",
                str(n),
                "--through",
                through,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise SystemExit(f"callgrind printed no total:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--src", help="import huying from this folder (another tree's src)")
    ap.add_argument("--through", choices=("service", "asgi", "bare"), default="service")
    ap.add_argument("--run", action="store_true", help=argparse.SUPPRESS)  # the measured run
    args = ap.parse_args()
    if args.run:
        submits(args.db, args.n, args.through)
        return
    with_n = counted(args.db, args.n, args.src, args.through)
    without = counted(args.db, 0, args.src, args.through)
    per = (with_n - without) / args.n
    print(
        f"intake instructions, {args.db}, through {args.through}: {per / 1e6:.2f} M per submit "
        f"({with_n:,} with {args.n} submits, {without:,} with none; {WARMUP} to warm up in both)"
    )


if __name__ == "__main__":
    main()
