"""Settings: `config.yaml` parsed into typed, validated objects.

Nothing here runs at import time; `load_settings()` builds a `Settings` from a
file and the environment, and raises `ConfigError` naming the key that is wrong.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from huying.durations import Duration, parse_duration
from huying.errors import validation_detail
from huying.workflow.definition import DEADLINE_KINDS

# Read when no file is named and it exists; otherwise Settings' own defaults apply.
# The urgency a request has unless it says otherwise; config.yaml's time_limits must define
# it. Every other urgency is whatever time_limits names.
DEFAULT_URGENCY = "normal"
DEFAULT_CONFIG = Path("config.yaml")
# The workflows shipped in the package: the default of `workflows.path`.
PACKAGED_WORKFLOWS = Path(__file__).resolve().parent / "data" / "workflows"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_duration(value: str) -> str:
    parse_duration(value)  # raises ValueError with the text
    return value


class DatabaseSettings(_Strict):
    url: str = "sqlite:///var/huying.db"
    pool_size: int = Field(default=10, ge=1, le=200)
    # Seconds to wait for a PostgreSQL connection: a server that does not answer at all
    # (a dropped route, not a refused connection) makes callers wait this long, then 503.
    connect_timeout: int = Field(default=5, ge=2, le=300)  # libpq treats 1 as 2
    # Seconds a call waits for a free pooled connection before it answers 503.
    pool_timeout: float = Field(default=5, gt=0, le=300)
    # Seconds one SQL statement may run (PostgreSQL statement_timeout; SQLite's busy wait).
    # Together with connect_timeout this bounds how long any call waits on the database.
    statement_timeout: float = Field(default=30, gt=0, le=3600)
    echo: bool = False


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # The address people reach Huying at (links in receipts and alerts); unset: the
    # host and port above.
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    # Largest request body in bytes (JSON and forms); past it 413, and nothing more is read.
    max_body: int = Field(default=1_048_576, ge=1024, le=1 << 30)


class WorkflowSettings(_Strict):
    # A folder of workflow files, relative to the config file's folder; unset: the workflows
    # shipped in the package.
    path: str | None = None
    default: str = "service_request"


class CalendarSettings(_Strict):
    timezone: str = "Asia/Shanghai"
    working_hours: tuple[str, ...] = ("09:00-12:00", "13:30-17:30")
    holidays: Literal["cn", "none"] = "cn"
    extra_holidays: tuple[date, ...] = ()
    extra_workdays: tuple[date, ...] = ()
    # From this day of the year (MM-DD) on, next year's official holidays are expected:
    # /healthz, the supervisor's board and `huying calendar check` flag it while unknown.
    warn_from: str = "11-01"

    @field_validator("warn_from")
    @classmethod
    def _warn_from(cls, value: str) -> str:
        try:
            date.fromisoformat(f"2000-{value}")  # a leap year: 02-29 is a day too
        except ValueError:
            raise ValueError(f"{value!r}: a day of the year as MM-DD, e.g. 11-01") from None
        return value

    @property
    def warn_from_day(self) -> tuple[int, int]:
        """`warn_from` as (month, day)."""
        month, _, day = self.warn_from.partition("-")
        return int(month), int(day)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from huying.calendar import BusinessCalendar

        BusinessCalendar.parse_working_hours(value)
        return value


# The limits of `OPTIONAL_KINDS` where an urgency names none.
DEFAULT_LIMITS = {"review": "2 working hours", "task": "3 working days"}


class TimeLimits(_Strict):
    dispatch: str | None = None
    sign: str | None = None
    reply: str | None = None
    feedback: str | None = None
    review: str | None = None  # a return under the dispatcher's review (退单审核)
    task: str | None = None  # a task's own limit (协办, 下派)

    _check = field_validator("dispatch", "sign", "reply", "feedback", "review", "task")(
        classmethod(lambda cls, v: v if v is None else _check_duration(v))
    )

    def get(self, kind: str) -> str | None:
        value: str | None = getattr(self, kind, None)
        return value


class NotifyDepartment(_Strict):
    """A rung's fixed recipients: the leaders of one department with one role (e.g. the
    督查室's), whoever leads the request."""

    department: str = Field(min_length=1, max_length=64)
    role: str = Field(min_length=1, max_length=64)


