"""Data for bench/reports.py: N requests in every state of their life, on PostgreSQL.

Generated inside the database by `INSERT … SELECT` over `generate_series`, from a seeded
`random()`, so a million requests take a minute or two and the same seed gives the same rows.
The directory: 20 departments, 8 chains, 40 categories, 2,000 enterprises on 300 grid cells
(15-digit codes: district 6 + street 3 + community 3 + cell 3).

The requests are received from 2026-01-01 to 2026-12-31 (Asia/Shanghai), evenly over the year,
each between 09:00 and 17:00 local time. Each one lives a plausible life and its rows say so:

| share | state now | life |
|---|---|---|
| 2% | rejected | via the dispatchers' queue (dispatch deadline cancelled) |
| 1% | merged | merged while dispatched (sign deadline cancelled) |
| 0.5% | awaiting_dispatch | dispatch deadline open |
| 2.5% | dispatched | sign deadline open |
| 4% | in_progress | signed; reply deadline open |
| 1% | suspended | signed; reply deadline paused |
| 4% | replied | replied; feedback deadline open |
| 85% | closed | rated (78% of all closed in the top three levels), 10% auto-closed unrated, 7% reopened once |

Across those: 10% went through the dispatchers' queue (a met dispatch deadline), 5% were
returned once (a cancelled sign deadline, then dispatched again). Signing takes 0–40 hours of
calendar time (13% late against a 32-hour limit), the first reply 0–9 days (a 7-day limit),
the rating 0–3 days. A request with a missed deadline has escalation level 1–3. The instants are
calendar arithmetic, not the business calendar: the report counts working time itself.

Each request also gets its timeline rows (one per action, `data` empty) and, if returned, its
`request_returns` row; outbox events are not generated, since the report does not read them.
"""

from __future__ import annotations

import time
from string import Template

from sqlalchemy import Engine

DEPARTMENTS = 20
CHAINS = 8
CATEGORIES = 40
ENTERPRISES = 2_000
CELLS = 300
NOW = "2027-02-01 12:00+08"  # "now" for the generated rows: every life above ends before it

_DIRECTORY = f"""
INSERT INTO departments (code, name, parent_code, leaders, created_at)
SELECT 'D' || lpad(i::text, 2, '0'), '部门' || i, NULL, '[]'::jsonb, now()
FROM generate_series(1, {DEPARTMENTS}) i;

INSERT INTO chains (code, name, leader_uscc, liaison_department_code)
SELECT 'chain' || i, '产业链' || i, NULL, 'D' || lpad(i::text, 2, '0')
FROM generate_series(1, {CHAINS}) i;

INSERT INTO categories (code, name, "group", urgency, time_limits, lead_department_code,
                        co_department_codes, description, active)
SELECT 'K' || lpad(i::text, 3, '0'), '类别' || i, '组' || (i % 5),
       CASE WHEN i % 10 = 0 THEN 'urgent' ELSE 'normal' END, '{{}}'::jsonb,
       'D' || lpad((1 + i % {DEPARTMENTS})::text, 2, '0'), '[]'::jsonb, '', true
FROM generate_series(1, {CATEGORIES}) i;

INSERT INTO enterprises (uscc, name, chain_code, grid_code, address, contact_name,
                         contact_phone, created_at)
SELECT '91' || lpad(i::text, 16, '0'), '企业' || i,
       CASE WHEN i % 3 = 0 THEN NULL ELSE 'chain' || (1 + i % {CHAINS}) END,
       '440112' || lpad((1 + i % 6)::text, 3, '0') || lpad((1 + (i / 6) % 10)::text, 3, '0')
                || lpad((1 + (i / 60) % 5)::text, 3, '0'),
       '', '', '', now()
FROM generate_series(1, {ENTERPRISES}) i;
"""

