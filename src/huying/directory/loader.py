"""`huying load FILE`: the directory from YAML (every kind) or CSV (enterprises).

All rows are checked first, against the database and the rest of the file; a file
with any bad row is reported row by row, with line numbers, and nothing of it is written.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from huying.directory import service
from huying.directory.models import Category, Chain, Department
from huying.directory.schemas import (
    CategoryIn,
    ChainIn,
    DepartmentIn,
    EnterpriseIn,
    RoutingRuleIn,
)
from huying.errors import HuyingError

SECTIONS: dict[str, type[BaseModel]] = {
    "departments": DepartmentIn,
    "chains": ChainIn,
    "categories": CategoryIn,
    "routing_rules": RoutingRuleIn,
    "enterprises": EnterpriseIn,
}
ENTERPRISE_COLUMNS = (
    "uscc",
    "name",
    "chain",
    "grid_code",
    "address",
    "contact_name",
    "contact_phone",
)


class LoadError(Exception):
    def __init__(self, path: str, problems: list[str]) -> None:
        super().__init__(f"{path}: {len(problems)} problem(s)")
        self.path = path
        self.problems = problems


@dataclass
class Loaded:
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class _Row:
    section: str
    line: int
    item: Any


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that remembers the line each mapping starts on, as `__line__`."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        mapping["__line__"] = node.start_mark.line + 1
        return mapping


def _read_yaml(text: str, path: str) -> list[tuple[str, int, dict[str, Any]]]:
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        raise LoadError(path, [f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise LoadError(
            path, ["the top level must be a mapping of sections: " + ", ".join(SECTIONS)]
        )
    data.pop("__line__", None)
    problems = [
        f"unknown section {k!r} (known: {', '.join(SECTIONS)})" for k in data if k not in SECTIONS
    ]
    rows: list[tuple[str, int, dict[str, Any]]] = []
    for section in SECTIONS:
        items = data.get(section) or []
        if not isinstance(items, list):
            problems.append(f"{section}: expected a list")
            continue
        for item in items:
            if not isinstance(item, dict):
                problems.append(f"{section}: every entry must be a mapping, got {item!r}")
                continue
            line = int(item.pop("__line__", 0))
            for value in item.values():
                if isinstance(value, dict):
                    value.pop("__line__", None)
                if isinstance(value, list):
                    for v in value:
                        if isinstance(v, dict):
                            v.pop("__line__", None)
            rows.append((section, line, item))
    if problems:
        raise LoadError(path, problems)
    return rows


def _read_csv(text: str, path: str) -> list[tuple[str, int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = reader.fieldnames or []
    unknown = [h for h in header if h not in ENTERPRISE_COLUMNS]
    missing = [h for h in ("uscc", "name") if h not in header]
    if unknown or missing:
        raise LoadError(
            path,
            [
                "line 1: enterprise CSV columns are "
                + ", ".join(ENTERPRISE_COLUMNS)
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                + (f"; missing: {', '.join(missing)}" if missing else "")
            ],
        )
    rows = []
    for record in reader:
        item = {k: v for k, v in record.items() if k is not None and v not in (None, "")}
        rows.append(("enterprises", reader.line_num, item))
    return rows


def _message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _check_refs(session: Session, rows: Sequence[_Row], urgencies: Sequence[str]) -> list[str]:
    """References between rows, resolved against the database and the file itself."""
    depts = set(session.scalars(select(Department.code))) | {
        r.item.code for r in rows if r.section == "departments"
    }
    chains = set(session.scalars(select(Chain.code))) | {
        r.item.code for r in rows if r.section == "chains"
    }
    cats = set(session.scalars(select(Category.code))) | {
        r.item.code for r in rows if r.section == "categories"
    }
    problems = []
    seen_depts: set[str] = set(session.scalars(select(Department.code)))
    seen: dict[tuple[str, str], int] = {}
    for r in rows:
        where = f"line {r.line}: {r.section[:-1].replace('_', ' ')}"
        item = r.item
        code = getattr(item, "code", None) or getattr(item, "uscc", None)
        if code is not None:
            if (r.section, code) in seen:
                problems.append(f"{where} {code}: also on line {seen[(r.section, code)]}")
            seen[(r.section, code)] = r.line

        def need(kind: str, value: str | None, known: set[str], _where: str = where) -> None:
            if value is not None and value not in known:
                problems.append(f"{_where}: unknown {kind} {value!r}")

        if isinstance(item, DepartmentIn):
            if item.parent_code is not None and item.parent_code not in seen_depts:
                problems.append(
                    f"{where} {item.code}: parent {item.parent_code!r} is unknown "
                    "(list a parent before its children)"
                )
            seen_depts.add(item.code)
        elif isinstance(item, ChainIn):
            need("department", item.liaison_department, depts)
        elif isinstance(item, CategoryIn):
            if item.urgency not in urgencies:
                problems.append(
                    f"{where} {item.code}: urgency {item.urgency!r} is not one of {', '.join(urgencies)}"
                )
            need("department", item.lead_department, depts)
            for c in item.co_departments:
                need("department", c, depts)
        elif isinstance(item, RoutingRuleIn):
            need("category", item.category, cats)
            need("chain", item.chain, chains)
            need("department", item.department, depts)
            for c in item.co_departments:
                need("department", c, depts)
        elif isinstance(item, EnterpriseIn):
            need("chain", item.chain, chains)
    return problems


def load_text(
    *,
    session: Session,
    text: str,
    path: str,
    urgencies: Sequence[str],
    now: datetime,
) -> Loaded:
    """Check every row, then write them all (upserting by code), or raise LoadError and write nothing."""
    raw = _read_csv(text, path) if path.lower().endswith(".csv") else _read_yaml(text, path)
    problems: list[str] = []
    rows: list[_Row] = []
    for section, line, item in raw:
        try:
            rows.append(_Row(section, line, SECTIONS[section].model_validate(item)))
        except ValidationError as exc:
            label = item.get("code") or item.get("uscc") or ""
            problems.append(
                f"line {line}: {section[:-1].replace('_', ' ')} {label}: {_message(exc)}".replace(
                    "  ", " "
                )
            )
    problems += _check_refs(session, rows, urgencies)
    if problems:
        raise LoadError(path, problems)

    writers: dict[str, Callable[[Any], object]] = {
        "departments": lambda d: service.upsert_department(session=session, data=d, now=now),
        "chains": lambda c: service.upsert_chain(session=session, data=c),
        "categories": lambda c: service.upsert_category(
            session=session, data=c, urgencies=urgencies
        ),
        "routing_rules": lambda r: service.upsert_rule(session=session, data=r),
        "enterprises": lambda e: service.upsert_enterprise(session=session, data=e, now=now),
    }
    result = Loaded()
    for section in SECTIONS:
        for row in rows:
            if row.section == section:
                try:
                    writers[section](row.item)
                except (
                    HuyingError
                ) as exc:  # a check above should have caught it; report, write nothing
                    raise LoadError(path, [f"line {row.line}: {exc.detail}"]) from None
                result.counts[section] = result.counts.get(section, 0) + 1
    return result


def load_file(*, session: Session, path: Path, urgencies: Sequence[str], now: datetime) -> Loaded:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LoadError(str(path), [f"cannot read: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise LoadError(str(path), ["not UTF-8 text"]) from None
    return load_text(session=session, text=text, path=str(path), urgencies=urgencies, now=now)
