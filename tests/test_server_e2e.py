"""`huying serve` as a real process, end to end, on SQLite (a file) or on a fresh
PostgreSQL database (HUYING_TEST_DATABASE_URL): the directory loaded with `huying load`,
keys made with `huying keys create`, a webhook receiver on loopback subscribed through the
API, and a request nobody signs. The receiver gets its warning, overdue and the three
escalations, each once, signed; a server stopped before a deadline and started after it
fires that deadline once. Limits are seconds long; every wait is bounded.
"""

from __future__ import annotations

import functools
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from huying.deadlines.models import Deadline
from tests.conftest import PG_URL, WORLD_YAML, _fresh_database, submit_body
from tests.processes import (
    Proc,
    Processes,
    Received,
    Receiver,
    free_port,
    processes,
    receiving,
    run_cli,
    runtime_for,
    wait_until,
    write_config,
)

API = "/api/v1"
SIGN = "5 seconds"  # the warning comes at 3.75 s, the deadline at 5 s
LADDER = ("0 seconds", "2 seconds", "4 seconds")
STEPS = [
    ("request.warning", None),
    ("request.overdue", None),
    ("request.escalated", 1),
    ("request.escalated", 2),
    ("request.escalated", 3),
]
TIMELINE = ["submit", "route", "warn", "overdue", "escalate", "escalate", "escalate"]