# One row per request: what happened to it and when (NULL where it did not happen).
_LIFE = """
CREATE UNLOGGED TABLE gen_life AS
WITH p AS (
    SELECT i,
           timestamptz '2026-01-01 09:00+08'
             + ((i - 1)::bigint * 365 / $n) * interval '1 day'
             + random() * interval '8 hours' AS created,
           random() AS u_state, random() AS u_path, random() AS u_sign, random() AS u_reply,
           random() AS u_rate, random() AS u_fb, random() AS u_esc,
           1 + floor(random() * $enterprises)::int AS ent,
           1 + floor(random() * $categories)::int AS cat
    FROM generate_series(1, $n) i
), s AS (
    SELECT p.*,
           CASE WHEN u_state < 0.02 THEN 'rejected'
                WHEN u_state < 0.03 THEN 'merged'
                WHEN u_state < 0.035 THEN 'awaiting_dispatch'
                WHEN u_state < 0.06 THEN 'dispatched'
                WHEN u_state < 0.10 THEN 'in_progress'
                WHEN u_state < 0.11 THEN 'suspended'
                WHEN u_state < 0.15 THEN 'replied'
                ELSE 'closed' END AS state,
           (u_path < 0.05 AND u_state >= 0.03) AS returned,
           (u_path >= 0.05 AND u_path < 0.15) OR u_state < 0.02 OR
             (u_state >= 0.03 AND u_state < 0.035) AS manual
    FROM p
), t AS (
    SELECT s.*,
           CASE WHEN manual THEN created + u_path * interval '20 hours' END AS t_dispatch1,
           created + CASE WHEN manual THEN u_path * interval '20 hours' ELSE interval '0' END
                   + CASE WHEN returned THEN interval '4 hours' ELSE interval '0' END
             AS t_dispatch,
           CASE WHEN returned THEN created + CASE WHEN manual THEN u_path * interval '20 hours'
                                                  ELSE interval '0' END + interval '3 hours'
                END AS t_return,
           u_sign * u_sign * interval '40 hours' AS d_sign,
           power(u_reply, 1.5) * interval '9 days' AS d_reply,
           (state = 'closed' AND u_rate >= 0.78 AND u_rate < 0.85) AS reopened
    FROM s
)
SELECT t.*,
       t_dispatch + d_sign AS t_sign,
       t_dispatch + d_sign + d_reply AS t_reply,
       CASE WHEN reopened THEN t_dispatch + d_sign + d_reply + interval '1 day' END AS t_reopen,
       CASE WHEN reopened THEN t_dispatch + d_sign + d_reply + interval '1 day'
                               + u_fb * interval '6 days' END AS t_reply2,
       CASE WHEN state <> 'closed' THEN NULL
            WHEN u_rate >= 0.90 THEN 'auto'
            WHEN u_rate < 0.45 THEN 'very_satisfied'
            WHEN u_rate < 0.72 THEN 'satisfied'
            WHEN u_rate < 0.78 THEN 'basically_satisfied'
            WHEN u_rate < 0.80 THEN 'very_satisfied'
            WHEN u_rate < 0.83 THEN 'satisfied'
            WHEN u_rate < 0.85 THEN 'dissatisfied'
            ELSE 'dissatisfied' END AS final_rating
FROM t
"""

_REQUESTS = """
INSERT INTO requests (id, number, workflow_name, workflow_version, state, enterprise_uscc,
    category_code, urgency, title, description, grid_code, chain_code, source,
    lead_department_code, escalation_level, overdue, return_count, reopen_count, rating,
    resolved, timeline_seq, submitted_by, version, created_at, updated_at, closed_at)
SELECT l.i, 'HY-' || to_char(l.created AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD') || '-'
            || lpad(l.i::text, 7, '0'),
       'service_request', 1, l.state, e.uscc, c.code, c.urgency, '诉求 ' || l.i, '生成的诉求',
       e.grid_code, e.chain_code, 'grid',
       CASE WHEN l.state IN ('rejected', 'awaiting_dispatch') THEN NULL
            ELSE c.lead_department_code END,
       CASE WHEN l.missed THEN 1 + (l.u_esc < 0.3)::int + (l.u_esc < 0.1)::int
            WHEN l.u_esc > 0.995 THEN 1 ELSE 0 END,
       l.overdue, l.returned::int, l.reopened::int,
       CASE WHEN l.final_rating = 'auto' THEN NULL ELSE l.final_rating END,
       CASE WHEN l.state = 'closed' THEN (l.u_fb < 0.92 AND l.final_rating <> 'dissatisfied')
            WHEN l.state = 'replied' THEN l.u_fb < 0.9 END,
       5, 'key:1', 5, l.created, l.created, l.t_closed
FROM (
    SELECT g.*,
           CASE WHEN state = 'closed' AND reopened THEN t_reply2 + u_fb * interval '2 days'
                WHEN state = 'closed' AND final_rating = 'auto' THEN t_reply + interval '4 days'
                WHEN state = 'closed' THEN t_reply + u_fb * interval '3 days'
                WHEN state IN ('rejected', 'merged') THEN created + interval '2 hours'
                END AS t_closed,
           (d_sign > interval '32 hours' AND state NOT IN ('rejected', 'merged',
                                                           'awaiting_dispatch'))
             OR (d_reply > interval '7 days' AND state IN ('replied', 'closed'))
             OR state IN ('dispatched', 'in_progress', 'awaiting_dispatch') AS missed,
           state IN ('dispatched', 'in_progress', 'awaiting_dispatch') AS overdue
    FROM gen_life g
) l
JOIN enterprises e ON e.id = l.ent
JOIN categories c ON c.id = l.cat
"""

