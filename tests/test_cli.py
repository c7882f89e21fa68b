"""The command line against a real database file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from huying.cli import main
from huying.runtime import Runtime
from tests.conftest import ROOT


@pytest.fixture
def config(tmp_path: Path) -> str:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    cfg["database"]["url"] = f"sqlite:///{tmp_path / 'cli.db'}"
    cfg["workflows"]["path"] = str(ROOT / "workflows")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return str(path)


def test_keys_create_prints_the_token_alone(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", config, "load", str(ROOT / "demo" / "directory.yaml")]) == 0
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


def test_serve_refuses_to_start_on_an_invalid_workflow(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "wf"
    folder.mkdir()
    text = (ROOT / "workflows" / "service_request.yaml").read_text(encoding="utf-8")
    (folder / "broken.yaml").write_text(
        text.replace("guards: [has_lead_department]", "guards: [os.system]", 1), encoding="utf-8"
    )
    cfg = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
    cfg["workflows"]["path"] = str(folder)
    Path(config).write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    assert main(["--config", config, "serve", "--port", "1"]) == 1
    err = capsys.readouterr().err
    assert "guard 'os.system' is not registered" in err


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
