"""The intake's short path (issue 16): a submit makes at most 8 SQL statements, answers with
exactly what a read of the request shows, and its caches of the directory and of the
credentials are never stale: a retirement, a change of routing or a revoked key made on one
replica holds on the very next submit on another, and rows written straight through the ORM
(as the tests' fixtures do) are seen at once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from unittest.mock import patch

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, event, select, update

from huying.app import create_app
from huying.auth.service import Principal
from huying.deadlines import repository as deadlines_repo
from huying.directory.models import Category, Enterprise, RoutingRule
from huying.requests import service
from huying.requests.models import Request
from huying.requests.schemas import SubmitIn
from huying.runtime import Runtime, build_runtime
from tests.api.support import assert_problem, nothing_written
from tests.conftest import (
    USCC_A,
    USCC_B,
    World,
    driver_statements,
    make_settings,
    sent_statements,
    submit_body,
)

REQUESTS = "/api/v1/requests"
MOST_STATEMENTS = 8


@pytest.fixture
def other_server(migrated: str, rt: Runtime) -> Iterator[TestClient]:
    """A second replica: its own runtime, caches and app on the same database."""
    runtime = build_runtime(make_settings(migrated), clock=rt.clock)
    with TestClient(create_app(runtime), raise_server_exceptions=False) as c:
        yield c
    runtime.close()


def submit(client: TestClient, world: World, who: str = "integration", **body: Any) -> Any:
    return client.post(REQUESTS, json=submit_body(**body), headers=world.h(who))


class Undone(Exception):
    """Rolls a test's transaction back."""


