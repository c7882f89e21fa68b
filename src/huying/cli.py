"""The `huying` command line."""

from __future__ import annotations

import argparse
import contextlib
import errno
import getpass
import logging
import os
import socket
import sys
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from huying.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from huying.calendar import BusinessCalendar

log = logging.getLogger("huying")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None))


def _runtime(args: argparse.Namespace, *, migrate: bool = True):  # type: ignore[no-untyped-def]
    from huying import migrate as migrations
    from huying.runtime import build_runtime

    rt = build_runtime(_settings(args))
    from huying import logs

    logs.configure(rt.settings.logging)
    if migrate:
        migrations.upgrade(rt.db, calendar=rt.calendar)
    return rt


def cmd_migrate(args: argparse.Namespace) -> int:
    rt = _runtime(args)
    print(f"database at head: {rt.db.url.render_as_string(hide_password=True)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from huying.app import create_app

    workers = args.workers
    if workers < 1:
        print("huying: --workers: at least 1", file=sys.stderr)
        return 2
    from huying import migrate, serving

    rt = _runtime(args, migrate=False)
    if workers > 1 and rt.db.dialect.name == "sqlite":
        rt.close()
        print(f"huying: {serving.SQLITE_ONE_WRITER}", file=sys.stderr)
        return 2
    migrate.upgrade(rt.db, calendar=rt.calendar)  # once, before any server process starts
    host = args.host or rt.settings.server.host
    port = args.port or rt.settings.server.port
    # Bound before anything starts: uvicorn binds only after the app's startup, which starts
    # the worker, so a port already taken would leave a worker's heartbeat behind.
    try:
        sock = _bind(host, port)
    except OSError as exc:
        rt.close()
        print(f"huying: cannot serve on {host}:{port}: {_bind_problem(exc, port)}", file=sys.stderr)
        return 1
    print(
        f"Huying is serving on http://{host}:{port}/  (API docs: http://{host}:{port}/docs)"
        + (f" with {workers} server processes" if workers > 1 else ""),
        flush=True,
    )
    if workers > 1:
        return serving.serve_processes(rt, sock, workers=workers, run_worker=not args.no_worker)
    app = serving.ServedBy(create_app(rt, run_worker=not args.no_worker))
    config = uvicorn.Config(
        app, host=host, port=port, log_level="info", access_log=False, log_config=None
    )
    server = uvicorn.Server(config)
    # On Ctrl-C uvicorn stops cleanly, then raises the interrupt again: done, not a crash.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    return 0 if server.started else 1


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound as uvicorn binds it (SO_REUSEADDR, IPv6 for an address
    with a colon)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _bind_problem(exc: OSError, port: int) -> str:
    other = port + 1 if port < 65535 else 8000
    choose = (
        f"choose another port: huying serve --port {other} (./dev run --port {other}), "
        "or server.port in the config file"
    )
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} is already in use (another Huying, or another program); {choose}"
    if exc.errno == errno.EACCES:
        return f"permission denied (ports below 1024 need privileges); {choose}"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "this machine has no such address; choose another with --host or server.host"
    return f"{exc.strerror or exc}; {choose}"


def cmd_worker(args: argparse.Namespace) -> int:
    from huying.worker import run_forever

    rt = _runtime(args)
    run_forever(rt)
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from huying.directory.loader import LoadError, load_file

    rt = _runtime(args)
    status = 0
    for name in args.files:
        try:
            with rt.transaction() as s:
                loaded = load_file(
                    session=s,
                    path=Path(name),
                    urgencies=rt.settings.urgencies,
                    now=rt.now(),
                    grid_code_pattern=rt.settings.directory.grid_code_pattern,
                )
        except LoadError as exc:
            print(f"{exc.path}: nothing loaded; {len(exc.problems)} problem(s):", file=sys.stderr)
            for p in exc.problems:
                print(f"  {p}", file=sys.stderr)
            status = 1
            continue
        print(f"{name}: {loaded.summary()}")
    return status


def cmd_directory_check(args: argparse.Namespace) -> int:
    """Every (department, level) whose rung of the escalation ladder alerts nobody, and each
    department the config names that the directory lacks: exit 1 if any, so that a
    deployment script stops on a ladder that would escalate to no one."""
    from huying.directory import service as directory
    from huying.health import describe_gap

    rt = _runtime(args)
    try:
        with rt.transaction() as s:
            gaps = directory.escalation_gaps(session=s, settings=rt.settings)
            stored = directory.stored_codes(session=s)["departments"]
    finally:
        rt.close()
    problems = _unknown_departments(rt.settings, stored)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    for gap in gaps:
        print(describe_gap(gap, dispatch_center=rt.settings.dispatch_center))
    if gaps or problems:
        return 1
    print("every rung of the escalation ladder names someone")
    return 0