@pytest.fixture
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database for this test alone: a SQLite file, or a new PostgreSQL database."""
    yield from _fresh_database(tmp_path_factory)


def start_server(procs: Processes, name: str, config: Path, port: int) -> Proc:
    proc = procs.start(name, "serve", "--config", str(config), "--port", str(port))

    def healthy() -> bool:
        assert proc.alive(), f"the server exited:\n{procs.logs()}"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(f"{name} to answer /healthz", healthy, timeout=45, interval=0.1, diagnose=procs.logs)
    return proc


def stop_server(procs: Processes, proc: Proc) -> None:
    """SIGTERM: uvicorn shuts the app down (the worker's scheduler after its tick) and then
    re-raises the signal, so the exit status is 0 or -SIGTERM; the log tells a clean stop."""
    status = procs.terminate(proc)
    log = proc.log_path.read_text(encoding="utf-8", errors="replace")
    assert status in (0, -signal.SIGTERM), procs.logs()
    assert "Application shutdown complete" in log, procs.logs()
    assert "worker stopped" in log, procs.logs()


def steps_of(receiver: Receiver, rid: int) -> list[Received]:
    """What the receiver accepted for one request, past its dispatch, in arrival order."""
    return [
        c for c in receiver.accepted() if c.request_id == rid and c.type != "request.dispatched"
    ]


def check_steps(receiver: Receiver, rid: int, request: dict[str, Any]) -> list[Received]:
    """Warning, overdue, escalations 1-3: each once, in order, each stamped with its own
    instant (warn_at, due_at, due_at + the rung's delay) and none arriving before it."""
    calls = steps_of(receiver, rid)
    got = [(c.type, c.data.get("level")) for c in calls]
    assert got == STEPS, got
    assert len({c.msg_id for c in calls}) == len(calls)
    sign = next(d for d in request["deadlines"] if d["kind"] == "sign")
    due = datetime.fromisoformat(sign["due_at"])
    expected = [datetime.fromisoformat(sign["warn_at"]), due] + [
        due + timedelta(seconds=int(delay.split()[0])) for delay in LADDER
    ]
    assert [c.occurred_at for c in calls] == expected
    early = [(c.type, c.arrived_at, c.occurred_at) for c in calls if c.arrived_at < c.occurred_at]
    assert not early, early
    return calls


def check_request(api: httpx.Client, rid: int, headers: dict[str, str]) -> dict[str, Any]:
    r = api.get(f"{API}/requests/{rid}", headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert [t["action"] for t in body["timeline"]] == TIMELINE
    assert [t["seq"] for t in body["timeline"]] == list(range(1, len(TIMELINE) + 1))
    assert body["overdue"] is True and body["escalation_level"] == 3
    [sign] = [d for d in body["deadlines"] if d["kind"] == "sign"]
    assert sign["status"] == "missed" and sign["warned"] and sign["escalations"] == 3
    return body


def all_delivered_once(api: httpx.Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = api.get(f"{API}/deliveries", params={"limit": 500}, headers=headers)
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()
    assert {(d["status"], d["attempts"]) for d in rows} == {("delivered", 1)}, rows
    return rows


def test_serve_warns_escalates_and_survives_a_restart(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    config = write_config(tmp_path, database_url, limits={"sign": SIGN}, ladder=LADDER, port=port)
    world = tmp_path / "world.yaml"
    world.write_text(WORLD_YAML, encoding="utf-8")
    timings: dict[str, float] = {}
    began = time.monotonic()

    with (
        receiving(Receiver()) as receiver,
        processes(tmp_path) as procs,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as api,
    ):
        loaded = run_cli("load", str(world), "--config", str(config))
        assert "departments: 4 created" in loaded and "enterprises: 2 created" in loaded, loaded
        admin = run_cli("--config", str(config), "keys", "create", "--role", "admin").strip()
        grid = run_cli("--config", str(config), "keys", "create", "--role", "integration").strip()
        assert admin.startswith("hyk_") and grid.startswith("hyk_") and "\n" not in admin
        as_admin = {"Authorization": f"Bearer {admin}"}
        as_grid = {"Authorization": f"Bearer {grid}"}

        server = start_server(procs, "serve", config, port)
        timings["started"] = time.monotonic() - began
        r = api.post(
            f"{API}/webhooks",
            json={"url": receiver.url, "event_types": ["*"], "description": "e2e"},
            headers=as_admin,
        )
        assert r.status_code == 201, r.text
        receiver.secret = r.json()["secret"]  # made by the server, shown once

        # A request nobody signs: warning, overdue, and the ladder, each once.
        r = api.post(f"{API}/requests", json=submit_body(), headers=as_grid)
        assert r.status_code == 201, r.text
        first = r.json()
        assert first["state"] == "dispatched"
        wait_until(
            "the third escalation of the first request",
            lambda: len(steps_of(receiver, first["id"])) >= len(STEPS),
            timeout=40,
            diagnose=lambda: f"{steps_of(receiver, first['id'])}\n{procs.logs()}",
        )
        timings["laddered"] = time.monotonic() - began
        check_steps(receiver, first["id"], check_request(api, first["id"], as_admin))

        # Stop the server before the next request's first deadline, wait past its whole
        # ladder, start the server again: each step fires once, on its own instant.
        r = api.post(f"{API}/requests", json=submit_body(title="停产检修后复电"), headers=as_grid)
        assert r.status_code == 201, r.text
        second = r.json()
        stop_server(procs, server)
        stopped = datetime.now(UTC)
        sign = next(d for d in second["deadlines"] if d["kind"] == "sign")
        warn_at = datetime.fromisoformat(sign["warn_at"])
        assert stopped < warn_at, f"the server took until {stopped} to stop; warning due {warn_at}"
        rt = runtime_for(config)
        try:
            with rt.transaction() as s:
                row = s.scalars(
                    select(Deadline).where(
                        Deadline.request_id == second["id"], Deadline.kind == "sign"
                    )
                ).one()
                assert (row.warned_at, row.missed_at, row.rungs_fired) == (None, None, 0)
        finally:
            rt.close()
        assert steps_of(receiver, second["id"]) == []

        last_rung = datetime.fromisoformat(sign["due_at"]) + timedelta(seconds=4)
        time.sleep(max(0.0, (last_rung - datetime.now(UTC)).total_seconds()) + 0.5)

        server = start_server(procs, "serve-again", config, port)
        wait_until(
            "the second request's steps after the restart",
            lambda: len(steps_of(receiver, second["id"])) >= len(STEPS),
            timeout=40,
            diagnose=lambda: f"{steps_of(receiver, second['id'])}\n{procs.logs()}",
        )
        calls = check_steps(receiver, second["id"], check_request(api, second["id"], as_admin))
        assert all(c.arrived_at > last_rung for c in calls)

        # Every message of both requests went out once: delivered at the first attempt,
        # nothing pending that could come again; every signature checked out.
        wait_until(
            "every delivery to be made",
            lambda: all(
                d["status"] == "delivered"
                for d in api.get(f"{API}/deliveries", headers=as_admin).json()
            ),
            timeout=20,
        )
        rows = all_delivered_once(api, as_admin)
        assert len(rows) == 2 * (1 + len(STEPS))
        assert receiver.bad_signatures == 0
        received = [c.msg_id for c in receiver.snapshot()]
        assert sorted(received) == sorted(d["event_uid"] for d in rows)
        stop_server(procs, server)
        timings["done"] = time.monotonic() - began
    print(f"\nserve e2e on {database_url.split(':')[0]}: {timings}")


def test_serve_with_no_worker_leaves_the_deadlines_to_a_worker_beside_it(
    tmp_path: Path, database_url: str
) -> None:
    """The deployment past one machine: `huying serve --no-worker` replicas and a separate
    `huying worker`. /healthz lists only the worker process's heartbeat."""
    port = free_port()
    config = write_config(tmp_path, database_url, port=port, tick="0.2 seconds")

    def workers() -> list[dict[str, Any]]:
        body = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
        result: list[dict[str, Any]] = body["workers"]
        return result

    with processes(tmp_path) as procs:
        server = procs.start(
            "serve", "serve", "--config", str(config), "--port", str(port), "--no-worker"
        )

        def healthy() -> bool:
            assert server.alive(), procs.logs()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).is_success
            except httpx.TransportError:
                return False

        wait_until("serve to answer /healthz", healthy, timeout=45, interval=0.1)
        time.sleep(1.0)  # five ticks of 0.2 s, had serve run its worker: nothing to wait for
        assert workers() == [], procs.logs()
        worker = procs.start("worker", "worker", "--config", str(config))
        wait_until("the worker's first tick", workers, timeout=45, interval=0.1)
        [beat] = workers()
        assert beat["name"].endswith(f":{worker.pid}"), beat
        procs.terminate(worker)
        procs.terminate(server)


def test_config_option_after_a_nested_command(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'huying.db'}")
    token = run_cli("keys", "create", "--role", "admin", "--config", str(config))
    assert token.startswith("hyk_")


def test_calendar_due_from_the_command_line() -> None:
    # Wednesday 2026-09-30 16:00; Oct 1-7 are the National Day holidays, Oct 10 a make-up
    # Saturday: the third working day is Saturday the 10th, which ends at 17:30.
    out = run_cli("calendar", "due", "2026-09-30T16:00+08:00", "3 working days")
    assert out.strip() == "2026-10-10T17:30:00+08:00"


def _parent_of(pid: int) -> int:
    """The parent's pid, from /proc (Linux: the tests' platform)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


@pytest.mark.skipif(not PG_URL, reason="--workers 2 needs PostgreSQL: HUYING_TEST_DATABASE_URL")
def test_serve_with_two_workers_answers_from_both_and_ticks_once(
    tmp_path: Path, database_url: str
) -> None:
    """`huying serve --workers 2`: two server processes, children of the one started, answer
    on the one port (each says which in X-Huying-Process); the deadlines tick in the parent
    alone (one heartbeat, the parent's pid) and fire every step of a request submitted to
    either process, once; SIGTERM stops the servers and then the worker, cleanly."""
    port = free_port()
    config = write_config(tmp_path, database_url, limits={"sign": SIGN}, ladder=LADDER, port=port)
    world = tmp_path / "world.yaml"
    world.write_text(WORLD_YAML, encoding="utf-8")
    run_cli("load", str(world), "--config", str(config))
    admin = run_cli("--config", str(config), "keys", "create", "--role", "admin").strip()
    grid = run_cli("--config", str(config), "keys", "create", "--role", "integration").strip()
    as_admin = {"Authorization": f"Bearer {admin}"}
    as_grid = {"Authorization": f"Bearer {grid}"}

    with processes(tmp_path) as procs:
        serve = procs.start(
            "serve", "serve", "--config", str(config), "--port", str(port), "--workers", "2"
        )
        submitted: dict[int, int] = {}  # answering pid -> a request it took

        def both_answered() -> bool:
            assert serve.alive(), procs.logs()
            try:  # a new connection each time: the processes take turns accepting
                r = httpx.post(
                    f"http://127.0.0.1:{port}{API}/requests",
                    json=submit_body(),
                    headers=as_grid,
                    timeout=10,
                )
            except httpx.TransportError:
                return False
            assert r.status_code == 201, r.text
            submitted.setdefault(int(r.headers["x-huying-process"]), r.json()["id"])
            return len(submitted) == 2

        wait_until("both server processes to answer", both_answered, timeout=60, interval=0.05)
        assert serve.pid not in submitted
        assert {_parent_of(pid) for pid in submitted} == {serve.pid}

        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as api:

            def laddered(rid: int) -> bool:
                r = api.get(f"{API}/requests/{rid}", headers=as_admin)
                return bool(r.json()["escalation_level"] == 3)

            for rid in submitted.values():
                wait_until(
                    f"the ladder of request {rid}",
                    functools.partial(laddered, rid),
                    timeout=40,
                    diagnose=procs.logs,
                )
                check_request(api, rid, as_admin)
            workers = api.get("/healthz").json()["workers"]
        assert [w["name"].rsplit(":", 1)[1] for w in workers] == [str(serve.pid)], workers

        assert procs.terminate(serve) == 0, procs.logs()
        log = serve.log_path.read_text(encoding="utf-8", errors="replace")
        assert log.count("Application shutdown complete") == 2, procs.logs()
        assert "worker stopped" in log, procs.logs()
        for pid in submitted:
            assert not Path(f"/proc/{pid}").exists(), f"server process {pid} outlived serve"
