"""The rates report over the November scenario of conftest.py, every figure worked out by hand.

The requests received in November, and what became of them by Thursday 26th 12:00:

| | lead now | chain | grid (9) | signed (working h) | first reply (working h) | end | level |
|---|---|---|---|---|---|---|---|
| R1 | GXJ | display | 440112012 | on time, 0.5 | on time, 6.5 | closed, resolved (the enterprise confirms), very satisfied | 0 |
| R2 | GXJ | display | 440112012 | late, 13.5 | on time, 7.5 | closed, resolved (the department's claim: rated by phone, no answer), satisfied | 1 |
| R3 | RSJ (GXJ returned it: GXJ's return) | display | 440112013 | on time, 0.5 | late, 40.5 | closed, resolved (confirmed), satisfied | 1 |
| R4 | GXJ | — | 440112014 | on time, 0.5 | on time, 6.5 | auto-closed unrated, unresolved | 0 |
| R5 | GXJ | display | 440112012 | on time, 0.5 | on time, 10.5 | reopened once (the enterprise: not resolved), closed, resolved (confirmed), basically satisfied | 0 |
| R6 | RSJ | laser | 440112013 | never: overdue now (so due: in sign_due) | — | dispatched | 3 |
| R8 | STREET (dispatched by hand) | display | 440112013 | on time, 1.0 | on time, 19.5 | replied, awaiting the rating | 0 |
| R11 | — (rejected) | display | 440112012 | — | — | rejected | 0 |

Working hours, e.g. R2: dispatched Wed 10:00, signed Fri 09:30 = Wed 2 + 4, Thu 7, Fri 0.5 =
13.5. R3's reply: signed Wed 11:30, replied Thu 26th 10:00 = Wed 0.5 + 4, then five whole
days of 7 h, then 1 = 40.5. R9 (30 October) and R10 (1 December 00:00) are outside.
P90 is the nearest rank, ceil(0.9 n): with n ≤ 10 it is the largest value.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from huying.clock import FrozenClock
from tests.conftest import World, submit_body
from tests.reports.conftest import API, Scenario, at

NOVEMBER = {"from": "2026-11-01", "to": "2026-12-01"}
ZERO_ESC = {"1": 0, "2": 0, "3": 0}
# By any grouping but department, the task counts are null (tests/reports/test_tasks.py
# counts tasks by department). The scenario's only tasks, STREET's 协办 on the POWER
# requests, were cancelled when their requests closed: no task counts anywhere.
NOT_BY_DEPARTMENT: dict[str, Any] = dict.fromkeys(
    ("tasks", "tasks_due", "tasks_replied", "tasks_on_time", "tasks_overdue_open"), None
)


def row(**figures: Any) -> dict[str, Any]:
    """A row with every count 0, every time and rate null, unless given."""
    base: dict[str, Any] = {
        "received": 0,
        "dispatched": 0,
        "sign_due": 0,
        "signed": 0,
        "signed_on_time": 0,
        "replied": 0,
        "replied_on_time": 0,
        "closed": 0,
        "resolved": 0,
        "resolved_confirmed": 0,
        "resolved_claimed": 0,
        "rated": 0,
        "satisfied": 0,
        "reopened": 0,
        "returned": 0,
        "overdue_now": 0,
        "tasks": 0,
        "tasks_due": 0,
        "tasks_replied": 0,
        "tasks_on_time": 0,
        "tasks_overdue_open": 0,
        "escalations": ZERO_ESC,
        "sign_hours_mean": None,
        "sign_hours_p90": None,
        "reply_hours_mean": None,
        "reply_hours_p90": None,
        "response_rate": None,
        "on_time_rate": None,
        "resolution_rate": None,
        "satisfaction_rate": None,
        "task_on_time_rate": None,
    }
    base.update(figures)
    return base


BY_DEPARTMENT = [
    {
        "key": "GXJ",
        "name": "区工信局",
        # R1, R2, R4, R5
        **row(
            received=4,
            dispatched=4,
            sign_due=4,
            signed=4,
            signed_on_time=3,  # R2 late
            replied=4,
            replied_on_time=4,  # first replies; R5's second one does not count
            closed=4,
            resolved=3,  # R4 replied unresolved, then auto-closed
            resolved_confirmed=2,  # R1, R5 (R5's first answer, not resolved, was reopened)
            resolved_claimed=1,  # R2: no answer from the enterprise, the department's claim
            rated=3,  # R4 unrated
            satisfied=3,  # R5's last rating: basically satisfied
            reopened=1,
            returned=1,  # R3: GXJ returned it (RSJ holds it now); by department, who returned
            escalations={"1": 1, "2": 0, "3": 0},  # R2, signed before rung 2
            sign_hours_mean=3.75,  # (0.5 + 13.5 + 0.5 + 0.5) / 4
            sign_hours_p90=13.5,
            reply_hours_mean=7.75,  # (6.5 + 7.5 + 6.5 + 10.5) / 4
            reply_hours_p90=10.5,
            response_rate=0.75,
            on_time_rate=1.0,
            resolution_rate=0.75,
            satisfaction_rate=1.0,
        ),
    },
    {
        "key": "RSJ",
        "name": "区人社局",
        # R3, R6
        **row(
            received=2,
            dispatched=2,
            sign_due=2,  # R3 signed; R6 unsigned past its sign deadline
            signed=1,
            signed_on_time=1,
            replied=1,
            replied_on_time=0,  # R3 late
            closed=1,
            resolved=1,
            resolved_confirmed=1,
            rated=1,
            satisfied=1,
            overdue_now=1,  # R6
            escalations={"1": 2, "2": 1, "3": 1},  # R3 level 1, R6 level 3
            sign_hours_mean=0.5,
            sign_hours_p90=0.5,
            reply_hours_mean=40.5,
            reply_hours_p90=40.5,
            response_rate=0.5,
            on_time_rate=0.0,
            resolution_rate=1.0,
            satisfaction_rate=1.0,
        ),
    },
    {
        "key": "STREET",
        "name": "萝岗街道",
        # R8: replied, not rated yet
        **row(
            received=1,
            dispatched=1,
            sign_due=1,
            signed=1,
            signed_on_time=1,
            replied=1,
            replied_on_time=1,
            sign_hours_mean=1.0,
            sign_hours_p90=1.0,
            reply_hours_mean=19.5,
            reply_hours_p90=19.5,
            response_rate=1.0,
            on_time_rate=1.0,
        ),
    },
    # R11: never dispatched, so no department
    {"key": None, "name": "未派单", **row(received=1)},
]

BY_CHAIN = [
    {
        "key": "display",
        "name": "新型显示",
        # R1, R2, R3, R5, R8, R11
        **row(
            **NOT_BY_DEPARTMENT,
            received=6,
            dispatched=5,
            sign_due=5,
            signed=5,
            signed_on_time=4,  # R2 late
            replied=5,
            replied_on_time=4,  # R3 late
            closed=4,
            resolved=4,
            resolved_confirmed=3,  # R1, R3, R5
            resolved_claimed=1,  # R2
            rated=4,
            satisfied=4,
            reopened=1,
            returned=1,
            escalations={"1": 2, "2": 0, "3": 0},  # R2, R3
            sign_hours_mean=3.2,  # (0.5 + 13.5 + 0.5 + 0.5 + 1) / 5
            sign_hours_p90=13.5,
            reply_hours_mean=16.9,  # (6.5 + 7.5 + 40.5 + 10.5 + 19.5) / 5
            reply_hours_p90=40.5,
            response_rate=0.8,
            on_time_rate=0.8,
            resolution_rate=1.0,
            satisfaction_rate=1.0,
        ),
    },
    {
        "key": "laser",
        "name": "激光",
        # R6
        **row(
            **NOT_BY_DEPARTMENT,
            received=1,
            dispatched=1,
            sign_due=1,  # R6: its sign deadline passed unsigned
            overdue_now=1,
            escalations={"1": 1, "2": 1, "3": 1},
            response_rate=0.0,
        ),
    },
    {
        "key": None,
        "name": "无产业链",
        # R4
        **row(
            **NOT_BY_DEPARTMENT,
            received=1,
            dispatched=1,
            sign_due=1,
            signed=1,
            signed_on_time=1,
            replied=1,
            replied_on_time=1,
            closed=1,
            sign_hours_mean=0.5,
            sign_hours_p90=0.5,
            reply_hours_mean=6.5,
            reply_hours_p90=6.5,
            response_rate=1.0,
            on_time_rate=1.0,
            resolution_rate=0.0,
        ),
    },
]


def rows_of(scenario: Scenario, **params: Any) -> list[dict[str, Any]]:
    body = scenario.report(**params).json()
    rows: list[dict[str, Any]] = body["rows"]
    return rows


def test_by_department_every_figure(scenario: Scenario) -> None:
    body = scenario.report(**NOVEMBER, group_by="department").json()
    assert body["from"] == "2026-11-01T00:00:00+08:00"
    assert body["to"] == "2026-12-01T00:00:00+08:00"
    assert body["group_by"] == "department"
    assert body["escalation_levels"] == [1, 2, 3]
    assert body["rows"] == BY_DEPARTMENT


def test_by_chain_every_figure(scenario: Scenario) -> None:
    assert rows_of(scenario, **NOVEMBER, group_by="chain") == BY_CHAIN


def test_by_grid_category_and_urgency(scenario: Scenario) -> None:
    grid = {r["key"]: r for r in rows_of(scenario, **NOVEMBER, group_by="grid", grid_len=9)}
    assert {k: r["received"] for k, r in grid.items()} == {
        "440112012": 4,  # R1, R2, R5, R11
        "440112013": 3,  # R3, R6, R8
        "440112014": 1,  # R4
    }
    assert grid["440112013"]["name"] == "440112013"
    assert grid["440112013"]["signed_on_time"] == 2  # R3, R8
    assert grid["440112013"]["overdue_now"] == 1  # R6
    cells = rows_of(scenario, **NOVEMBER, group_by="grid", grid_len=15)
    assert [(r["key"], r["received"]) for r in cells] == [
        ("440112012001001", 4),
        ("440112013001001", 2),
        ("440112013002001", 1),
        ("440112014001001", 1),
    ]

    category = rows_of(scenario, **NOVEMBER, group_by="category")
    assert [(r["key"], r["name"], r["received"], r["closed"]) for r in category] == [
        ("HIRE", "用工招聘", 1, 0),
        ("OTHER", "其他诉求", 2, 0),  # R8 replied, R11 rejected
        ("POWER", "用电保障", 5, 5),  # R1-R5
    ]
    urgency = rows_of(scenario, **NOVEMBER, group_by="urgency")
    assert [(r["key"], r["name"], r["received"]) for r in urgency] == [("normal", "一般", 8)]
    everything = urgency[0]
    assert (everything["dispatched"], everything["signed"], everything["signed_on_time"]) == (
        7,
        6,
        5,
    )
    assert everything["sign_due"] == 7  # the six signed and R6, unsigned past its deadline
    assert everything["response_rate"] == round(5 / 7, 4)  # 0.7143
    assert everything["on_time_rate"] == round(5 / 6, 4)  # replied 6, R3 late
    assert everything["escalations"] == {"1": 3, "2": 1, "3": 1}


def test_the_period_counts_requests_by_their_receipt(scenario: Scenario) -> None:
    # The default is the current month in the calendar's time zone: November.
    assert rows_of(scenario) == BY_DEPARTMENT
    assert rows_of(scenario, month="2026-11") == BY_DEPARTMENT
    # from is included (R11 at 00:00 exactly); a second later it is out.
    later = rows_of(scenario, **{"from": "2026-11-01T00:00:01+08:00", "to": "2026-12-01"})
    assert [r["key"] for r in later] == ["GXJ", "RSJ", "STREET"]
    # to is excluded: R10 arrived on 1 December 00:00; R9 in October
    assert [r["received"] for r in rows_of(scenario, month="2026-12")] == [1]
    october = rows_of(scenario, month="2026-10")
    assert [(r["key"], r["received"], r["satisfied"]) for r in october] == [("GXJ", 1, 1)]
    # The same instant written in UTC
    utc = rows_of(scenario, **{"from": "2026-10-31T16:00:00Z", "to": "2026-11-30T16:00:00Z"})
    assert utc == BY_DEPARTMENT
    assert rows_of(scenario, month="2025-11") == []
    # an open end far away costs nothing more: the working-time table stops at now
    far = rows_of(scenario, **{"from": "2026-11-01", "to": "8999-12-31"})
    assert sum(r["received"] for r in far) == 9  # November's 8 and R10


def test_only_supervisors_and_admins(client: TestClient, world: World) -> None:
    url = f"{API}/reports/rates"
    for who in ("supervisor", "admin"):
        assert client.get(url, headers=world.h(who)).status_code == 200
    for who in ("dispatcher", "integration", "gxj"):
        r = client.get(url, headers=world.h(who))
        assert r.status_code == 403, who
        assert r.headers["content-type"] == "application/problem+json"
    assert client.get(url).status_code == 401


def test_bad_parameters_are_422_with_a_reason(client: TestClient, world: World) -> None:
    url = f"{API}/reports/rates"
    h = world.h("supervisor")
    for params, words in (
        ({"from": "yesterday"}, "from: expected a date"),
        ({"from": "2026-12-01", "to": "2026-11-01"}, "from must be before to"),
        ({"month": "2026-13"}, "month: expected YYYY-MM"),
        ({"month": "2026-11", "from": "2026-11-01"}, "either month or from/to"),
        ({"from": "2000-01-01"}, "ten years"),
        ({"group_by": "street"}, "group_by"),
        ({"group_by": "grid", "grid_len": 0}, "grid_len"),
        ({"format": "pdf"}, "format"),
    ):
        r = client.get(url, params=params, headers=h)
        assert r.status_code == 422, params
        assert words in r.json()["detail"], (params, r.json()["detail"])


def test_p90_is_the_nearest_rank(client: TestClient, world: World, clock: FrozenClock) -> None:
    """Eleven requests signed 10, 20, … 110 minutes after dispatch: the 90th percentile is the
    value at rank ceil(0.9 × 11) = 10, i.e. 100 minutes, not the largest (110)."""
    ids = []
    for _ in range(11):
        r = client.post(f"{API}/requests", json=submit_body(), headers=world.h("integration"))
        assert r.status_code == 201
        ids.append(r.json()["id"])
    start = clock.now()  # Wednesday 18 November 10:00 +08:00
    for k, rid in enumerate(ids, start=1):
        clock.set(start + timedelta(minutes=10 * k))
        r = client.post(f"{API}/requests/{rid}/actions/sign", json={}, headers=world.h("gxj"))
        assert r.status_code == 200
    rows = client.get(
        f"{API}/reports/rates", params={"month": "2026-11"}, headers=world.h("admin")
    ).json()["rows"]
    [gxj] = [r for r in rows if r["key"] == "GXJ"]  # (STREET's row: its 协办 tasks)
    assert (gxj["received"], gxj["signed"], gxj["signed_on_time"]) == (11, 11, 11)
    assert gxj["sign_hours_mean"] == 1.0  # 60 minutes
    assert gxj["sign_hours_p90"] == round(100 / 60, 2)  # 1.67
    assert gxj["reply_hours_p90"] is None
    assert gxj["response_rate"] == 1.0


def test_by_department_a_return_counts_for_the_department_that_made_it(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    """GXJ returns a request twice over (after it came back to it), then STREET takes it:
    GXJ has a row for its return though it holds none of the month's requests now, and the
    request counts once there; STREET, which holds it, returned nothing. A request received
    in October and returned in November is October's."""
    november = clock.now()
    clock.set(at("2026-10-30T10:00:00+08:00"))
    october = client.post(
        f"{API}/requests", json=submit_body(), headers=world.h("integration")
    ).json()["id"]
    clock.set(november)
    r = client.post(
        f"{API}/requests/{october}/actions/return",
        json={"reason": "非本部门职责"},
        headers=world.h("gxj"),
    )
    assert r.status_code == 200, r.text
    rid = client.post(f"{API}/requests", json=submit_body(), headers=world.h("integration")).json()[
        "id"
    ]
    url = f"{API}/requests/{rid}/actions"
    for _ in range(2):
        r = client.post(f"{url}/return", json={"reason": "非本部门职责"}, headers=world.h("gxj"))
        assert r.status_code == 200, r.text
        r = client.post(f"{url}/accept_return", json={}, headers=world.h("dispatcher"))
        assert r.status_code == 200, r.text
        lead = "GXJ" if _ == 0 else "STREET"
        r = client.post(
            f"{url}/dispatch", json={"lead_department": lead}, headers=world.h("dispatcher")
        )
        assert r.status_code == 200, r.text
    rows = client.get(
        f"{API}/reports/rates", params={"month": "2026-11"}, headers=world.h("supervisor")
    ).json()["rows"]
    by_key = {row["key"]: row for row in rows}
    assert set(by_key) == {"GXJ", "STREET"}
    assert by_key["GXJ"] == {"key": "GXJ", "name": "区工信局", **row(returned=1)}
    assert (by_key["STREET"]["received"], by_key["STREET"]["returned"]) == (1, 0)
    [by_chain] = client.get(
        f"{API}/reports/rates",
        params={"month": "2026-11", "group_by": "chain"},
        headers=world.h("supervisor"),
    ).json()["rows"]
    assert by_chain["returned"] == 1  # other groupings: returned at least once


def test_the_api_describes_each_rate_by_the_formula_it_computes(client: TestClient) -> None:
    described = client.get("/openapi.json").json()["components"]["schemas"]["RatesRow"]
    fields = described["properties"]
    assert fields["response_rate"]["description"].startswith(
        "响应率 = 按时签收数 ÷ 应签收数（已签收或签收已超期）; = signed_on_time / sign_due"
    )
    assert fields["resolution_rate"]["description"].startswith(
        "解决率 = 解决数（企业确认为准，企业未答复时以部门答复为准）÷ 办结数; = resolved / closed"
    )
    assert fields["satisfaction_rate"]["description"].startswith(
        "满意率 = 满意数（非常满意、满意、基本满意）÷ 评价数; = satisfied / rated"
    )