# Every deadline row, one INSERT … SELECT per kind of row.
_DEADLINE_COLUMNS = (
    "request_id, kind, status, duration, started_at, due_at, warn_at, warned_at, missed_at, "
    "paused_at, remaining, completed_at, rungs_fired, next_fire_at, version"
)
_DEADLINES = [
    # dispatch: met when a dispatcher dispatched, cancelled on reject/merge, open if waiting
    """SELECT i, 'dispatch',
              CASE WHEN state = 'awaiting_dispatch' THEN 'missed'
                   WHEN state = 'rejected' THEN 'cancelled' ELSE 'met' END,
              '2 working hours', created, created + interval '22 hours', NULL, NULL,
              CASE WHEN state = 'awaiting_dispatch' THEN created + interval '22 hours' END,
              NULL, NULL,
              CASE WHEN state = 'awaiting_dispatch' THEN NULL
                   WHEN state = 'rejected' THEN created + interval '2 hours'
                   ELSE t_dispatch1 END,
              0, NULL, 2
       FROM gen_life WHERE manual""",
    # the sign deadline a return cancelled
    """SELECT i, 'sign', 'cancelled', '1 working day', t_dispatch - interval '4 hours' + interval '0',
              t_dispatch + interval '28 hours', NULL, NULL, NULL, NULL, NULL, t_return, 0, NULL, 2
       FROM gen_life WHERE returned""",
    # the sign deadline of the dispatch that stuck
    """SELECT i, 'sign',
              CASE WHEN state = 'merged' THEN 'cancelled'
                   WHEN d_sign > interval '32 hours' OR state = 'dispatched' THEN 'missed'
                   ELSE 'met' END,
              '1 working day', t_dispatch, t_dispatch + interval '32 hours', NULL, NULL,
              CASE WHEN d_sign > interval '32 hours' OR state = 'dispatched'
                   THEN t_dispatch + interval '32 hours' END,
              NULL, NULL,
              CASE WHEN state = 'dispatched' THEN NULL
                   WHEN state = 'merged' THEN created + interval '2 hours'
                   ELSE t_sign END,
              0, NULL, 2
       FROM gen_life
       WHERE state NOT IN ('rejected', 'awaiting_dispatch')""",
    # the first reply round
    """SELECT i, 'reply',
              CASE WHEN state = 'suspended' THEN 'paused'
                   WHEN d_reply > interval '7 days' OR state = 'in_progress' THEN 'missed'
                   ELSE 'met' END,
              '5 working days', t_sign, t_sign + interval '7 days', NULL, NULL,
              CASE WHEN state <> 'suspended' AND (d_reply > interval '7 days'
                                                  OR state = 'in_progress')
                   THEN t_sign + interval '7 days' END,
              CASE WHEN state = 'suspended' THEN t_sign + interval '1 day' END,
              CASE WHEN state = 'suspended' THEN '3 working days' END,
              CASE WHEN state IN ('in_progress', 'suspended') THEN NULL ELSE t_reply END,
              0, NULL, 2
       FROM gen_life
       WHERE state IN ('in_progress', 'suspended', 'replied', 'closed')""",
    # the reply round a reopen started
    """SELECT i, 'reply', CASE WHEN t_reply2 - t_reopen > interval '7 days' THEN 'missed'
                               ELSE 'met' END,
              '5 working days', t_reopen, t_reopen + interval '7 days', NULL, NULL,
              CASE WHEN t_reply2 - t_reopen > interval '7 days'
                   THEN t_reopen + interval '7 days' END,
              NULL, NULL, t_reply2, 0, NULL, 2
       FROM gen_life WHERE reopened""",
    # feedback: the first round (ended by the rating that reopened, or by closing)
    """SELECT i, 'feedback',
              CASE WHEN state = 'replied' THEN 'running'
                   WHEN final_rating = 'auto' AND NOT reopened THEN 'missed' ELSE 'met' END,
              '3 working days', t_reply, t_reply + interval '4 days', NULL, NULL,
              CASE WHEN final_rating = 'auto' AND NOT reopened
                   THEN t_reply + interval '4 days' END,
              NULL, NULL,
              CASE WHEN state = 'replied' THEN NULL
                   WHEN reopened THEN t_reopen
                   WHEN final_rating = 'auto' THEN t_reply + interval '4 days'
                   ELSE t_reply + u_fb * interval '3 days' END,
              0, CASE WHEN state = 'replied' THEN t_reply + interval '4 days' END, 2
       FROM gen_life WHERE state IN ('replied', 'closed')""",
    """SELECT i, 'feedback', 'met', '3 working days', t_reply2, t_reply2 + interval '4 days',
              NULL, NULL, NULL, NULL, NULL, t_reply2 + u_fb * interval '2 days', 0, NULL, 2
       FROM gen_life WHERE reopened""",
]