# --- statements ------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["integration", "dispatcher"])
def test_a_submit_sends_at_most_eight_statements(
    rt: Runtime, client: TestClient, world: World, who: str
) -> None:
    assert submit(client, world, who).status_code == 201  # fills this replica's caches
    with sent_statements(rt.db) as sent:
        r = submit(client, world, who, title="第二次")
    assert r.status_code == 201, r.text
    assert len(sent) <= MOST_STATEMENTS, "\n".join(sent)
    # POWER routes to GXJ with STREET: the request, its co-department, its task, its
    # timeline, deadlines and event, each one INSERT; nothing is read back
    inserts = [s for s in sent if s.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 6, "\n".join(sent)


def test_a_submit_writes_on_the_drivers_cursor_when_nothing_watches(
    rt: Runtime, client: TestClient, world: World
) -> None:
    """With no listener on the engine (as in production), a submit's statements go to the
    driver's cursor (its SELECTs through `huying.db.select_one`, its rows through
    `huying.db.insert_together`), none through SQLAlchemy's execution. What the driver runs:
    on SQLite (its own trace) the six INSERTs between the BEGIN, the one SELECT and the
    COMMIT; on PostgreSQL the SELECT, the new request's `nextval` with its task's, and the
    six INSERTs in one statement, the task with its id known: nothing is read back."""
    sqlite = rt.db.dialect.name == "sqlite"
    assert submit(client, world).status_code == 201  # fills this replica's caches
    ran: list[str] = []

    def trace(dbapi_connection: Any, _record: object, _proxy: object) -> None:
        if sqlite:
            dbapi_connection.set_trace_callback(ran.append)

    executed: list[Any] = []

    def spied(name: str) -> Any:
        real = getattr(Connection, name)

        def spy(self: Connection, statement: Any, *args: Any, **kwargs: Any) -> Any:
            executed.append(statement)
            return real(self, statement, *args, **kwargs)

        return patch.object(Connection, name, spy)

    event.listen(rt.db, "checkout", trace)  # a pool event: SQLAlchemy's execution unwatched
    try:
        with ExitStack() as spies:
            for name in ("execute", "scalar", "scalars", "exec_driver_sql"):
                spies.enter_context(spied(name))
            if not sqlite:  # psycopg has no trace of its own
                spies.enter_context(driver_statements(ran))
            assert submit(client, world, title="第二次").status_code == 201
            assert executed == []
            submitted = len(ran)
            with rt.db.connect() as conn:
                conn.execute(select(1))
                conn.scalar(select(1))
            assert len(executed) == 2  # the spies see what does go through them
    finally:
        event.remove(rt.db, "checkout", trace)
        if sqlite:
            with rt.db.connect() as conn:
                conn.connection.dbapi_connection.set_trace_callback(None)  # type: ignore[union-attr]
    ran = ran[:submitted]  # (not the spies' own)
    inserts = [s for s in ran if "INSERT INTO" in s]
    tables = [t for s in inserts for t in re.findall(r"INSERT INTO (\w+)", s)]
    assert sorted(set(tables)) == [
        "deadlines",
        "events",
        "request_co_departments",
        "request_tasks",
        "requests",
        "timeline_entries",
    ], "\n".join(ran)
    others = [s.split()[0] for s in ran if "INSERT INTO" not in s]
    if sqlite:
        assert others == ["BEGIN", "SELECT", "COMMIT"], "\n".join(ran)
        return
    assert [s for s in others if s != ";"] == ["SELECT", "SELECT"], "\n".join(ran)  # ; pings
    first, second = [s for s in ran if s.startswith("SELECT")]
    assert "nextval" not in first  # the generations: no id before the body is checked
    assert second.count("nextval(") == 2  # the request's and its task's
    assert len(inserts) == 1 and "RETURNING" not in inserts[0], "\n".join(ran)


def test_a_submit_writes_its_rows_without_adding_them_to_the_session(
    rt: Runtime, world: World
) -> None:
    """The new request, its tasks, co-departments and deadlines are written by
    `repo.insert_new` and never enter the session: nothing is left for the commit to flush,
    and a read afterwards finds each row as the submit holds it."""
    with rt.transaction() as s:
        done = service.take_in(
            rt=rt,
            session=s,
            principal=Principal("key:grid", "integration", None, "网格系统"),
            body=SubmitIn.model_validate(submit_body()),
            idempotency_key=None,
        )
        req = done.request
        assert not s.new and not s.dirty and not s.identity_map
        assert req not in s and not any(d in s for d in done.deadlines)
        tasks = [(t.id, t.department_code, t.status) for t in req.tasks]
        # (a deadline's id is not read back: no other row names it)
        deadlines = sorted((d.kind, d.task_id, d.due_at, d.status) for d in done.deadlines)
    assert req.tasks and len(done.deadlines) >= 2
    with rt.transaction() as s:
        read = s.get_one(Request, req.id)
        assert (read.number, read.state, read.co_department_codes) == (
            req.number,
            req.state,
            req.co_department_codes,
        )
        assert [(t.id, t.department_code, t.status) for t in read.tasks] == tasks
        written = deadlines_repo.all_by_request(s, [req.id])[req.id]
        assert sorted((d.kind, d.task_id, d.due_at, d.status) for d in written) == deadlines


def test_a_cold_replica_reads_the_directory_once(
    rt: Runtime, client: TestClient, world: World
) -> None:
    with sent_statements(rt.db) as sent:
        assert submit(client, world).status_code == 201
    cold = len(sent)
    with sent_statements(rt.db) as sent:
        assert submit(client, world, title="第二次").status_code == 201
    assert len(sent) < cold


# --- the answer ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "body"),
    [
        ("integration", {}),
        ("dispatcher", {}),
        ("dispatcher", {"category": "HIRE", "enterprise_uscc": USCC_A}),  # a routing rule
        ("integration", {"external_id": "GRID-1", "contact": {"name": "王", "phone": "1"}}),
        (
            "admin",
            {"urgency": "urgent", "lat": 23.1, "long": 113.4, "media_urls": ["https://a.b/c"]},
        ),
    ],
)
def test_the_answer_is_what_a_read_of_the_request_shows(
    client: TestClient, world: World, who: str, body: dict[str, Any]
) -> None:
    made = submit(client, world, who, **body)
    assert made.status_code == 201, made.text
    answer = made.json()
    assert answer["receipt_url"].startswith("http")
    answer["receipt_url"] = None  # the receipt link is the submitter's alone
    read = client.get(f"{REQUESTS}/{answer['id']}", headers=world.h(who))
    assert read.status_code == 200, read.text
    assert answer == read.json()
    assert made.headers["ETag"] == read.headers["ETag"]


def test_a_request_nothing_routes_is_answered_as_read(
    rt: Runtime, client: TestClient, world: World
) -> None:
    with rt.transaction() as s:  # POWER's lead retired: nothing routes it
        s.execute(
            update(Category).where(Category.code == "POWER").values(lead_department_code=None)
        )
    made = submit(client, world, "dispatcher")
    assert made.status_code == 201, made.text
    answer = made.json() | {"receipt_url": None}
    assert answer["lead_department"] is None
    assert answer == client.get(f"{REQUESTS}/{answer['id']}", headers=world.h("dispatcher")).json()


def test_a_submit_with_several_tasks_gives_each_deadline_its_own_task(
    rt: Runtime, client: TestClient, world: World
) -> None:
    """Only the submit's first task has an id taken before it is written (on PostgreSQL,
    with the request's): the others' are read back, and every task deadline names its own."""
    with rt.transaction() as s:
        s.execute(
            update(Category)
            .where(Category.code == "POWER")
            .values(co_department_codes=["STREET", "RSJ"])
        )
    made = submit(client, world, "dispatcher")  # (staff see the tasks)
    assert made.status_code == 201, made.text
    answer = made.json()
    assert sorted(t["department"]["code"] for t in answer["tasks"]) == ["RSJ", "STREET"]
    with rt.transaction() as s:
        read = s.get_one(Request, answer["id"])
        ids = {t.id: t.department_code for t in read.tasks}
        written = deadlines_repo.all_by_request(s, [read.id])[read.id]
        named = sorted(ids[d.task_id] for d in written if d.task_id is not None)
    assert len(ids) == 2 and named == ["RSJ", "STREET"]
    assert sorted(t["id"] for t in answer["tasks"]) == sorted(ids)
    read_back = client.get(f"{REQUESTS}/{answer['id']}", headers=world.h("dispatcher")).json()
    assert answer | {"receipt_url": None} == read_back


