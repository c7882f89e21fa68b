"""The command line against a real database file."""

from __future__ import annotations

import io
import socket
import stat
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, inspect, select

from huying.cli import main
from huying.deadlines.models import WorkerHeartbeat
from huying.runtime import Runtime, build_runtime
from huying.settings import load_settings
from tests.conftest import ROOT


@pytest.fixture
def config(tmp_path: Path) -> str:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    cfg["database"]["url"] = f"sqlite:///{tmp_path / 'cli.db'}"
    cfg["workflows"]["path"] = str(ROOT / "src/huying/data/workflows")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return str(path)


def test_keys_create_prints_the_token_alone(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["--config", config, "load", str(ROOT / "src/huying/data/demo" / "directory.yaml")])
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            ["--config", config, "keys", "create", "--role", "department", "--department", "HP-GXJ"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("hyk_") and len(out.strip()) > 40
    assert (
        main(["--config", config, "keys", "create", "--role", "department", "--department", "NOPE"])
        == 1
    )
    assert "unknown department" in capsys.readouterr().err


def test_users_create_reads_the_password_from_stdin(
    config: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-pass\n"))
    assert (
        main(["--config", config, "users", "create", "--username", "zhang", "--role", "supervisor"])
        == 0
    )
    assert "s3cret-pass" not in capsys.readouterr().out


def test_load_reports_bad_rows_and_exits_non_zero(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("uscc,name\n91110000600037341M,坏公司\n", encoding="utf-8")
    assert main(["--config", config, "load", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "nothing loaded" in err and "line 2" in err


def test_bad_config_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("warning_at: 3\ncalendar: {timezone: Mars/Olympus}\n", encoding="utf-8")
    assert main(["--config", str(path), "migrate"]) == 1
    err = capsys.readouterr().err
    assert "warning_at" in err and "calendar.timezone" in err


def test_calendar_due_prints_the_design_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calendar", "due", "2026-09-30T16:00+08:00", "3 working days"]) == 0
    assert capsys.readouterr().out.strip() == "2026-10-10T17:30:00+08:00"
    assert main(["calendar", "due", "2026-10-09T17:00+08:00", "2 working hours"]) == 0
    assert capsys.readouterr().out.strip() == "2026-10-10T10:30:00+08:00"


def test_demo_sets_up_accounts_once(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config, "demo"]) == 0
    first = capsys.readouterr().out
    assert "integration API key" in first and "hyk_" in first
    assert main(["--config", config, "demo"]) == 0
    assert first.split("Demo accounts")[1] == capsys.readouterr().out.split("Demo accounts")[1]


def test_reports_fold_folds_the_months_due_once(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo's requests were received over the months before this one; a second run finds
    every month folded and clean."""
    assert main(["--config", config, "demo"]) == 0
    assert main(["--config", config, "reports", "fold"]) == 0
    first = capsys.readouterr().out.splitlines()[-1]
    assert first.startswith("report months folded: ")
    assert main(["--config", config, "reports", "fold"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "report months folded: 0 of 0"


def test_serve_refuses_to_start_on_an_invalid_workflow(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "wf"
    folder.mkdir()
    text = (ROOT / "src/huying/data/workflows" / "service_request.yaml").read_text(encoding="utf-8")
    (folder / "broken.yaml").write_text(
        text.replace("guards: [has_lead_department]", "guards: [os.system]", 1), encoding="utf-8"
    )
    cfg = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
    cfg["workflows"]["path"] = str(folder)
    Path(config).write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    assert main(["--config", config, "serve", "--port", "1"]) == 1
    err = capsys.readouterr().err
    assert "guard 'os.system' is not registered" in err


def test_serve_on_a_taken_port_says_so_and_starts_nothing(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before anything starts: no worker ticks, so no heartbeat is left in /healthz."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--config", config, "serve", "--host", "127.0.0.1", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"port {port} is already in use" in err
    assert "huying serve --port" in err and "./dev run --port" in err
    rt = build_runtime(load_settings(config, environ={}))
    try:
        with rt.transaction() as s:
            assert s.scalar(select(func.count()).select_from(WorkerHeartbeat)) == 0
    finally:
        rt.close()


def test_the_demo_files_are_readable_by_their_owner_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The SQLite file (password hashes, webhook secrets) and the demo credentials, in a
    var/ folder that Huying creates: as `./dev run` does on a fresh checkout."""
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    cfg["database"]["url"] = "sqlite:///var/huying.db"  # beside the config file
    cfg["workflows"]["path"] = str(ROOT / "src/huying/data/workflows")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    assert main(["--config", str(config), "demo"]) == 0
    var = tmp_path / "var"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [var, *var.iterdir()]}
    assert modes.keys() >= {"var", "huying.db", "demo-credentials.txt"}, modes
    assert modes == {name: 0o700 if name == "var" else 0o600 for name in modes}, modes


def test_a_staff_user_cannot_have_the_integration_role(rt: Runtime) -> None:
    from huying.auth.service import create_user
    from huying.errors import InvalidInput

    with pytest.raises(InvalidInput, match="API key"), rt.transaction() as s:
        create_user(
            session=s,
            username="grid",
            password="long-enough",
            role="integration",
            department=None,
            now=rt.now(),
        )


def test_keys_create_makes_a_monitor_key(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config, "keys", "create", "--role", "monitor", "--name", "prom"]) == 0
    assert capsys.readouterr().out.startswith("hyk_")
    with pytest.raises(SystemExit):  # a monitor is a system, never a staff user
        main(["--config", config, "users", "create", "--username", "m", "--role", "monitor"])


def test_load_keeps_what_a_missing_column_does_not_name_and_counts_each_outcome(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["--config", config, "load", str(ROOT / "src/huying/data/demo" / "directory.yaml")])
        == 0
    )
    first = tmp_path / "first.csv"
    first.write_text("uscc,name,grid_code\n91110000600037341L,甲公司,440112012001001\n", "utf-8")
    second = tmp_path / "second.csv"
    second.write_text("uscc,name\n91110000600037341L,甲公司\n91440101711615159C,乙公司\n", "utf-8")
    capsys.readouterr()
    assert main(["--config", config, "load", str(first)]) == 0
    assert "enterprises: 1 created, 0 updated, 0 unchanged" in capsys.readouterr().out
    assert main(["--config", config, "load", str(second)]) == 0
    assert "enterprises: 1 created, 0 updated, 1 unchanged" in capsys.readouterr().out
    rt = build_runtime(load_settings(config))
    try:
        with rt.transaction() as s:
            from huying.directory.models import Enterprise

            kept = s.scalar(select(Enterprise).where(Enterprise.uscc == "91110000600037341L"))
            assert kept is not None and kept.grid_code == "440112012001001"
    finally:
        rt.close()


def test_load_checks_grid_codes_against_the_configured_pattern(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    cfg["database"]["url"] = f"sqlite:///{tmp_path / 'cli.db'}"
    cfg["workflows"]["path"] = str(ROOT / "src/huying/data/workflows")
    cfg["directory"] = {"grid_code_pattern": r"GZ\d{4}"}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    good = tmp_path / "good.csv"
    good.write_text("uscc,name,grid_code\n91110000600037341L,甲公司,GZ0001\n", "utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("uscc,name,grid_code\n91440101711615159C,乙公司,440112012001001\n", "utf-8")
    assert main(["--config", str(config), "load", str(good)]) == 0
    assert main(["--config", str(config), "load", str(bad)]) == 1
    assert "line 2: grid_code" in capsys.readouterr().err


# --- users and keys: the same service as the API, audited as "cli" ---------------------


def _cli_entries(config: str) -> list[tuple[str, str, str]]:
    from huying.audit.models import AuditEntry

    rt = build_runtime(load_settings(config))
    try:
        with rt.transaction() as s:
            rows = s.execute(
                select(AuditEntry.actor, AuditEntry.action, AuditEntry.target_id)
                .where(AuditEntry.target_type.in_(("user", "key")))
                .order_by(AuditEntry.id)
            ).all()
    finally:
        rt.close()
    return [(a, b, c) for a, b, c in rows]


def test_users_list_disable_enable_passwd_and_set_role(
    config: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, role in (("boss", "admin"), ("zhang", "dispatcher")):
        monkeypatch.setattr("sys.stdin", io.StringIO("first-pass-1\n"))
        assert (
            main(["--config", config, "users", "create", "--username", name, "--role", role]) == 0
        )
    capsys.readouterr()
    assert main(["--config", config, "users", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in listed] == [
        ["boss", "admin", "active"],
        ["zhang", "dispatcher", "active"],
    ]
    assert main(["--config", config, "users", "disable", "zhang"]) == 0
    assert main(["--config", config, "users", "list"]) == 0
    assert "zhang                dispatcher               disabled" in capsys.readouterr().out
    assert main(["--config", config, "users", "enable", "zhang"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("second-pass-2\n"))
    assert main(["--config", config, "users", "passwd", "zhang"]) == 0
    assert "second-pass-2" not in capsys.readouterr().out
    assert main(["--config", config, "users", "set-role", "zhang", "--role", "supervisor"]) == 0
    # the service's rules, said as its errors
    assert main(["--config", config, "users", "disable", "boss"]) == 1
    assert "last active admin" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["--config", config, "users", "passwd", "zhang"]) == 1
    assert "at least 8" in capsys.readouterr().err
    assert main(["--config", config, "users", "enable", "nobody"]) == 1
    assert "no user 'nobody'" in capsys.readouterr().err
    assert _cli_entries(config) == [
        ("cli", "user.create", "boss"),
        ("cli", "user.create", "zhang"),
        ("cli", "user.disable", "zhang"),
        ("cli", "user.enable", "zhang"),
        ("cli", "user.password", "zhang"),
        ("cli", "user.update", "zhang"),
    ]
    from huying.auth.service import login

    rt = build_runtime(load_settings(config))
    try:
        _, user, _ = login(rt=rt, username="zhang", password="second-pass-2", address=None)
        assert user.role == "supervisor"
    finally:
        rt.close()


def test_users_passwd_takes_no_password_argument(config: str) -> None:
    with pytest.raises(SystemExit):
        main(["--config", config, "users", "passwd", "zhang", "new-password-here"])


def test_keys_list_and_revoke(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config, "keys", "create", "--role", "monitor", "--name", "prom"]) == 0
    token = capsys.readouterr().out.strip()
    assert main(["--config", config, "keys", "list"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.split()[:4] == ["1", token[:10], "monitor", "active"] and line.endswith("prom")
    assert token not in line
    assert main(["--config", config, "keys", "revoke", "1"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["--config", config, "keys", "list"]) == 0
    assert "revoked 2" in capsys.readouterr().out
    assert main(["--config", config, "keys", "revoke", "9"]) == 1
    assert "no API key 9" in capsys.readouterr().err
    assert _cli_entries(config) == [("cli", "key.create", "1"), ("cli", "key.revoke", "1")]
    rt = build_runtime(load_settings(config))
    try:
        from huying.auth.service import authenticate
        from huying.errors import NotAuthenticated

        with pytest.raises(NotAuthenticated), rt.transaction() as s:
            authenticate(session=s, token=token, now=rt.now())
    finally:
        rt.close()


def test_serve_refuses_several_workers_on_sqlite_before_migrating(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite writes one transaction at a time: a second server process would only queue
    behind the first. Refused before anything is migrated, bound or started."""
    assert main(["--config", config, "serve", "--port", "1", "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "--workers" in err and "needs PostgreSQL" in err
    rt = build_runtime(load_settings(config, environ={}))
    try:
        with rt.db.connect() as conn:
            assert inspect(conn).get_table_names() == []
    finally:
        rt.close()


def test_serve_needs_at_least_one_worker(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config, "serve", "--port", "1", "--workers", "0"]) == 2
    assert "--workers: at least 1" in capsys.readouterr().err
