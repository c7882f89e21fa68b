"""Instructions per submit, counted by callgrind: a figure that does not move with whatever
else the machine runs, for a change too small to see in `intake.py`'s rates (a few percent
against a machine whose speed moves by a third between runs minutes apart).

    .venv/bin/python bench/intake_instructions.py [--db sqlite|postgresql] [--n 300]
    .venv/bin/python bench/intake_instructions.py --src /tmp/other-checkout/src   # another tree

What it does: runs itself twice under `valgrind --tool=callgrind` (each run: a fresh database,
migrated, the tests' directory, 200 submits to warm up, then --n submits, or none), and prints
the difference of the two totals over --n: the instructions of one submit as
`POST /api/v1/requests` does it at the service level (the generations' read, the
credentials from the cache, `service.take_in`, `present_written` and its JSON), without
the HTTP stack. Valgrind runs the interpreter about 50 times slower: ~3 min for the two runs
at the default --n, one after the other. On PostgreSQL the count is the client's alone (the
server's work is not counted).

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


def submits(db: str, n: int) -> None:
    """The measured process: warm up, then `n` submits."""
    sys.path.insert(0, str(HERE))
    from _common import build_world, fresh_database, make_settings, submit_body

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


def counted(db: str, n: int, src: str | None) -> int:
    """Total instructions of one run of `submits` under callgrind."""
    env = dict(os.environ)
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
    ap.add_argument("--run", action="store_true", help=argparse.SUPPRESS)  # the measured run
    args = ap.parse_args()
    if args.run:
        submits(args.db, args.n)
        return
    with_n = counted(args.db, args.n, args.src)
    without = counted(args.db, 0, args.src)
    per = (with_n - without) / args.n
    print(
        f"intake instructions, {args.db}: {per / 1e6:.2f} M per submit "
        f"({with_n:,} with {args.n} submits, {without:,} with none; {WARMUP} to warm up in both)"
    )


if __name__ == "__main__":
    main()
