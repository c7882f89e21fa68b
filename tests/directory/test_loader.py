"""`huying load`: every bad row reported with its line, and nothing of a bad file written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from huying.directory.loader import Loaded, LoadError, load_file, load_text
from huying.directory.models import Category, Department, Enterprise
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
                    path=ROOT / "src/huying/data/demo" / name,
                    urgencies=rt.settings.urgencies,
                    now=rt.now(),
                )
    assert _count(rt, Department) > 10
    assert _count(rt, Enterprise) > 20


def _load(rt: Runtime, text: str, path: str = "file.yaml", **kwargs: Any) -> Loaded:
    with rt.transaction() as s:
        return load_text(
            session=s, text=text, path=path, urgencies=rt.settings.urgencies, now=rt.now(), **kwargs
        )


def _problems(rt: Runtime, text: str, path: str = "file.yaml", **kwargs: Any) -> list[str]:
    with pytest.raises(LoadError) as caught:
        _load(rt, text, path, **kwargs)
    return caught.value.problems


def _grid_codes(rt: Runtime) -> dict[str, str | None]:
    with rt.transaction() as s:
        return {e.uscc: e.grid_code for e in s.scalars(select(Enterprise))}


ENTERPRISES_CSV = (
    "uscc,name,grid_code,address\n"
    "91110000600037341L,甲公司,440112012001001,甲路1号\n"
    "91440101711615159C,乙公司,440112013001001,乙路2号\n"
)


# --- what a load writes, and what it says it did -------------------------------------


def test_a_csv_without_the_grid_code_column_keeps_the_stored_grid_codes(rt: Runtime) -> None:
    assert _load(rt, ENTERPRISES_CSV, "a.csv").summary() == (
        "enterprises: 2 created, 0 updated, 0 unchanged"
    )
    loaded = _load(
        rt, "uscc,name\n91110000600037341L,甲公司（新名）\n91440101711615159C,乙公司\n", "b.csv"
    )
    assert loaded.summary() == "enterprises: 0 created, 1 updated, 1 unchanged"
    assert loaded.counts == {"enterprises": 2}
    assert _grid_codes(rt) == {
        "91110000600037341L": "440112012001001",
        "91440101711615159C": "440112013001001",
    }
    with rt.transaction() as s:
        first = s.scalars(select(Enterprise).where(Enterprise.uscc == "91110000600037341L")).one()
        assert (first.name, first.address) == ("甲公司（新名）", "甲路1号")


def test_an_empty_csv_cell_clears_its_field(rt: Runtime) -> None:
    _load(rt, ENTERPRISES_CSV, "a.csv")
    loaded = _load(rt, "uscc,name,grid_code\n91110000600037341L,甲公司,\n", "b.csv")
    assert loaded.summary() == "enterprises: 0 created, 1 updated, 0 unchanged"
    assert _grid_codes(rt)["91110000600037341L"] is None


def test_a_yaml_entry_without_a_field_keeps_the_stored_value(rt: Runtime) -> None:
    _load(
        rt,
        """departments:
  - {code: A, name: 甲局, leaders: [{name: 王局长}]}
  - {code: B, name: 乙局}
categories:
  - {code: C1, name: 类一, urgency: urgent, lead_department: A, co_departments: [B]}
enterprises:
  - {uscc: 91110000600037341L, name: 甲公司, grid_code: "440112012001001"}
""",
    )
    loaded = _load(
        rt,
        """departments:
  - {code: A, name: 甲局}
categories:
  - {code: C1, name: 类一（改名）, lead_department: B}
enterprises:
  - {uscc: 91110000600037341L, name: 甲公司}
  - {uscc: 91440101711615159C, name: 乙公司, grid_code: null}
