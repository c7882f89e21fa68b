"""What a round trip to PostgreSQL costs the client, against what the statement carries:
six one-row INSERTs and a COMMIT, each its own round trip, against the same six rows in one
statement (five INSERTs in its WITH clause) and a COMMIT, alternating; then what psycopg
spends turning a long statement's named placeholders into `$n` (it caches that only for
statements under 4,096 characters and 50 parameters), against its raw cursor, which takes
`$n` as written. The evidence for `huying.db.insert_together`.

    .venv/bin/python bench/round_trips.py [--rounds 10] [--n 500] [--url postgresql://...]

CPU is the process's user and system time (getrusage) per transaction; the rounds' median
is printed, and every round's total, with the load average before and after.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import psycopg  # noqa: E402
from _common import load_average  # noqa: E402

TABLES = 6
COLUMNS = 20  # per table in the placeholder part: 120 parameters, about 3,700 characters


def cpu_per_call(fn: Callable[[], None], n: int) -> tuple[float, float]:
    """User and system µs per call of `fn`, over `n` calls."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(n):
        fn()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (
        (after.ru_utime - before.ru_utime) / n * 1e6,
        (after.ru_stime - before.ru_stime) / n * 1e6,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--n", type=int, default=500, help="transactions per round and way")
    args = ap.parse_args()
    conn = psycopg.connect(args.url)
    cur = conn.cursor()
    for i in range(TABLES):
        cur.execute(f"CREATE TEMP TABLE t{i} (id bigint, a text, b timestamptz)")
    conn.commit()
    now = datetime.now(UTC)
    one_row = "INSERT INTO t{} (id, a, b) VALUES (%s, %s, %s)"

    def separate() -> None:
        for i in range(TABLES):
            cur.execute(one_row.format(i), (i, "abc", now))
        conn.commit()

    together_sql = (
        "WITH "
        + ", ".join(f"w{i} AS ({one_row.format(i)})" for i in range(TABLES - 1))
        + " "
        + one_row.format(TABLES - 1)
    )
    together_params = tuple(x for i in range(TABLES) for x in (i, "abc", now))

    def together() -> None:
        cur.execute(together_sql, together_params)
        conn.commit()

    ways = {"six statements": separate, "one statement": together}
    print(f"load average before: {load_average()}")
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in ways}
    for fn in ways.values():  # warm up (psycopg prepares a statement from its 5th run)
        for _ in range(50):
            fn()
    for _ in range(args.rounds):
        for name, fn in ways.items():
            results[name].append(cpu_per_call(fn, args.n))
    print(f"load average after: {load_average()}")
    print(f"\n{TABLES} one-row INSERTs and a COMMIT, {args.rounds} rounds × {args.n}, alternating:")
    for name, found in results.items():
        user = statistics.median(u for u, _ in found)
        system = statistics.median(s for _, s in found)
        every = ", ".join(f"{u + s:.0f}" for u, s in found)
        print(
            f"  {name}: median {user + system:.0f} µs CPU ({user:.0f} user, {system:.0f} system)"
            f" per transaction; each round: {every}"
        )

    # the placeholders of a long statement, converted by psycopg on each call
    from psycopg._queries import PostgresQuery, PostgresRawQuery
    from psycopg.adapt import Transformer

    names = [f"c{i}" for i in range(TABLES * COLUMNS)]

    def insert(i: int, mark: Callable[[int, str], str]) -> str:
        cols = names[i * COLUMNS : (i + 1) * COLUMNS]
        values = ", ".join(mark(i * COLUMNS + k, c) for k, c in enumerate(cols))
        return f"INSERT INTO t{i} ({', '.join(cols)}) VALUES ({values})"

    def statement(mark: Callable[[int, str], str]) -> str:
        ctes = ", ".join(f"w{i} AS ({insert(i, mark)})" for i in range(TABLES - 1))
        return f"WITH {ctes} {insert(TABLES - 1, mark)}"

    named = statement(lambda _, c: f"%({c})s::VARCHAR")
    raw = statement(lambda k, _: f"${k + 1}::VARCHAR")
    transformer = Transformer(conn)
    by_name = {c: "x" for c in names}
    in_order = ["x"] * len(names)
    query, raw_query = PostgresQuery(transformer), PostgresRawQuery(transformer)
    calls = 2000
    named_us = timeit.timeit(lambda: query.convert(named, by_name), number=calls) / calls * 1e6
    raw_us = timeit.timeit(lambda: raw_query.convert(raw, in_order), number=calls) / calls * 1e6
    print(
        f"\nA statement of {TABLES} INSERTs, {len(names)} parameters, {len(named):,} characters:"
        f" psycopg's conversion of its named placeholders {named_us:.0f} µs per call,"
        f" of the raw cursor's $n {raw_us:.1f} µs"
    )
    conn.close()


if __name__ == "__main__":
    main()
