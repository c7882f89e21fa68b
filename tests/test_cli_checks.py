"""`huying directory check`, `huying calendar check` and the warning of `huying calendar
due`, called through `huying.cli.main` (DESIGN.md part two, "Supervision that holds")."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from huying.calendar import HolidayTable
from huying.cli import main
from tests.conftest import ROOT

DEMO = ROOT / "src/huying/data/demo"
WORLD = ROOT / "tests/world.yaml"


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The config file named here, whatever the environment says."""
    monkeypatch.delenv("HUYING_CONFIG", raising=False)
    monkeypatch.delenv("HUYING_DATABASE_URL", raising=False)


def write_config(tmp_path: Path, **changes: Any) -> str:
    """The project's config.yaml on a database of its own, with top-level `changes`."""
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    cfg["database"]["url"] = f"sqlite:///{tmp_path / 'checks.db'}"
    cfg["workflows"]["path"] = str(ROOT / "src/huying/data/workflows")
    cfg.update(changes)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return str(path)


LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")


def run(capsys: pytest.CaptureFixture[str], config: str, *argv: str) -> tuple[int, str, str]:
    """Exit status, standard output, and standard error without the log lines (the
    migrations' INFO lines go there too)."""
    code = main(["--config", config, *argv])
    out, err = capsys.readouterr()
    said = "".join(line for line in err.splitlines(keepends=True) if not LOG_LINE.match(line))
    return code, out, said


# --- huying directory check -----------------------------------------------------------


def test_the_demo_with_the_project_config_names_someone_on_every_rung(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    assert run(capsys, config, "load", str(DEMO / "directory.yaml"))[0] == 0
    code, out, err = run(capsys, config, "directory", "check")
    assert (code, out, err) == (0, "every rung of the escalation ladder names someone\n", "")


def test_each_gap_is_a_line_and_the_exit_status_is_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The small test directory under the project's ladder: its codes are none of the
    demo's, so the dispatch centre and the fixed departments are reported too."""
    config = write_config(tmp_path)
    assert run(capsys, config, "load", str(WORLD))[0] == 0
    code, out, err = run(capsys, config, "directory", "check")
    assert code == 1
    assert out.splitlines() == [
        "DIST: level 1 notifies nobody",
        "DIST: level 2 notifies nobody",
        "DIST: level 3 notifies nobody",
        "GXJ: level 2 notifies nobody",
        "GXJ: level 3 notifies nobody",
        "RSJ: level 1 notifies nobody",
        "RSJ: level 2 notifies nobody",
        "RSJ: level 3 notifies nobody",
        "STREET: level 1 notifies nobody",
        "STREET: level 3 notifies nobody",
        "(no lead department → dispatch_center HP-12345): level 1 notifies nobody",
        "(no lead department → dispatch_center HP-12345): level 2 notifies nobody",
        "(no lead department → dispatch_center HP-12345): level 3 notifies nobody",
    ]
    assert err.splitlines() == [
        "warning: dispatch_center HP-12345 is no department of the directory "
        "(requests with no lead department escalate to its leaders)",
        "warning: escalation level 2 names department HP-DCS, which is not in the directory",
        "warning: escalation level 3 names department HP, which is not in the directory",
    ]


def test_a_dispatch_centre_that_is_not_set_is_said_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ladder = [
        {"after": "0 seconds", "level": 1, "notify": ["department_head"]},
        {"after": "1 working day", "level": 2, "notify": ["district_supervision"]},
    ]
    config = write_config(tmp_path, escalation=ladder, dispatch_center=None)
    assert run(capsys, config, "load", str(WORLD))[0] == 0
    code, out, err = run(capsys, config, "directory", "check")
    assert code == 1 and err == ""
    assert out.splitlines() == [
        "DIST: level 1 notifies nobody",
        "RSJ: level 1 notifies nobody",
        "STREET: level 1 notifies nobody",
        "(no lead department; dispatch_center is not set): level 1 notifies nobody",
        "(no lead department; dispatch_center is not set): level 2 notifies nobody",
    ]
    # with GXJ as dispatch centre and a head for the others, nothing is left
    config = write_config(tmp_path, escalation=ladder[:1], dispatch_center="GXJ")
    with_heads = "departments:\n" + "".join(
        f"  - {{code: {c}, name: {c}, leaders: [{{name: 负责人, role: department_head}}]}}\n"
        for c in ("DIST", "RSJ", "STREET")
    )
    (tmp_path / "heads.yaml").write_text(with_heads, encoding="utf-8")
    assert run(capsys, config, "load", str(tmp_path / "heads.yaml"))[0] == 0
    assert run(capsys, config, "directory", "check") == (
        0,
        "every rung of the escalation ladder names someone\n",
        "",
    )


def test_an_empty_directory_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, write_config(tmp_path), "directory", "check")
    assert code == 1
    assert "the directory has no departments: load them with `huying load FILE`" in err
    assert "every rung" not in out