# A leader role looked up from the lead department up through its parents (or from the
# dispatch centre when the request has no lead department), or a fixed department's leaders.
NotifyEntry = str | NotifyDepartment


class Rung(_Strict):
    after: str
    level: int = Field(ge=1, le=9)
    notify: tuple[NotifyEntry, ...] = ()

    _check = field_validator("after")(classmethod(lambda cls, v: _check_duration(v)))

    @property
    def delay(self) -> Duration:
        return parse_duration(self.after)


class WorkflowRules(_Strict):
    return_escalate_after: int = Field(default=2, ge=0)
    reopen_limit: int = Field(default=1, ge=0)
    # 退单审核: a return waits for the dispatcher's decision (workflow v2); false: v1's
    # direct return to the dispatch queue, before signing only.
    returns_need_review: bool = True


def _positive_duration(value: str) -> str:
    d = parse_duration(value)
    if d.seconds <= 0 and d.days <= 0:
        raise ValueError(f"{value!r}: longer than zero, please")
    return value


DEFAULT_SUSPENSION_REASONS = {
    "awaiting_materials": "等待企业补充材料",
    "site_survey": "需现场勘查",
    "third_party": "等待第三方或上级意见",
    "other": "其他",
}


class SuspensionSettings(_Strict):
    """挂起: asked by the lead department with a reason code, decided by a supervisor or a
    dispatcher (unless `requires_approval` is false), ended by the worker when `length` has
    passed or earlier by the department."""

    reasons: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_SUSPENSION_REASONS))
    max_length: str = "10 working days"
    max_count: int = Field(default=2, ge=0, le=100)  # per request
    requires_approval: bool = True

    _check = field_validator("max_length")(classmethod(lambda cls, v: _positive_duration(v)))

    @field_validator("reasons")
    @classmethod
    def _reasons(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("at least one reason code, please")
        bad = [code for code in value if not code.isidentifier() or len(code) > 32]
        if bad:
            raise ValueError(f"reason codes are identifiers of at most 32 characters: {bad}")
        return value


class ExtensionSettings(_Strict):
    """延期: asked before the reply deadline falls due, at most `max_count` times and
    `max_length` in total per deadline."""

    max_length: str = "10 working days"
    max_count: int = Field(default=1, ge=0, le=100)

    _check = field_validator("max_length")(classmethod(lambda cls, v: _positive_duration(v)))


class AttachmentDirectory(_Strict):
    directory: str  # relative to the config file's folder


class AttachmentSettings(_Strict):
    """Uploaded files: at most `max_bytes` each (413 past it, read no further), at most
    `max_per_request` on one request, stored in the database or in a directory, by SHA-256."""

    max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, le=1 << 31)
    max_per_request: int = Field(default=50, ge=1, le=1000)
    storage: Literal["database"] | AttachmentDirectory = "database"
    unbound_hours: float = Field(default=24, gt=0, le=24 * 30)  # then an unbound one goes


class Open311Settings(_Strict):
    # false: reading services and requests needs an integration key (`api_key`), as
    # writing does, since requests name enterprises
    public_reads: bool = False
    jurisdiction_id: str | None = None


class WorkerSettings(_Strict):
    tick: str = "1 second"
    batch_size: int = Field(default=500, ge=1, le=10_000)

    _check = field_validator("tick")(classmethod(lambda cls, v: _check_duration(v)))


