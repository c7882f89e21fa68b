"""The department tree that scope follows (DESIGN.md, "Scope follows the tree"), shared by the
API, console, alerts and auth tests: tests/world.yaml's directory grown by a community under
萝岗街道 (STREET) and a sibling street, and one request led at each level.

    DIST 区政府
    ├── GXJ 区工信局
    ├── STREET 萝岗街道
    │   └── LUOFENG 萝峰社区
    ├── XIAGANG 夏港街道
    └── RSJ 区人社局

The two new departments are loaded here rather than in tests/world.yaml: the escalation-gap
tests list every department of that file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from huying.auth.service import Principal, create_key
from huying.directory.loader import load_text
from huying.requests import service
from huying.requests.schemas import SubmitIn
from huying.runtime import Runtime
from tests.conftest import World, submit_body

# Each with the leaders its rungs need, so that the tree adds no escalation gap.
TREE_YAML = """
departments:
  - {code: LUOFENG, name: 萝峰社区, parent_code: STREET,
     leaders: [{name: 周书记, role: department_head}]}
  - {code: XIAGANG, name: 夏港街道, parent_code: DIST,
     leaders: [{name: 黄主任, role: street_leadership}, {name: 林科长, role: department_head}]}
"""
GRID = Principal("key:grid", "integration", None, "网格系统")
DISTRICT_DISPATCHER = Principal("key:district-dispatch", "dispatcher", None, "区派单中心")
# The keys the tree adds to the world's: name, role, department.
KEYS = (
    ("luofeng", "department", "LUOFENG"),
    ("xiagang", "department", "XIAGANG"),
    ("street_supervisor", "supervisor", "STREET"),
    ("street_dispatcher", "dispatcher", "STREET"),
    ("xiagang_dispatcher", "dispatcher", "XIAGANG"),
)


@dataclass(frozen=True)
class Tree:
    """One request per place in the tree, by id."""

    street_own: int  # led by 萝岗街道 (HIRE in its grid), RSJ co-handling
    community: int  # led by 萝峰社区, under the street
    co_street: int  # led by 区工信局, the street co-handling (POWER)
    sibling: int  # led by 夏港街道, the sibling street
    waiting: int  # awaiting its first dispatch: no department at all

    @property
    def every(self) -> set[int]:
        return {self.street_own, self.community, self.co_street, self.sibling, self.waiting}

    @property
    def street_sees(self) -> set[int]:
        return {self.street_own, self.community, self.co_street}


def grow(rt: Runtime) -> None:
    """Load the community and the sibling street."""
    with rt.transaction() as s:
        load_text(
            session=s,
            text=TREE_YAML,
            path="tree.yaml",
            urgencies=rt.settings.urgencies,
            now=rt.now(),
        )


def add_keys(world: World) -> None:
    """The tree's keys, usable as `world.h(name)`."""
    rt = world.rt
    with rt.transaction() as s:
        for name, role, department in KEYS:
            _, token = create_key(
                session=s, role=role, department=department, name=name, now=rt.now()
            )
            world.tokens[name] = token


def submit(rt: Runtime, **overrides: Any) -> int:
    """A request submitted by the grid system (POWER → GXJ with STREET, HIRE → STREET, OTHER
    → the dispatch queue)."""
    with rt.transaction() as s:
        req, _ = service.submit(
            rt=rt,
            session=s,
            principal=GRID,
            body=SubmitIn.model_validate(submit_body(**overrides)),
            idempotency_key=None,
        )
        return req.id


def act(rt: Runtime, who: Principal, request_id: int, action: str, **body: Any) -> None:
    with rt.transaction() as s:
        service.act(
            rt=rt,
            session=s,
            principal=who,
            request_id=request_id,
            action=action,
            body=body,
            if_match=None,
        )


def dispatched_to(rt: Runtime, department: str, title: str) -> int:
    """An OTHER request the district's dispatcher sent to `department`."""
    rid = submit(rt, category="OTHER", title=title)
    act(rt, DISTRICT_DISPATCHER, rid, "dispatch", lead_department=department)
    return rid


def plant(rt: Runtime) -> Tree:
    """The tree's departments and one request at each place of it."""
    grow(rt)
    return Tree(
        street_own=submit(rt, category="HIRE", title="街道主办"),
        community=dispatched_to(rt, "LUOFENG", "社区主办"),
        co_street=submit(rt, title="工信局主办街道协办"),
        sibling=dispatched_to(rt, "XIAGANG", "夏港街道主办"),
        waiting=submit(rt, category="OTHER", title="待派单"),
    )
