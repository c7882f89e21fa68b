"""The composition root: settings in, everything a process needs out. Built by a factory,
never at import time; tests build their own with their own settings and clock."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from huying.calendar import BusinessCalendar
from huying.clock import Clock, SystemClock
from huying.db import make_engine, make_sessionmaker, snapshot_options
from huying.errors import Unavailable
from huying.settings import Settings
from huying.workflow.definition import WorkflowInvalid, WorkflowSpec, load_dir
from huying.workflow.engine import Engine as WorkflowEngine
from huying.workflow.library import REGISTRY

log = logging.getLogger("huying.db")


def load_workflows(
    settings: Settings,
) -> tuple[dict[tuple[str, int], WorkflowSpec], list[WorkflowInvalid]]:
    return load_dir(settings.workflows_dir, guards=REGISTRY.guards, actions=REGISTRY.actions)


def workflow_rules(settings: Settings) -> dict[str, Any]:
    """The configured numbers the workflow's guards and actions read (`Context.rules`)."""
    return {
        **settings.workflow_rules.model_dump(),
        "ladder_top": settings.ladder_top,
        "suspension_max_count": settings.suspension.max_count,
        "suspension_requires_approval": settings.suspension.requires_approval,
        "extension_max_count": settings.extension.max_count,
    }


def build_calendar(settings: Settings) -> BusinessCalendar:
    cal = settings.calendar
    return BusinessCalendar(
        timezone=cal.timezone,
        working_hours=BusinessCalendar.parse_working_hours(cal.working_hours),
        holidays=cal.holidays,
        extra_holidays=cal.extra_holidays,
        extra_workdays=cal.extra_workdays,
    )


@dataclass
class Runtime:
    settings: Settings
    db: Engine
    sessions: sessionmaker[Session]
    workflows: WorkflowEngine
    calendar: BusinessCalendar
    clock: Clock

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commit at the end, roll back on any error.

        Raises Unavailable (503) when no pooled connection comes free in time: every
        connection is busy, or stuck connecting to a database that does not answer."""
        with self._unit(None) as session:
            yield session

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A unit of work that only reads, every statement of it seeing the same committed
        state: for a read of several statements that must agree with each other (a report:
        its folded months, its counts and its percentiles).

        PostgreSQL: REPEATABLE READ, READ ONLY (under the default READ COMMITTED each
        statement sees what had committed when it began; a read-only transaction never fails
        to serialise, and a write in it fails). SQLite: as `transaction`, which is one
        snapshot already (`db.snapshot_options`)."""
        with self._unit(snapshot_options(self.db)) as session:
            yield session

    @contextmanager
    def _unit(self, options: dict[str, Any] | None) -> Iterator[Session]:
        try:
            with self.sessions() as session, session.begin():
                if options is not None:
                    session.connection(execution_options=options)
                yield session
        except PoolTimeout as exc:
            log.warning("database pool: %s", exc.args[0] if exc.args else "timed out")
            raise Unavailable(
                "the database is unavailable: no connection came free in time; retry shortly"
            ) from exc

    def now(self) -> datetime:
        return self.clock.now()

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.calendar.tz).date()

    def close(self) -> None:
        self.db.dispose()


def checked_workflows(settings: Settings) -> dict[tuple[str, int], WorkflowSpec]:
    """The workflows of `settings.workflows_dir`, parsed and validated.

    Raises WorkflowInvalid when a workflow file is invalid: Huying refuses to start on one."""
    specs, errors = load_workflows(settings)
    if errors:
        raise (
            errors[0]
            if len(errors) == 1
            else WorkflowInvalid(
                "workflows", [f"{e.source}: {p}" for e in errors for p in e.problems]
            )
        )
    return specs


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    workflows: Mapping[tuple[str, int], WorkflowSpec] | None = None,
) -> Runtime:
    """Raises WorkflowInvalid when a workflow file is invalid: Huying refuses to start on one.

    `workflows`: specs already returned by `checked_workflows(settings)`, so that a caller
    that builds many runtimes on the same files (the tests) parses them once; by default
    they are read from `settings.workflows_dir`."""
    specs = checked_workflows(settings) if workflows is None else workflows
    if not any(name == settings.workflows.default for name, _ in specs):
        raise WorkflowInvalid(
            str(settings.workflows_dir),
            [f"the default workflow {settings.workflows.default!r} is not defined"],
        )
    rules = workflow_rules(settings)
    db = make_engine(
        settings.database_url,
        pool_size=settings.database.pool_size,
        connect_timeout=settings.database.connect_timeout,
        pool_timeout=settings.database.pool_timeout,
        statement_timeout=settings.database.statement_timeout,
        echo=settings.database.echo,
    )
    return Runtime(
        settings=settings,
        db=db,
        sessions=make_sessionmaker(db),
        workflows=WorkflowEngine(specs, REGISTRY, rules),
        calendar=build_calendar(settings),
        clock=clock or SystemClock(),
    )
