"""A supervisor bound to a department reads the report of its subtree: the requests led by one
of its departments, and the returns and tasks of its departments; the month of conftest.py's
`build_tasks` (test_tasks.py tells each task). An unbound supervisor or an admin: everything."""

from __future__ import annotations

import csv
import functools
import io
from datetime import date
from typing import Any

from huying.directory import service as directory
from huying.reports import service as reports
from tests.reports.conftest import API, Scenario, bound_key
from tests.reports.test_tasks import BY_DEPARTMENT, figures

NOVEMBER = {"month": "2026-11"}


def rows(sc: Scenario, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = sc.client.get(f"{API}/reports/rates", params={**NOVEMBER, **params}, headers=headers)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["rows"]
    return found


def test_a_street_supervisor_sees_its_street_and_communities_only(tasks: Scenario) -> None:
    street = bound_key(tasks.rt, "supervisor", "STREET")
    mine = {r["key"]: r for r in rows(tasks, street)}
    # Not GXJ (it leads Q2, has a task on Q1 and returned Q1), RSJ, DIST, nor 未派单 (Q5)
    assert list(mine) == ["C1", "C2", "STREET"]
    assert {k: r["received"] for k, r in mine.items()} == {"C1": 1, "C2": 0, "STREET": 1}
    # Each department's task figures are its own, whoever leads the request: STREET's task
    # is on Q2, which GXJ leads and this supervisor does not see.
    assert {k: figures(r) for k, r in mine.items()} == {
        k: BY_DEPARTMENT[k] for k in ("C1", "C2", "STREET")
    }
    assert all(r["returned"] == 0 for r in mine.values())  # GXJ's return is not the street's


def test_the_other_groupings_and_the_exports_follow_the_scope(tasks: Scenario) -> None:
    street = bound_key(tasks.rt, "supervisor", "STREET")
    [display] = rows(tasks, street, group_by="chain")
    assert (display["key"], display["received"], display["dispatched"]) == ("display", 2, 2)
    assert display["returned"] == 1  # Q1: GXJ returned it, STREET leads it now
    everyone = rows(tasks, tasks.world.h("supervisor"), group_by="chain")
    assert [(r["key"], r["received"]) for r in everyone] == [("display", 4)]

    r = tasks.client.get(
        f"{API}/reports/rates", params={**NOVEMBER, "format": "csv"}, headers=street
    )
    assert r.status_code == 200, r.text
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [line[0] for line in lines[1:]] == ["C1", "C2", "STREET"]


def test_a_community_supervisor_sees_its_community_only(tasks: Scenario) -> None:
    c1 = bound_key(tasks.rt, "supervisor", "C1")
    [row] = rows(tasks, c1)
    assert (row["key"], row["received"], figures(row)) == ("C1", 1, BY_DEPARTMENT["C1"])
    [display] = rows(tasks, c1, group_by="chain")
    assert display["received"] == 1  # Q3


def test_unbound_supervisors_and_admins_see_everything(tasks: Scenario) -> None:
    for who in ("supervisor", "admin"):
        everything = {r["key"]: figures(r) for r in rows(tasks, tasks.world.h(who))}
        assert everything == BY_DEPARTMENT, who


def test_a_bound_dispatcher_still_may_not_read_the_rates(tasks: Scenario) -> None:
    r = tasks.client.get(
        f"{API}/reports/rates",
        params=NOVEMBER,
        headers=bound_key(tasks.rt, "dispatcher", "STREET"),
    )
    assert r.status_code == 403


def test_the_requests_per_day_follow_a_scope(tasks: Scenario) -> None:
    """The console's trend: what the reports service counts for a board bound to a street."""
    rt = tasks.rt
    days = [date(2026, 11, 17), date(2026, 11, 18)]
    with rt.transaction() as s:
        street = directory.subtree(session=s, code="STREET")
        count = functools.partial(reports.requests_per_day, session=s, days=days, tz=rt.calendar.tz)
        assert count() == [0, 4]  # Q1, Q2, Q3, Q5
        assert count(scope=street) == [0, 2]  # Q1 (STREET), Q3 (C1)
        assert count(scope=frozenset({"RSJ"})) == [0, 0]