# Timeline: one row per action of the life above.
_TIMELINE_SQL = """
INSERT INTO timeline_entries (request_id, seq, action, from_state, to_state, actor, role, at,
                              note, data)
SELECT i, seq, action, from_state, to_state, 'system', 'system', at, NULL, '{}'::jsonb
FROM gen_life,
LATERAL (VALUES
    (1, 'submit', NULL, 'submitted', created),
    (2, 'route', 'submitted', CASE WHEN manual THEN 'awaiting_dispatch' ELSE 'dispatched' END,
        created),
    (3, CASE WHEN state = 'rejected' THEN 'reject' WHEN manual THEN 'dispatch' END,
        'awaiting_dispatch', CASE WHEN state = 'rejected' THEN 'rejected' ELSE 'dispatched' END,
        COALESCE(t_dispatch1, created + interval '2 hours')),
    (4, CASE WHEN returned THEN 'return' END, 'dispatched', 'awaiting_dispatch', t_return),
    (5, CASE WHEN returned THEN 'dispatch' END, 'awaiting_dispatch', 'dispatched', t_dispatch),
    (6, CASE WHEN state = 'merged' THEN 'merge'
             WHEN state NOT IN ('rejected', 'awaiting_dispatch', 'dispatched') THEN 'sign' END,
        'dispatched', CASE WHEN state = 'merged' THEN 'merged' ELSE 'in_progress' END, t_sign),
    (7, CASE WHEN state IN ('replied', 'closed') THEN 'reply'
             WHEN state = 'suspended' THEN 'suspend' END,
        'in_progress', CASE WHEN state = 'suspended' THEN 'suspended' ELSE 'replied' END,
        CASE WHEN state = 'suspended' THEN t_sign + interval '1 day' ELSE t_reply END),
    (8, CASE WHEN reopened THEN 'rate' END, 'replied', 'in_progress', t_reopen),
    (9, CASE WHEN reopened THEN 'reply' END, 'in_progress', 'replied', t_reply2),
    (10, CASE WHEN state = 'closed' AND final_rating = 'auto' THEN 'auto_close'
              WHEN state = 'closed' THEN 'rate' END,
         'replied', 'closed', COALESCE(t_reply2, t_reply) + interval '1 day')
) AS x(seq, action, from_state, to_state, at)
WHERE x.action IS NOT NULL
"""


# Returns: the department that returned the request (the category's lead: it was dispatched
# there first), as `requests.service._apply` records a return.
_RETURNS_SQL = """
INSERT INTO request_returns (request_id, department_code, at, received_at)
SELECT l.i, c.lead_department_code, l.t_return, l.created
FROM gen_life l JOIN requests r ON r.id = l.i JOIN categories c ON c.code = r.category_code
WHERE l.returned
"""


def generate(engine: Engine, *, n: int, seed: float = 0.42, progress: bool = True) -> float:
    """Fill an empty, migrated PostgreSQL database; returns the seconds it took."""
    if engine.dialect.name != "postgresql":
        raise SystemExit("gen_reports: PostgreSQL only")
    t0 = time.perf_counter()

    def step(label: str, sql: str) -> None:
        t = time.perf_counter()
        with engine.begin() as conn:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cursor.execute("SELECT setseed(%s)", (seed,))
            # psycopg without parameters: several statements, and % is the modulo operator
            cursor.execute(
                Template(sql).substitute(n=n, enterprises=ENTERPRISES, categories=CATEGORIES)
            )
        if progress:
            print(f"  {label}: {time.perf_counter() - t:.1f} s", flush=True)

    step("directory", _DIRECTORY)
    step("lives", _LIFE)
    step("requests", _REQUESTS)
    step(
        "deadlines",
        ";\n".join(f"INSERT INTO deadlines ({_DEADLINE_COLUMNS}) {q}" for q in _DEADLINES),
    )
    step("timeline", _TIMELINE_SQL)
    step("returns", _RETURNS_SQL)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE gen_life")
        conn.exec_driver_sql(
            "SELECT setval(pg_get_serial_sequence('requests', 'id'), "
            "(SELECT max(id) FROM requests))"
        )
    t = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM (ANALYZE)")
    if progress:
        print(f"  vacuum analyze: {time.perf_counter() - t:.1f} s", flush=True)
    return time.perf_counter() - t0