# --- huying calendar check / due --------------------------------------------------------


@pytest.fixture
def knows_2026(monkeypatch: pytest.MonkeyPatch) -> None:
    """`holidays: cn` reads a table that knows 2026 only, whatever chinese-calendar knows."""
    monkeypatch.setattr("huying.calendar.ChineseHolidays", lambda: HolidayTable(years=[2026]))


def calendar_config(tmp_path: Path, **calendar: Any) -> str:
    cal = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))["calendar"]
    return write_config(tmp_path, calendar={**cal, **calendar})


@pytest.mark.usefixtures("knows_2026")
def test_calendar_check_of_a_known_year(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, calendar_config(tmp_path), "calendar", "check", "2026")
    assert code == 0 and err == ""
    assert out.startswith("2026: official holidays known (chinese-calendar ")


@pytest.mark.usefixtures("knows_2026")
def test_calendar_check_of_an_unknown_year_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, calendar_config(tmp_path), "calendar", "check", "2027")
    assert code == 1 and out == ""
    assert err.startswith("2027: official holidays unknown: chinese-calendar ")
    assert "knows 2026–2026" in err
    assert "upgrade chinese-calendar" in err
    assert "calendar.extra_holidays" in err and "calendar.extra_workdays" in err


@pytest.mark.usefixtures("knows_2026")
def test_a_year_the_config_names_a_day_of_is_known(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = calendar_config(tmp_path, extra_holidays=["2027-01-01"])
    code, out, _ = run(capsys, config, "calendar", "check", "2027")
    assert (code, out) == (
        0,
        "2027: official holidays known (calendar.extra_holidays/extra_workdays in the config)\n",
    )


def test_with_holidays_none_every_year_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, calendar_config(tmp_path, holidays="none"), "calendar", "check", "2040"
    )
    assert code == 0 and out.startswith("2040: official holidays known (calendar.holidays: none")


@pytest.mark.usefixtures("knows_2026")
def test_calendar_due_warns_when_it_crossed_an_unknown_year(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = calendar_config(tmp_path)
    code, out, err = run(
        capsys, config, "calendar", "due", "2026-12-30T10:00+08:00", "3 working days"
    )
    assert code == 0
    # Thursday 31, then 元旦 counted as a working day (Friday 1), then Monday 4
    assert out == "2027-01-04T17:30:00+08:00\n"
    assert err == (
        "warning: 2027's official holidays are unknown; 元旦 etc. were counted as working "
        "days (see `huying calendar check 2027`)\n"
    )
    code, out, err = run(
        capsys, config, "calendar", "due", "2026-12-01T10:00+08:00", "3 working days"
    )
    assert (code, out, err) == (0, "2026-12-04T17:30:00+08:00\n", "")
    config = calendar_config(tmp_path, extra_holidays=["2027-01-01"])
    code, out, err = run(
        capsys, config, "calendar", "due", "2026-12-30T10:00+08:00", "3 working days"
    )
    assert (code, out, err) == (0, "2027-01-05T17:30:00+08:00\n", "")