""",
    )
    assert loaded.summary() == (
        "departments: 0 created, 0 updated, 1 unchanged; "
        "categories: 0 created, 1 updated, 0 unchanged; "
        "enterprises: 1 created, 0 updated, 1 unchanged"
    )
    with rt.transaction() as s:
        a = s.scalars(select(Department).where(Department.code == "A")).one()
        assert [leader["name"] for leader in a.leaders] == ["王局长"]
        c1 = s.scalars(select(Category).where(Category.code == "C1")).one()
        # the new lead department leaves the co-departments, which were not given
        assert (c1.name, c1.urgency, c1.lead_department_code) == ("类一（改名）", "urgent", "B")
        assert c1.co_department_codes == []
    assert _grid_codes(rt)["91110000600037341L"] == "440112012001001"


def test_the_demo_directory_reloads_unchanged(rt: Runtime) -> None:
    """The demo's grid codes and prefixes pass the configured pattern, and a second load
    finds everything as the first left it."""

    def load_demo() -> list[str]:
        with rt.transaction() as s:
            return [
                load_file(
                    session=s,
                    path=ROOT / "src/huying/data/demo" / name,
                    urgencies=rt.settings.urgencies,
                    now=rt.now(),
                    grid_code_pattern=rt.settings.directory.grid_code_pattern,
                ).summary()
                for name in ("directory.yaml", "enterprises.csv")
            ]

    kinds = "departments|chains|categories|routing rules|enterprises"
    created = rf"({kinds}): [1-9]\d* created, 0 updated, 0 unchanged"
    unchanged = rf"({kinds}): 0 created, 0 updated, [1-9]\d* unchanged"
    first, again = load_demo(), load_demo()
    assert all(re.fullmatch(created, part) for f in first for part in f.split("; ")), first
    assert all(re.fullmatch(unchanged, part) for f in again for part in f.split("; ")), again
    assert again[1].startswith("enterprises: ")


# --- grid codes ------------------------------------------------------------------------


def test_grid_codes_and_prefixes_follow_the_pattern(rt: Runtime) -> None:
    problems = _problems(
        rt,
        """departments:
  - {code: A, name: 甲局}
routing_rules:
  - {grid_prefix: "440112012", department: A}
  - {grid_prefix: "4401120120010011", department: A}
enterprises:
  - {uscc: 91110000600037341L, name: 甲公司, grid_code: "440112012001001"}
  - {uscc: 91440101711615159C, name: 乙公司, grid_code: "44011201200100"}
""",
    )
    assert problems == [
        "line 5: grid_prefix: no grid code matching the pattern \\d{15} starts with "
        "'4401120120010011'",
        "line 8: grid_code: '44011201200100' does not match the grid code pattern \\d{15}",
    ]
    assert _count(rt, Enterprise) == 0


def test_the_configured_grid_code_pattern_is_the_one_checked(rt: Runtime) -> None:
    text = """departments:
  - {code: A, name: 甲局}
routing_rules:
  - {grid_prefix: "GZ01", department: A}
enterprises:
  - {uscc: 91110000600037341L, name: 甲公司, grid_code: "GZ0100A1"}
"""
    assert len(_problems(rt, text)) == 2  # not 15 digits
    loaded = _load(rt, text, grid_code_pattern=r"GZ\d{4}[A-Z]\d")
    assert loaded.counts == {"departments": 1, "routing_rules": 1, "enterprises": 1}


# --- what a bad file is told -----------------------------------------------------------


def test_every_problem_of_a_file_at_once_in_line_order(rt: Runtime) -> None:
    text = """departments:
  - {code: A, name: 甲局}
  - code: B
    name: ""
    parent_code: NOPE
chains:
  - {code: ch, name: 链, liaison_department: GHOST}
categories:
  - {code: C1, name: "", lead_department: GHOST, co_departments: [A, SPOOK]}
  - {code: C2, name: 类二, urgency: extreme}
routing_rules:
  - {category: C9, grid_prefix: "440112012", department: A}
  - {grid_prefix: "440112012", colour: red}
  - {category: C9, grid_prefix: "440112012", department: B}
enterprises:
  - {uscc: 91110000600037341L, name: 甲公司, chain: nochain}
  - {uscc: 91110000600037341l, name: 甲公司}
