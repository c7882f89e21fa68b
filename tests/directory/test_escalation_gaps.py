"""`directory.service.escalation_gaps`: the rungs that would alert nobody, read from the
stored directory (DESIGN.md part two, "Every escalation names people")."""

from __future__ import annotations

from typing import Any

from huying.directory import service as directory
from huying.directory.loader import load_file, load_text
from huying.directory.notify import Gap
from huying.runtime import Runtime
from huying.settings import Settings, load_settings, settings_from_mapping
from tests.conftest import ROOT, World

DEMO = ROOT / "src/huying/data/demo"


def gaps(rt: Runtime, settings: Settings) -> list[Gap]:
    with rt.transaction() as s:
        return directory.escalation_gaps(session=s, settings=settings)


def ladder(**top: Any) -> Settings:
    return settings_from_mapping(top, base_dir=ROOT)


def test_the_demo_names_someone_on_every_rung_with_the_project_config(rt: Runtime) -> None:
    """Every demo department, and the requests with no lead department (through the
    dispatch centre), under the ladder `./dev run` uses."""
    with rt.transaction() as s:
        load_file(
            session=s, path=DEMO / "directory.yaml", urgencies=rt.settings.urgencies, now=rt.now()
        )
    config = load_settings(ROOT / "config.yaml", environ={})
    assert config.dispatch_center == "HP-12345"
    assert config.ladder_top == 3
    assert gaps(rt, config) == []
    # without the dispatch centre, the requests with no lead reach nobody at level 1
    alone = config.model_copy(update={"dispatch_center": None})
    assert gaps(rt, alone) == [Gap(None, 1)]


def test_gaps_of_the_small_world_under_the_default_ladder(rt: Runtime, world: World) -> None:
    assert gaps(rt, ladder()) == [
        Gap("DIST", 1),
        Gap("DIST", 2),
        Gap("GXJ", 2),
        Gap("RSJ", 1),
        Gap("RSJ", 2),
        Gap("STREET", 1),
        Gap(None, 1),
        Gap(None, 2),
        Gap(None, 3),
    ]


def test_a_fixed_department_entry_names_its_leaders_whoever_leads(
    rt: Runtime, world: World
) -> None:
    settings = ladder(
        dispatch_center="STREET",
        escalation=[
            {
                "after": "0 seconds",
                "level": 1,
                "notify": ["department_head", {"department": "GXJ", "role": "department_head"}],
            },
            {"after": "1 working day", "level": 2, "notify": ["district_supervision"]},
        ],
    )
    assert gaps(rt, settings) == []
    # a department the entry names that does not exist, or a role nobody there has
    for missing in (
        {"department": "NOPE", "role": "department_head"},
        {"department": "GXJ", "role": "x"},
    ):
        settings = ladder(
            escalation=[{"after": "0 seconds", "level": 1, "notify": [missing]}],
            dispatch_center="GXJ",
        )
        assert gaps(rt, settings) == [Gap(c, 1) for c in ("DIST", "GXJ", "RSJ", "STREET", None)]


def test_a_leader_added_later_closes_the_gap(rt: Runtime, world: World) -> None:
    """Read from the database at each call: nothing cached across a reload."""
    with rt.transaction() as s:
        load_text(
            session=s,
            text="departments:\n  - {code: RSJ, name: 区人社局, parent_code: DIST, "
            "leaders: [{name: 吴局长, role: department_head}]}\n",
            path="rsj.yaml",
            urgencies=rt.settings.urgencies,
            now=rt.now(),
        )
    assert Gap("RSJ", 1) not in gaps(rt, ladder())
    assert Gap("RSJ", 2) in gaps(rt, ladder())
