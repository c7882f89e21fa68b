"""The report facts of a request: recorded by the action that makes them, and derived again
from the stored deadlines by `huying.reports.facts.backfill` (what the migration runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select, update

from huying.cli import main
from huying.reports import facts
from huying.requests.models import Request
from huying.runtime import Runtime
from tests.conftest import ROOT
from tests.reports.conftest import Scenario

HOUR = 3600
COLUMNS = (
    Request.sign_on_time,
    Request.sign_working_seconds,
    Request.first_reply_on_time,
    Request.first_reply_working_seconds,
)


def facts_of(rt: Runtime) -> dict[int, tuple[Any, ...]]:
    with rt.db.connect() as conn:
        return {row[0]: tuple(row[1:]) for row in conn.execute(select(Request.id, *COLUMNS))}


def test_the_actions_record_the_facts(scenario: Scenario) -> None:
    got = facts_of(scenario.rt)
    ids = scenario.ids
    # See test_rates.py's table for the working hours.
    assert got[ids["R1"]] == (True, HOUR // 2, True, 6.5 * HOUR)
    assert got[ids["R2"]] == (False, 13.5 * HOUR, True, 7.5 * HOUR)  # signed late
    # returned by GXJ (that sign deadline was cancelled), then signed by RSJ half an hour
    # after its dispatch; replied late
    assert got[ids["R3"]] == (True, HOUR // 2, False, 40.5 * HOUR)
    # reopened: the first reply stays, the second does not replace it
    assert got[ids["R5"]] == (True, HOUR // 2, True, 10.5 * HOUR)
    assert got[ids["R6"]] == (None, None, None, None)  # never signed
    assert got[ids["R8"]] == (True, HOUR, True, 19.5 * HOUR)
    assert got[ids["R11"]] == (None, None, None, None)  # rejected


def test_the_backfill_derives_what_the_actions_recorded(scenario: Scenario) -> None:
    rt = scenario.rt
    recorded = facts_of(rt)
    with rt.db.begin() as conn:
        conn.execute(update(Request).values({c: None for c in COLUMNS}))
    with rt.db.begin() as conn:
        updated = facts.backfill(conn, rt.calendar)
    assert facts_of(rt) == recorded
    signed = sum(1 for f in recorded.values() if f[0] is not None)
    replied = sum(1 for f in recorded.values() if f[2] is not None)
    assert updated == signed + replied


def test_the_backfill_of_no_deadlines_is_nothing(rt: Runtime) -> None:
    with rt.db.begin() as conn:
        assert facts.backfill(conn, rt.calendar) == 0


def test_the_command_line_derives_them_again(
    scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`huying reports facts`, e.g. after servers of the old version ran beside the migrated
    database and signed without recording."""
    rt = scenario.rt
    recorded = facts_of(rt)
    with rt.db.begin() as conn:
        conn.execute(update(Request).values({c: None for c in COLUMNS}))
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": {"url": rt.settings.database_url},
                "workflows": {"path": str(ROOT / "src/huying/data/workflows")},
            }
        ),
        encoding="utf-8",
    )
    assert main(["--config", str(config), "reports", "facts"]) == 0
    assert "report facts derived from the deadlines: 14" in capsys.readouterr().out
    assert facts_of(rt) == recorded
