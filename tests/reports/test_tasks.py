"""Tasks in the rates report, by department: 任务数 and 协办按时率, over the tasks of
conftest.py's `build_tasks` (every one worked out by hand below).

| request (lead) | task | what became of it | counts as |
|---|---|---|---|
| Q1 (STREET) | C1 下派 | replied on time | due, replied, on time |
| Q1 (STREET) | C2 下派 | replied after its deadline passed | due (once), replied |
| Q1 (STREET) | GXJ 协办 | pending, its deadline passed | due, overdue open |
| Q1 (STREET) | RSJ 协办 | signed, its deadline still ahead | a task only: in neither part |
| Q1 (STREET) | C1 下派 | cancelled after its deadline passed | nothing |
| Q2 (GXJ) | STREET 协办 | signed, its deadline passed | due, overdue open |
| Q2 (GXJ) | DIST 协办 | replied on time | due, replied, on time |
| Q0 (October) | C2 下派 | replied on time | nothing in November |

Q3 is led by C1 and has no task; Q5 was never dispatched; GXJ returned Q1 before STREET got
it. A task counts under its own department, whoever leads the request.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import load_workbook  # type: ignore[import-untyped]  # no stubs in the dev deps

from tests.reports.conftest import API, Scenario

NOVEMBER = {"month": "2026-11"}
TASK_FIELDS = ("tasks", "tasks_due", "tasks_replied", "tasks_on_time", "tasks_overdue_open")
RATE = "task_on_time_rate"
TASK_HEADERS = ["任务数", "任务应答复数", "任务答复数", "任务按时答复数", "任务超期未答复数"]
RATE_HEADER = "协办按时率(任务按时答复数÷任务应答复数)"


def figures(row: dict[str, Any]) -> tuple[Any, ...]:
    """A row's task counts in TASK_FIELDS' order, then its 协办按时率."""
    return (*(row[f] for f in TASK_FIELDS), row[RATE])


# key → (tasks, due, replied, on time, overdue open, 协办按时率)
BY_DEPARTMENT = {
    "C1": (1, 1, 1, 1, 0, 1.0),  # the cancelled one is not counted
    "C2": (1, 1, 1, 0, 0, 0.0),  # replied late: due once, not on time
    "DIST": (1, 1, 1, 1, 0, 1.0),
    "GXJ": (1, 1, 0, 0, 1, 0.0),  # open past its deadline: late already
    "RSJ": (1, 0, 0, 0, 0, None),  # its deadline ahead: may yet be on time, no rate
    "STREET": (1, 1, 0, 0, 1, 0.0),
    None: (0, 0, 0, 0, 0, None),  # 未派单: no department, no task
}


def report(sc: Scenario, **params: Any) -> Any:
    r = sc.client.get(
        f"{API}/reports/rates", params={**NOVEMBER, **params}, headers=sc.world.h("supervisor")
    )
    assert r.status_code == 200, r.text
    return r


def by_key(sc: Scenario, **params: Any) -> dict[str | None, dict[str, Any]]:
    return {r["key"]: r for r in report(sc, **params).json()["rows"]}


def test_task_counts_and_the_rate_by_the_department_of_the_task(tasks: Scenario) -> None:
    rows = by_key(tasks)
    assert {k: figures(r) for k, r in rows.items()} == BY_DEPARTMENT
    # The request figures stay the lead's: C2, DIST and RSJ lead none of November's
    # requests and have rows for their tasks alone; GXJ's row has its return of Q1.
    assert {k: r["received"] for k, r in rows.items()} == {
        "C1": 1,  # Q3
        "C2": 0,
        "DIST": 0,
        "GXJ": 1,  # Q2
        "RSJ": 0,
        "STREET": 1,  # Q1
        None: 1,  # Q5
    }
    assert (rows["GXJ"]["returned"], rows["STREET"]["returned"]) == (1, 0)
    assert rows["C2"]["name"] == "水西社区"
    assert [r["key"] for r in report(tasks).json()["rows"]] == [
        "C1",
        "C2",
        "DIST",
        "GXJ",
        "RSJ",
        "STREET",
        None,
    ]


def test_the_rate_divides_the_tasks_on_time_by_the_tasks_due(tasks: Scenario) -> None:
    everyone = list(by_key(tasks).values())
    on_time = sum(r["tasks_on_time"] for r in everyone)
    due = sum(r["tasks_due"] for r in everyone)
    # due = replied + open past the deadline; a task whose deadline is ahead is in neither
    assert due == sum(r["tasks_replied"] + r["tasks_overdue_open"] for r in everyone) == 5
    assert sum(r["tasks"] for r in everyone) == 6  # and RSJ's, not yet due
    assert on_time == 2
    for r in everyone:
        if r["tasks_due"]:
            assert r[RATE] == round(r["tasks_on_time"] / r["tasks_due"], 4)


def test_a_task_belongs_to_the_month_its_request_was_received(tasks: Scenario) -> None:
    """Q0 (30 October) has C2's task replied on time; Q0 itself is STREET's."""
    october = by_key(tasks, month="2026-10")
    assert {k: figures(r) for k, r in october.items()} == {
        "C2": (1, 1, 1, 1, 0, 1.0),
        "STREET": (0, 0, 0, 0, 0, None),
    }
    assert october["STREET"]["received"] == 1
    assert by_key(tasks, month="2026-12") == {}


def test_by_any_other_key_the_task_figures_are_null(tasks: Scenario) -> None:
    for group_by in ("category", "chain", "grid", "urgency"):
        rows = report(tasks, group_by=group_by).json()["rows"]
        assert rows, group_by
        for r in rows:
            assert figures(r) == (None,) * 6, (group_by, r["key"])
    [other] = report(tasks, group_by="category").json()["rows"]
    assert (other["key"], other["received"]) == ("OTHER", 4)  # Q1, Q2, Q3, Q5


def test_csv_carries_the_task_columns(tasks: Scenario) -> None:
    r = report(tasks, format="csv")
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    header = lines[0]
    at = header.index("任务数")
    assert header[at : at + 5] == TASK_HEADERS
    assert header[-1] == RATE_HEADER
    table = {line[0] or None: line for line in lines[1:]}
    assert table["C2"][at : at + 5] == ["1", "1", "1", "0", "0"]
    assert table["GXJ"][at : at + 5] == ["1", "1", "0", "0", "1"]
    assert (table["C1"][-1], table["C2"][-1], table["RSJ"][-1]) == ("1.0", "0.0", "")
    # by another key: the columns are there, and empty
    chain = report(tasks, group_by="chain", format="csv").content.decode("utf-8-sig")
    [chain_header, display] = list(csv.reader(io.StringIO(chain)))
    assert chain_header[at : at + 5] == TASK_HEADERS
    assert display[at : at + 5] == [""] * 5
    assert display[-1] == ""


def test_xlsx_carries_the_task_columns_and_states_the_formula(tasks: Scenario) -> None:
    book = load_workbook(io.BytesIO(report(tasks, format="xlsx").content))
    lines = list(book["三率统计"].iter_rows(values_only=True))
    header = list(lines[0])
    table = {line[0]: dict(zip(header, line, strict=True)) for line in lines[1:]}
    assert [table["STREET"][h] for h in TASK_HEADERS] == [1, 1, 0, 0, 1]
    assert table["DIST"][RATE_HEADER] == 1
    assert table["RSJ"][RATE_HEADER] is None
    column = header.index(RATE_HEADER) + 1
    assert book["三率统计"].cell(row=2, column=column).number_format == "0.00%"
    about = {a: b for a, b in book["说明"].iter_rows(values_only=True)}
    assert about["协办按时率"] == (
        "协办按时率 = 任务按时答复数 ÷ 任务应答复数（协办、下派任务已答复或答复已超期）"
    )
    assert about["任务应答复数"].startswith("任务已答复（按时或超时），或未答复且任务时限已过")


def test_the_api_describes_the_rate_by_its_formula(tasks: Scenario) -> None:
    described = tasks.client.get("/openapi.json").json()["components"]["schemas"]["RatesRow"]
    fields = described["properties"]
    assert fields[RATE]["description"] == (
        "协办按时率 = 任务按时答复数 ÷ 任务应答复数（协办、下派任务已答复或答复已超期）; "
        "= tasks_on_time / tasks_due, null when tasks_due is 0, and by any grouping but "
        "department"
    )
    assert "by department only, null by any other grouping" in fields["tasks"]["description"]
