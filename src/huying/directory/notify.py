"""Who an escalation reaches: each rung's `notify` entries resolved to leaders in the
directory, and the rungs that resolve to nobody (`huying directory check`, `/healthz`).

An entry is a leader role, looked up from the request's lead department up through its
parents to the nearest department that has such leaders (from the dispatch centre when the
request has no lead department), or
`{department, role}`: that one department's leaders with that role, whoever leads.
Pure functions over the departments, so the worker resolves a whole batch from one read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from huying.settings import NotifyDepartment, NotifyEntry, Rung


class DepartmentLike(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def parent_code(self) -> str | None: ...
    @property
    def leaders(self) -> Sequence[Mapping[str, Any]]: ...


Departments = Mapping[str, DepartmentLike]


def _leader(leader: Mapping[str, Any], dept: DepartmentLike) -> dict[str, Any]:
    return {
        "name": leader.get("name"),
        "title": leader.get("title"),
        "phone": leader.get("phone"),
        "role": leader.get("role"),
        "department": dept.code,
        "department_name": dept.name,
    }


def up_the_tree(departments: Departments, start: str | None, role: str) -> list[dict[str, Any]]:
    """Leaders with `role` of the nearest department that has any, from `start` up through
    its parents: a bureau's head, not also every head above it."""
    seen: set[str] = set()
    code = start
    while code and code not in seen:
        seen.add(code)
        dept = departments.get(code)
        if dept is None:
            break
        found = [_leader(x, dept) for x in dept.leaders or () if x.get("role") == role]
        if found:
            return found
        code = dept.parent_code
    return []


def of_department(departments: Departments, code: str, role: str) -> list[dict[str, Any]]:
    """Leaders with `role` of the department `code` itself."""
    dept = departments.get(code)
    if dept is None:
        return []
    return [_leader(x, dept) for x in dept.leaders or () if x.get("role") == role]


def resolve_entry(
    entry: NotifyEntry,
    departments: Departments,
    *,
    lead_department: str | None,
    dispatch_center: str | None,
) -> dict[str, Any]:
    """One entry of a rung as an event carries it: what it names and the leaders found."""
    if isinstance(entry, NotifyDepartment):
        return {
            "department": entry.department,
            "role": entry.role,
            "leaders": of_department(departments, entry.department, entry.role),
        }
    start = lead_department or dispatch_center
    return {"role": entry, "leaders": up_the_tree(departments, start, entry)}


def resolve(
    rung: Rung,
    departments: Departments,
    *,
    lead_department: str | None,
    dispatch_center: str | None,
) -> list[dict[str, Any]]:
    """Every entry of `rung`, each with the leaders it names (possibly none)."""
    return [
        resolve_entry(
            e, departments, lead_department=lead_department, dispatch_center=dispatch_center
        )
        for e in rung.notify
    ]


def names_someone(notify: Sequence[Mapping[str, Any]]) -> bool:
    return any(group.get("leaders") for group in notify)


@dataclass(frozen=True)
class Gap:
    """A rung that alerts nobody: for requests led by `department` (None: requests with no
    lead department, whose role entries go to the dispatch centre), at `level`."""

    department: str | None
    level: int

    def as_dict(self) -> dict[str, Any]:
        return {"department": self.department, "level": self.level}

    def __str__(self) -> str:
        who = self.department or "(no lead department → dispatch_center)"
        return f"{who}: level {self.level} notifies nobody"


def gaps(
    ladder: Sequence[Rung], departments: Departments, *, dispatch_center: str | None
) -> list[Gap]:
    """Each (department, level) whose rung resolves to nobody, departments in code order,
    then the requests that have no lead department."""
    found: list[Gap] = []
    for code in [*sorted(departments), None]:
        for rung in ladder:
            notify = resolve(
                rung, departments, lead_department=code, dispatch_center=dispatch_center
            )
            if not names_someone(notify):
                found.append(Gap(code, rung.level))
    return found