def _unknown_departments(settings: Settings, stored: set[str]) -> list[str]:
    """The departments `dispatch_center` and the rungs' {department, role} entries name
    that are not in the directory: such an entry alerts nobody even where another entry of
    its rung hides the gap."""
    from huying.settings import NotifyDepartment

    if not stored:
        return ["the directory has no departments: load them with `huying load FILE`"]
    found = []
    center = settings.dispatch_center
    if center is not None and center not in stored:
        found.append(
            f"dispatch_center {center} is no department of the directory (requests with no "
            "lead department escalate to its leaders)"
        )
    for rung in settings.escalation:
        for entry in rung.notify:
            if isinstance(entry, NotifyDepartment) and entry.department not in stored:
                found.append(
                    f"escalation level {rung.level} names department {entry.department}, "
                    "which is not in the directory"
                )
    return found


# `keys create` and `users create`: who is bound to a department (huying.auth.service).
_DEPARTMENT_HELP = (
    "a department code: required for the department role; for a dispatcher or supervisor, "
    "binds them to that department and those below it (a street's own command centre)"
)


# Who the audit log names for the command line's writes.
CLI_ACTOR = "cli"


def cmd_keys_create(args: argparse.Namespace) -> int:
    from huying.auth.service import create_key

    rt = _runtime(args)
    with rt.transaction() as s:
        _, token = create_key(
            session=s,
            role=args.role,
            department=args.department,
            name=args.name,
            now=rt.now(),
            actor=CLI_ACTOR,
        )
    print(token)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    """Every key, revoked ones too: its id (for `keys revoke`), prefix, role, name."""
    from huying.auth import service

    rt = _runtime(args)
    with rt.transaction() as s:
        rows = [service.key_out(k) for k in service.keys(session=s)]
    for k in rows:
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}Z" if k.revoked_at else "active"
        role = k.role + (f" ({k.department})" if k.department else "")
        print(f"{k.id:>5}  {k.prefix:<12} {role:<24} {state:<24} {k.name}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from huying.auth import service

    rt = _runtime(args)
    with rt.transaction() as s:
        key = service.revoke_key(session=s, key_id=args.id, actor=CLI_ACTOR, now=rt.now())
        name = key.name
    print(f"key {args.id} ({name}) revoked: refused from its next call")
    return 0


def _new_password() -> str:
    """A password from the terminal's prompt (not echoed), else the first line of standard
    input; never from the command line, where `ps` and the shell's history would show it."""
    if sys.stdin.isatty():
        return getpass.getpass("password: ")
    return sys.stdin.readline().rstrip("\r\n")


def cmd_users_create(args: argparse.Namespace) -> int:
    from huying.auth.service import create_user

    password = _new_password()
    rt = _runtime(args)
    with rt.transaction() as s:
        create_user(
            session=s,
            username=args.username,
            password=password,
            role=args.role,
            department=args.department,
            now=rt.now(),
            display_name=args.display_name or "",
            actor=CLI_ACTOR,
        )
    print(
        f"user {args.username} created ({args.role}{', ' + args.department if args.department else ''})"
    )
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    from huying.auth import service

    rt = _runtime(args)
    with rt.transaction() as s:
        rows = [service.user_out(u) for u in service.users(session=s)]
    for u in rows:
        role = u.role + (f" ({u.department})" if u.department else "")
        state = "active" if u.active else "disabled"
        print(f"{u.username:<20} {role:<24} {state:<9} {u.display_name}")
    return 0


def _update_user(args: argparse.Namespace, done: str, **changes: object) -> int:
    """One change to a user, through the service the API and the console call: the same
    rules (not the last admin, a department where the role needs one), audited as "cli"."""
    from huying.auth import service
    from huying.auth.schemas import UserPatch

    patch = UserPatch.model_validate(changes)
    rt = _runtime(args)
    with rt.transaction() as s:
        service.update_user(
            session=s, username=args.username, changes=patch, actor=CLI_ACTOR, now=rt.now()
        )
    print(f"user {args.username} {done}")
    return 0


def cmd_users_disable(args: argparse.Namespace) -> int:
    return _update_user(args, "disabled: refused from now on, sessions ended", active=False)


def cmd_users_enable(args: argparse.Namespace) -> int:
    return _update_user(args, "enabled", active=True)


def cmd_users_passwd(args: argparse.Namespace) -> int:
    return _update_user(args, "has a new password; their sessions ended", password=_new_password())


def cmd_users_set_role(args: argparse.Namespace) -> int:
    role = args.role + (f", {args.department}" if args.department else "")
    return _update_user(args, f"is now {role}", role=args.role, department=args.department)


def cmd_workflows_check(args: argparse.Namespace) -> int:
    from huying.runtime import load_workflows
    from huying.settings import settings_from_mapping

    settings = _settings(args)
    if args.path:
        data = settings.model_dump(exclude={"base_dir"}, by_alias=True)
        data["workflows"] = {**data["workflows"], "path": str(Path(args.path).resolve())}
        settings = settings_from_mapping(data, base_dir=settings.base_dir)
    specs, errors = load_workflows(settings)
    for name, version in sorted(specs):
        spec = specs[(name, version)]
        print(
            f"ok: {name} v{version} ({len(spec.states)} states, {len(spec.transitions)} transitions) — {spec.source}"
        )
    for err in errors:
        print(f"invalid: {err.source}", file=sys.stderr)
        for p in err.problems:
            print(f"  - {p}", file=sys.stderr)
    return 1 if errors else 0


def cmd_workflows_draw(args: argparse.Namespace) -> int:
    from huying.runtime import load_workflows
    from huying.workflow.draw import mermaid

    specs, errors = load_workflows(_settings(args))
    if errors:
        print("invalid workflows; run `huying workflows check`", file=sys.stderr)
        return 1
    chosen = [
        s for (n, v), s in sorted(specs.items()) if n == args.name and (args.version in (None, v))
    ]
    if not chosen:
        print(
            f"no workflow {args.name}" + (f" version {args.version}" if args.version else ""),
            file=sys.stderr,
        )
        return 1
    text = mermaid(chosen[-1])
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_calendar_due(args: argparse.Namespace) -> int:
    from huying.durations import parse_duration
    from huying.runtime import build_calendar

    settings = _settings(args)
    cal = build_calendar(settings)
    start = datetime.fromisoformat(args.start)
    if start.tzinfo is None:
        start = start.replace(tzinfo=cal.tz)
    due = cal.add(start, parse_duration(args.duration))
    print(due.astimezone(cal.tz).isoformat())
    first, last = start.astimezone(cal.tz).year, due.astimezone(cal.tz).year
    for year in range(first, last + 1):
        if not cal.knows_year(year):
            print(
                f"warning: {year}'s official holidays are unknown; 元旦 etc. were counted as "
                f"working days (see `huying calendar check {year}`)",
                file=sys.stderr,
            )
    return 0


def cmd_calendar_check(args: argparse.Namespace) -> int:
    """Whether a year's official holidays are known, before a deadline reaches it: exit 1
    with what to do when neither the holiday package nor the config knows them."""
    from huying.runtime import build_calendar

    settings = _settings(args)
    cal = build_calendar(settings)
    year = args.year
    if cal.knows_year(year):
        print(f"{year}: official holidays known ({_holiday_source(cal, settings, year)})")
        return 0
    known = sorted(cal.official_years)
    package = (
        f"chinese-calendar {_package_version()} knows {known[0]}–{known[-1]}"
        if known
        else "the holiday source knows no year"
    )
    print(
        f"{year}: official holidays unknown: {package}, and calendar.extra_holidays/"
        f"extra_workdays name no day of {year}. Deadlines that reach {year} count its "
        "holidays (元旦, 春节 …) as working days and its weekend make-up working days (调休) "
        "as days off.\n"
        "To fix: upgrade chinese-calendar once a release knows the year "
        "(pip install --upgrade chinesecalendar), or list the year's holidays in "
        "calendar.extra_holidays and its make-up working days in calendar.extra_workdays "
        "of the config file.",
        file=sys.stderr,
    )
    return 1


def _holiday_source(cal: BusinessCalendar, settings: Settings, year: int) -> str:
    """Where a known year's holidays come from, for `huying calendar check`."""
    if settings.calendar.holidays == "none":
        return "calendar.holidays: none: Monday to Friday plus the configured dates"
    if year in cal.official_years:
        return f"chinese-calendar {_package_version()}"
    return "calendar.extra_holidays/extra_workdays in the config"


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chinesecalendar")
    except PackageNotFoundError:
        return "(version unknown)"


def cmd_calendar_days(args: argparse.Namespace) -> int:
    from huying.runtime import build_calendar

    cal = build_calendar(_settings(args))
    for day in cal.workdays(date.fromisoformat(args.start), date.fromisoformat(args.end)):
        print(f"{day.isoformat()} {day.strftime('%a')}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Migrate, load the demo directory and create the demo accounts (idempotent)."""
    from huying.demo import DEMO_DIR, set_up_demo

    rt = _runtime(args)
    # The credentials file (and var/, if this makes it) readable by the owner only.
    umask = os.umask(0o077)
    try:
        set_up_demo(rt, DEMO_DIR, out=sys.stdout)
    finally:
        os.umask(umask)
    return 0


def cmd_reports_facts(args: argparse.Namespace) -> int:
    """Derive every request's report facts again from its deadlines (safe to repeat)."""
    from huying.db import unbounded
    from huying.reports import facts

    rt = _runtime(args)
    with rt.db.begin() as conn:
        unbounded(conn)  # one pass over every request: minutes on a large database
        count = facts.backfill(conn, rt.calendar)
    print(f"report facts derived from the deadlines: {count} (signings and first replies)")
    return 0


def cmd_reports_fold(args: argparse.Namespace) -> int:
    """Fold the months that have ended and are dirty or not yet folded, as the worker does
    every hour."""
    from huying.reports import rollups

    rt = _runtime(args)
    with rt.db.connect() as conn:
        due = rollups.months_to_fold(conn, now=rt.now(), tz=rt.calendar.tz)
    folded = rollups.fold_due(rt, due)
    print(f"report months folded: {folded} of {len(due)}")
    return 0 if folded == len(due) else 1


def build_parser() -> argparse.ArgumentParser:
    from huying.roles import ROLES, STAFF_ROLES

    p = argparse.ArgumentParser(
        prog="huying", description="Huying (呼应): service requests, answered in time."
    )
    p.add_argument(
        "--config",
        help="config file (default: $HUYING_CONFIG, else ./config.yaml if there is one, "
        "else the built-in defaults)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, fn, help_: str) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("--config", help=argparse.SUPPRESS, default=argparse.SUPPRESS)
        sp.set_defaults(func=fn)
        return sp

    serve = add("serve", cmd_serve, "migrate, then serve the API and the console")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--no-worker", action="store_true", help="do not run deadlines and alerts in this process"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="N server processes on the one port (PostgreSQL only when N > 1); "
        "the deadlines and alerts still run once, in the supervising process",
    )
    add("worker", cmd_worker, "run deadlines and alert delivery only")
    add("migrate", cmd_migrate, "upgrade the database schema to the latest version")
    add("demo", cmd_demo, "load the demo directory and demo accounts")
    load = add("load", cmd_load, "load departments, chains, categories, routing rules, enterprises")
    load.add_argument(
        "files", nargs="+", metavar="FILE", help="YAML (any section) or CSV (enterprises)"
    )

    dirs = add("directory", lambda a: 2, "check the loaded directory")
    dsub = dirs.add_subparsers(dest="directory_command", required=True)
    dc = dsub.add_parser(
        "check",
        help="list each (department, level) whose escalation rung alerts nobody; exit 1 if any",
    )
    dc.set_defaults(func=cmd_directory_check)

    keys = add("keys", lambda a: 2, "API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    kc = ksub.add_parser("create", help="create a key; prints the token alone")
    kc.set_defaults(func=cmd_keys_create)
    kc.add_argument(
        "--role",
        required=True,
        choices=ROLES,
    )
    kc.add_argument("--department", help=_DEPARTMENT_HELP)
    kc.add_argument("--name")
    kl = ksub.add_parser("list", help="every key (revoked ones too): id, prefix, role, name")
    kl.set_defaults(func=cmd_keys_list)
    kr = ksub.add_parser("revoke", help="revoke a key: refused from its next call")
    kr.set_defaults(func=cmd_keys_revoke)
    kr.add_argument("id", metavar="ID", type=int, help="the key's id, as `keys list` shows")

    users = add("users", lambda a: 2, "staff users")
    usub = users.add_subparsers(dest="users_command", required=True)
    uc = usub.add_parser(
        "create", help="create a staff user; the password is read from standard input"
    )
    uc.set_defaults(func=cmd_users_create)
    uc.add_argument("--username", required=True)
    uc.add_argument("--role", required=True, choices=STAFF_ROLES)
    uc.add_argument("--department", help=_DEPARTMENT_HELP)
    uc.add_argument("--display-name")
    ul = usub.add_parser("list", help="every staff user: role, department, active or not")
    ul.set_defaults(func=cmd_users_list)
    user_commands = [
        ("disable", cmd_users_disable, "disable a user: refused at once, sessions ended"),
        ("enable", cmd_users_enable, "enable a disabled user again"),
        (
            "passwd",
            cmd_users_passwd,
            "reset a user's password, read from a prompt or standard input (never an "
            "argument); their sessions end",
        ),
        ("set-role", cmd_users_set_role, "change a user's role (and department)"),
    ]
    for name, fn, help_ in user_commands:
        up = usub.add_parser(name, help=help_)
        up.set_defaults(func=fn)
        up.add_argument("username", metavar="USERNAME")
        up.add_argument("--config", help=argparse.SUPPRESS, default=argparse.SUPPRESS)
        if name == "set-role":
            up.add_argument("--role", required=True, choices=STAFF_ROLES)
            up.add_argument("--department", help=_DEPARTMENT_HELP + "; left out: bound to none")
    for nested_keys in (kl, kr, ul):
        nested_keys.add_argument("--config", help=argparse.SUPPRESS, default=argparse.SUPPRESS)

    wf = add("workflows", lambda a: 2, "workflow definitions")
    wsub = wf.add_subparsers(dest="workflows_command", required=True)
    wc = wsub.add_parser("check", help="validate every workflow file; exit 1 naming each problem")
    wc.set_defaults(func=cmd_workflows_check)
    wc.add_argument("--path", help="a folder of workflow files (default: the configured one)")
    wd = wsub.add_parser("draw", help="the diagram of a workflow, as Mermaid")
    wd.set_defaults(func=cmd_workflows_draw)
    wd.add_argument("--name", default="service_request")
    wd.add_argument("--version", type=int)
    wd.add_argument("--output", "-o")

    cal = add("calendar", lambda a: 2, "check the business calendar")
    csub = cal.add_subparsers(dest="calendar_command", required=True)
    cd = csub.add_parser("due", help="the due instant of a duration from a start")
    cd.set_defaults(func=cmd_calendar_due)
    cd.add_argument("start", help="ISO 8601, e.g. 2026-09-30T16:00+08:00")
    cd.add_argument("duration", help='e.g. "3 working days"')
    cc = csub.add_parser(
        "check", help="whether a year's official holidays are known; exit 1 if not"
    )
    cc.set_defaults(func=cmd_calendar_check)
    cc.add_argument("year", metavar="YEAR", type=int)
    cdays = csub.add_parser("days", help="the working days from FROM to TO (inclusive)")
    cdays.set_defaults(func=cmd_calendar_days)
    cdays.add_argument("start", metavar="FROM")
    cdays.add_argument("end", metavar="TO")
    rep = add("reports", lambda a: 2, "the rates report's data")
    rsub = rep.add_subparsers(dest="reports_command", required=True)
    rf = rsub.add_parser(
        "facts",
        help="derive each request's signing and first reply facts again from its deadlines, "
        "e.g. after old servers ran beside a migrated database",
    )
    rf.set_defaults(func=cmd_reports_facts)
    rfold = rsub.add_parser(
        "fold",
        help="fold each month that has ended and changed since (or was never folded) into "
        "the rates' monthly rows now, as the worker does every hour",
    )
    rfold.set_defaults(func=cmd_reports_fold)
    # `--config` may also follow the nested commands (huying keys create --config …)
    for nested in (dc, kc, uc, wc, wd, cd, cc, cdays, rf, rfold):
        nested.add_argument("--config", help=argparse.SUPPRESS, default=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from huying import logs
    from huying.settings import LoggingSettings

    logs.configure(LoggingSettings())  # until the config file is read
    for noisy in ("apscheduler", "transitions", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    from huying.errors import HuyingError
    from huying.workflow.definition import WorkflowInvalid

    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"huying: configuration error: {exc}", file=sys.stderr)
    except WorkflowInvalid as exc:
        print(f"huying: invalid workflow {exc.source}:", file=sys.stderr)
        for p in exc.problems:
            print(f"  - {p}", file=sys.stderr)
    except HuyingError as exc:
        print(f"huying: {exc.detail}", file=sys.stderr)
    except ValueError as exc:
        print(f"huying: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
