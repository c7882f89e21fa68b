"""`huying load`: every bad row reported with its line, and nothing of a bad file written."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from huying.directory.loader import LoadError, load_file, load_text
from huying.directory.models import Department, Enterprise
from huying.directory.uscc import check_character, uscc_problem
from huying.runtime import Runtime
from tests.conftest import ROOT


def _count(rt: Runtime, model: type) -> int:
    with rt.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_uscc_check_character() -> None:
    assert uscc_problem("91110000600037341L") is None
    assert "expected 'L'" in (uscc_problem("91110000600037341M") or "")
    assert "18 characters" in (uscc_problem("9111000060003734") or "")
    assert "not allowed" in (uscc_problem("91110000600037341I") or "")
    # registration authority may be a letter: A, N, Y …
    for first in "ANY":
        body = first + "1110000600037341"
        assert uscc_problem(body + check_character(body)) is None


def test_yaml_with_bad_rows_reports_each_line_and_loads_nothing(rt: Runtime) -> None:
    text = """departments:
  - {code: A, name: 甲局}
  - {code: B, name: 乙局, parent_code: NOPE}
categories:
  - {code: C1, name: 类一, lead_department: A}
  - {code: C2, name: 类二, lead_department: GHOST, time_limits: {reply: "5 parsecs"}}
  - {code: C3, name: 类三, urgency: extreme}
"""
    with pytest.raises(LoadError) as caught, rt.transaction() as s:
        load_text(
            session=s, text=text, path="bad.yaml", urgencies=rt.settings.urgencies, now=rt.now()
        )
    problems = caught.value.problems
    assert any(p.startswith("line 3:") and "NOPE" in p for p in problems), problems
    assert any(p.startswith("line 6:") and "parsecs" in p for p in problems), problems
    assert any(p.startswith("line 7:") and "extreme" in p for p in problems), problems
    assert _count(rt, Department) == 0


def test_csv_enterprises_bad_row_line_numbers(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "ents.csv"
    path.write_text(
        "uscc,name,chain,grid_code\n"
        "91110000600037341L,甲公司,,440112012001001\n"
        "91110000600037341M,乙公司,,440112012001002\n"
        "91440101711615159C,丙公司,nochain,440112012001003\n",
        encoding="utf-8",
    )
    with pytest.raises(LoadError) as caught, rt.transaction() as s:
        load_file(session=s, path=path, urgencies=rt.settings.urgencies, now=rt.now())
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == ["line 3", "line 4"], problems
    assert _count(rt, Enterprise) == 0


def test_a_nul_character_is_a_bad_row_in_csv_and_yaml(rt: Runtime, tmp_path: Path) -> None:
    """The rule of the API and the console holds for `huying load` too: PostgreSQL cannot
    store a NUL, and SQLite would have stored it."""
    csv_path = tmp_path / "ents.csv"
    csv_path.write_text(
        "uscc,name,chain,grid_code\n91110000600037341L,甲\x00公司,,440112012001001\n",
        encoding="utf-8",
    )
    yaml_path = tmp_path / "depts.yaml"
    yaml_path.write_text('departments:\n  - {code: A, name: "甲\\0局"}\n', encoding="utf-8")
    for path in (csv_path, yaml_path):
        with pytest.raises(LoadError) as caught, rt.transaction() as s:
            load_file(session=s, path=path, urgencies=rt.settings.urgencies, now=rt.now())
        [problem] = caught.value.problems
        assert problem.startswith("line 2:") and "NUL" in problem, problem
    assert _count(rt, Enterprise) == _count(rt, Department) == 0


def test_demo_directory_loads_and_reloads(rt: Runtime) -> None:
    for _ in range(2):  # loading is an upsert: running it twice changes nothing
        with rt.transaction() as s:
            for name in ("directory.yaml", "enterprises.csv"):
                load_file(
                    session=s,
                    path=ROOT / "demo" / name,
                    urgencies=rt.settings.urgencies,
                    now=rt.now(),
                )
    assert _count(rt, Department) > 10
    assert _count(rt, Enterprise) > 20