def test_a_replay_answers_with_the_first_request(client: TestClient, world: World) -> None:
    headers = world.h("integration", **{"Idempotency-Key": "k-1"})
    first = client.post(REQUESTS, json=submit_body(), headers=headers)
    again = client.post(REQUESTS, json=submit_body(), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()


# --- caches: exact across replicas ------------------------------------------------------


def test_a_retired_enterprise_is_refused_at_once_on_every_replica(
    client: TestClient, other_server: TestClient, world: World
) -> None:
    assert submit(other_server, world).status_code == 201  # cached there
    r = client.patch(
        f"/api/v1/enterprises/{USCC_A}", json={"active": False}, headers=world.h("admin")
    )
    assert r.status_code == 200, r.text
    with nothing_written(world.rt):
        for server in (other_server, client):
            assert_problem(submit(server, world), 422, "retired")
    r = client.patch(
        f"/api/v1/enterprises/{USCC_A}", json={"active": True}, headers=world.h("admin")
    )
    assert r.status_code == 200, r.text
    assert submit(other_server, world).status_code == 201


def test_a_retired_category_is_refused_at_once_on_every_replica(
    client: TestClient, other_server: TestClient, world: World
) -> None:
    assert submit(other_server, world).status_code == 201
    r = client.patch("/api/v1/categories/POWER", json={"active": False}, headers=world.h("admin"))
    assert r.status_code == 200, r.text
    with nothing_written(world.rt):
        assert_problem(submit(other_server, world), 422, "retired from the call list")


def test_a_retired_department_is_routed_past_at_once_on_every_replica(
    client: TestClient, other_server: TestClient, world: World
) -> None:
    before = submit(other_server, world, who="dispatcher").json()
    assert [d["code"] for d in before["co_departments"]] == ["STREET"]
    r = client.patch("/api/v1/departments/STREET", json={"active": False}, headers=world.h("admin"))
    assert r.status_code == 200, r.text
    after = submit(other_server, world, who="dispatcher").json()
    assert after["lead_department"]["code"] == "GXJ"
    assert after["co_departments"] == [] and after["tasks"] == []


def test_a_revoked_key_is_refused_at_once_at_submit_on_every_replica(
    client: TestClient, other_server: TestClient, world: World
) -> None:
    assert submit(other_server, world).status_code == 201  # the key is cached there
    assert submit(client, world).status_code == 201
    assert client.delete("/api/v1/keys/4", headers=world.h("admin")).status_code == 200
    with nothing_written(world.rt):
        for server in (other_server, client):
            assert_problem(submit(server, world), 401, "revoked")


def test_rows_written_with_the_orm_are_seen_at_once(
    rt: Runtime, client: TestClient, world: World
) -> None:
    assert submit(client, world, category="POWER").status_code == 201
    with rt.transaction() as s:  # as a test's fixture would: no service, no API
        s.add(
            Category(
                code="WATER",
                name="用水保障",
                lead_department_code="RSJ",
                co_department_codes=[],
                time_limits={},
            )
        )
        s.add(RoutingRule(category_code="POWER", chain_code="display", department_code="RSJ"))
    made = submit(client, world, category="WATER", who="dispatcher")
    assert made.status_code == 201, made.text
    assert made.json()["lead_department"] == {"code": "RSJ", "name": "区人社局"}
    rerouted = submit(client, world, who="dispatcher").json()
    assert rerouted["lead_department"]["code"] == "RSJ"
    with rt.transaction() as s:
        s.execute(update(Enterprise).where(Enterprise.uscc == USCC_B).values(active=False))
    assert_problem(submit(client, world, enterprise_uscc=USCC_B), 422, "retired")


def test_a_transaction_that_writes_the_directory_reads_past_the_cache(
    rt: Runtime, client: TestClient, world: World
) -> None:
    from huying.directory import service as directory

    assert submit(client, world).status_code == 201
    with pytest.raises(Undone), rt.transaction() as s:
        assert directory.enterprise_view(session=s, uscc=USCC_A) is not None
        s.execute(update(Enterprise).where(Enterprise.uscc == USCC_A).values(name="改名"))
        seen = directory.enterprise_view(session=s, uscc=USCC_A)
        assert seen is not None and seen.name == "改名"
        raise Undone
    with rt.transaction() as s:
        kept = directory.enterprise_view(session=s, uscc=USCC_A)
        assert kept is not None and kept.name == "北京示例科技有限公司"