"""
    assert _problems(rt, text) == [
        "line 4: name: String should have at least 1 character",
        "line 5: parent_code: unknown department 'NOPE'",
        "line 7: liaison_department: unknown department 'GHOST'",
        "line 9: name: String should have at least 1 character",
        "line 9: lead_department: unknown department 'GHOST'",
        "line 9: co_departments: unknown department 'SPOOK'",
        "line 10: urgency: 'extreme' is not one of normal, urgent",
        "line 12: category: unknown category 'C9'",
        "line 13: department: Field required",
        "line 13: colour: Extra inputs are not permitted",
        "line 14: routing rule: the same category, grid_prefix and chain as line 12",
        "line 14: category: unknown category 'C9'",
        "line 16: chain: unknown chain 'nochain'",
        "line 17: uscc: enterprise '91110000600037341L' is also on line 16",
    ]
    assert _count(rt, Department) == 0


def test_a_parent_listed_after_its_child_is_named(rt: Runtime) -> None:
    text = """departments:
  - {code: B, name: 乙局, parent_code: A}
  - {code: A, name: 甲局}
  - {code: C, name: 丙局, parent_code: C}
"""
    assert _problems(rt, text) == [
        "line 2: parent_code: department 'A' comes later, on line 3: list a parent first",
        "line 4: parent_code: a department cannot be its own parent",
    ]


def test_a_bad_yaml_file_is_named_with_its_line(rt: Runtime) -> None:
    assert _problems(rt, "departments:\n  - {code: A\n  - {code: B}\n")[0].startswith(
        "line 3: not valid YAML"
    )
    assert _problems(rt, "- just a list\n") == [
        "line 1: expected a mapping of sections: "
        "departments, chains, categories, routing_rules, enterprises"
    ]
    assert _problems(
        rt, "departments: {code: A}\nteams:\n  - {code: T}\ndepartments_x: []\nchains:\n  - oops\n"
    ) == [
        "line 1: departments: expected a list of entries",
        "line 2: teams: unknown section (the sections are "
        "departments, chains, categories, routing_rules, enterprises)",
        "line 4: departments_x: unknown section (the sections are "
        "departments, chains, categories, routing_rules, enterprises)",
        "line 6: chains: each entry must be a mapping, not 'oops'",
    ]


def test_libyaml_reads_what_the_pure_python_parser_reads_and_its_errors_are_explained_by_it(
    rt: Runtime,
) -> None:
    """Documents are read by libyaml's parser where PyYAML has it (7× faster); what it
    refuses is read again by the pure Python one, whose messages name the culprit."""
    import yaml

    from huying.directory import loader

    if yaml.__with_libyaml__:
        assert issubclass(loader._FastLineLoader, yaml.CSafeLoader)
    for path in (ROOT / "tests/world.yaml", ROOT / "src/huying/data/demo/directory.yaml"):
        text = path.read_text(encoding="utf-8")
        fast = yaml.load(text, Loader=loader._FastLineLoader)
        slow = yaml.load(text, Loader=loader._LineLoader)
        assert fast == slow and fast.key_lines == slow.key_lines
        assert [getattr(v, "lines", None) for v in fast.values()] == [
            getattr(v, "lines", None) for v in slow.values()
        ]
    # libyaml: "found character that cannot start any token", without the character
    assert _problems(rt, "departments:\n\t- {code: A}\n") == [
        "line 2: not valid YAML: found character '\\t' that cannot start any token"
    ]


def test_a_bad_csv_header_and_rows_of_the_wrong_width(rt: Runtime) -> None:
    assert _problems(rt, "usc,name,name\n", "e.csv") == [
        "line 1: header: unknown column 'usc' (the columns are "
        "uscc, name, chain, grid_code, address, contact_name, contact_phone)",
        "line 1: header: column 'name' appears more than once",
        "line 1: header: the required column 'uscc' is missing",
    ]
    text = (
        "uscc,name,grid_code\n"
        "91110000600037341L,甲公司\n"
        "\n"
        '91440101711615159C,"乙\n公司",440112012001001,extra\n'
        ",,\n"
        ",乙公司,\n"
    )
    assert _problems(rt, text, "e.csv") == [
        "line 2: the row has 2 cells but the header has 3 columns",
        "line 4: the row has 4 cells but the header has 3 columns",
        "line 7: uscc: invalid USCC '': a USCC has 18 characters, this has 0",
    ]