class WebhookSettings(_Strict):
    """Webhook delivery. A round claims `batch` due deliveries, POSTs them `concurrency` at a
    time, each with `timeout`, and records the outcomes. A claimed delivery stays taken for
    `lease`: the longest a round can take plus 30 s. A worker killed mid-round holds its
    deliveries (and the later events of their requests) that long before another sends them."""

    timeout: str = "10 seconds"
    batch: int = Field(default=100, ge=1, le=1000)
    concurrency: int = Field(default=8, ge=1, le=64)
    # Hosts (names or addresses) that webhook URLs may name although they are loopback,
    # link-local or unspecified; private ranges are always allowed.
    allow_hosts: tuple[str, ...] = ()
    # Messages a group robot (wecom, dingtalk, feishu) gets in a minute; past it, what is
    # due for that robot goes out folded into one digest (huying.alerts.delivery).
    robot_per_minute: int = Field(default=20, ge=2, le=600)
    # Private deployments' robot hosts (政务微信, 浙政钉 …), by format: e.g.
    # {wecom: [wx.gov.example.cn]}; the platforms' public hosts are always accepted.
    robot_hosts: dict[Literal["wecom", "dingtalk", "feishu"], tuple[str, ...]] = Field(
        default_factory=dict
    )

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        d = parse_duration(value)
        if d.kind != "calendar" or not 0 < d.seconds <= 300:
            raise ValueError(f"{value!r}: from 1 second to 5 minutes of clock time, please")
        return value

    @property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout).seconds

    @property
    def lease(self) -> timedelta:
        waves = -(-self.batch // self.concurrency)  # ceil
        return timedelta(seconds=waves * self.timeout_seconds + 30)


class AuthSettings(_Strict):
    session_hours: float = Field(default=12, gt=0, le=24 * 30)
    # Wrong passwords allowed per username and per address within `failure_window`; past
    # that, logins are refused with 429 and Retry-After until the window has moved on.
    max_failures: int = Field(default=5, ge=1, le=1000)
    failure_window: str = "15 minutes"

    @field_validator("failure_window")
    @classmethod
    def _window(cls, value: str) -> str:
        d = parse_duration(value)
        if d.kind != "calendar" or d.seconds <= 0:
            raise ValueError(f"{value!r}: a positive clock-time duration, please")
        return value


class MetricsSettings(_Strict):
    # false: GET /metrics needs a key or session of role admin or monitor
    public: bool = False


class DirectorySettings(_Strict):
    # What a grid code must look like (a regular expression matched in full); the default is
    # Beijing's 15 digits: district 6 + street 3 + community 3 + cell 3.
    grid_code_pattern: str = r"\d{15}"

    @field_validator("grid_code_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        import re

        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value


class LoggingSettings(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    json_: bool = Field(default=False, alias="json", description="one JSON object per log line")
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Settings(_Strict):
    database: DatabaseSettings = DatabaseSettings()
    server: ServerSettings = ServerSettings()
    workflows: WorkflowSettings = WorkflowSettings()
    calendar: CalendarSettings = CalendarSettings()
    time_limits: dict[str, TimeLimits] = Field(
        default_factory=lambda: {
            DEFAULT_URGENCY: TimeLimits(
                dispatch="2 working hours",
                sign="1 working day",
                reply="5 working days",
                feedback="3 working days",
            ),
            "urgent": TimeLimits(
                dispatch="30 minutes", sign="1 hour", reply="24 hours", feedback="1 working day"
            ),
        }
    )
    warning_at: float = Field(default=0.75, gt=0, lt=1)
    escalation: tuple[Rung, ...] = (
        Rung(after="0 seconds", level=1, notify=("department_head",)),
        Rung(after="1 working day", level=2, notify=("street_leadership",)),
        Rung(after="3 working days", level=3, notify=("district_supervision",)),
    )
    # The department whose leaders a rung's role entries name when the request has no lead
    # department (the dispatch deadline, the return limit): the command or dispatch centre.
    dispatch_center: str | None = None
    workflow_rules: WorkflowRules = WorkflowRules()
    suspension: SuspensionSettings = SuspensionSettings()
    extension: ExtensionSettings = ExtensionSettings()
    attachments: AttachmentSettings = AttachmentSettings()
    open311: Open311Settings = Open311Settings()
    worker: WorkerSettings = WorkerSettings()
    webhooks: WebhookSettings = WebhookSettings()
    auth: AuthSettings = AuthSettings()
    metrics: MetricsSettings = MetricsSettings()
    directory: DirectorySettings = DirectorySettings()
    logging: LoggingSettings = LoggingSettings()
    # Folder the config file lives in (the working directory when there is none); relative
    # paths are resolved against it.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @field_validator("time_limits")
    @classmethod
    def _limits(cls, value: dict[str, TimeLimits]) -> dict[str, TimeLimits]:
        if DEFAULT_URGENCY not in value:
            raise ValueError(f"an entry for urgency {DEFAULT_URGENCY!r} is required")
        for urgency, limits in value.items():
            missing = [k for k in DEADLINE_KINDS if limits.get(k) is None]
            if missing:
                raise ValueError(f"urgency {urgency!r} lacks {', '.join(missing)}")
        return value

    @field_validator("escalation")
    @classmethod
    def _ladder(cls, value: tuple[Rung, ...]) -> tuple[Rung, ...]:
        levels = [r.level for r in value]
        if levels != list(range(1, len(value) + 1)):
            raise ValueError(
                f"the rungs are levels 1 to {len(value)} in order (got {levels}): "
                "a request's level is the highest rung it reached"
            )
        return value

    @property
    def ladder_top(self) -> int:
        """The highest escalation level: the ladder's last rung (0 without a ladder)."""
        return len(self.escalation)

    def rung(self, level: int) -> Rung | None:
        """The rung of `level` (1 to ladder_top), or None."""
        return self.escalation[level - 1] if 1 <= level <= len(self.escalation) else None

    @property
    def urgencies(self) -> list[str]:
        return list(self.time_limits)

    @property
    def database_url(self) -> str:
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and url != "sqlite:///:memory:":
            path = Path(url[len(prefix) :])
            if not path.is_absolute():
                path = self.base_dir / path
            return prefix + str(path)
        return url

    @property
    def public_url(self) -> str:
        """Where people reach Huying: `server.public_url`, else http://host:port."""
        return (self.server.public_url or f"http://{self.server.host}:{self.server.port}").rstrip(
            "/"
        )

    @property
    def attachments_dir(self) -> Path | None:
        """The folder of `attachments.storage: {directory: …}`; None for the database."""
        storage = self.attachments.storage
        if isinstance(storage, AttachmentDirectory):
            path = Path(storage.directory)
            return path if path.is_absolute() else self.base_dir / path
        return None

    @property
    def workflows_dir(self) -> Path:
        if self.workflows.path is None:
            return PACKAGED_WORKFLOWS
        path = Path(self.workflows.path)
        return path if path.is_absolute() else self.base_dir / path

    def limit_for(
        self, urgency: str, kind: str, override: dict[str, str] | None = None
    ) -> Duration:
        """The time limit of one deadline kind: the category's override, else the urgency default."""
        text = (
            (override or {}).get(kind)
            or self.time_limits.get(urgency, self.time_limits[DEFAULT_URGENCY]).get(kind)
            or DEFAULT_LIMITS.get(kind)
        )
        if text is None:  # guarded by the validator; kept for the type checker
            raise ConfigError(f"time_limits.{urgency}.{kind}: missing")
        return parse_duration(text)


def _format_errors(exc: ValidationError) -> str:
    return validation_detail(exc.errors(), whole="(top level)")


def settings_from_mapping(data: dict[str, Any], *, base_dir: Path | None = None) -> Settings:
    """Settings from parsed YAML; relative paths resolve against `base_dir`, by default the
    working directory."""
    try:
        settings = Settings.model_validate({**data, "base_dir": base_dir or Path.cwd()})
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc)) from None
    return settings


def load_settings(
    path: str | os.PathLike[str] | None = None, *, environ: dict[str, str] | None = None
) -> Settings:
    """Read the config file named by `path`, else $HUYING_CONFIG, else ./config.yaml of the
    working directory when it exists; with none of these, Settings' own defaults apply and
    relative paths (the SQLite file var/huying.db) resolve against the working directory."""
    env = os.environ if environ is None else environ
    named = path or env.get("HUYING_CONFIG")
    chosen = Path(named) if named else DEFAULT_CONFIG
    try:
        raw = yaml.safe_load(chosen.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        if named:
            raise ConfigError(f"config file {chosen} does not exist") from None
        raw = {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {chosen} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {chosen}: the top level must be a mapping")
    if url := env.get("HUYING_DATABASE_URL"):
        raw = {**raw, "database": {**(raw.get("database") or {}), "url": url}}
    return settings_from_mapping(raw, base_dir=chosen.resolve().parent)
