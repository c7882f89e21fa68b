"""`huying load FILE`: the directory from YAML (every kind) or CSV (enterprises).

Every entry is checked first, against the database and the rest of the file: its fields, the
codes it refers to, and duplicates. A file with any problem is reported whole, one problem a
line ("line N: field: message", in line order), and nothing of it is written.

Loading is an upsert by code: only the fields an entry gives are written, so a CSV column the
file lacks or a key a YAML entry leaves out never erases a stored value (an empty CSV cell,
or `null` in YAML, clears one). The result counts, per kind, what was created, updated and
left unchanged.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from huying.directory import service
from huying.directory.grids import DEFAULT_GRID_CODE_PATTERN
from huying.directory.schemas import (
    CategoryIn,
    ChainIn,
    DepartmentIn,
    EnterpriseIn,
    RoutingRuleIn,
)
from huying.errors import HuyingError, validation_message

# The sections of a YAML file, in the order they are written (a kind before what refers to it).
SECTIONS: dict[str, type[BaseModel]] = {
    "departments": DepartmentIn,
    "chains": ChainIn,
    "categories": CategoryIn,
    "routing_rules": RoutingRuleIn,
    "enterprises": EnterpriseIn,
}
# What one entry of each section is called in a message.
KINDS = {
    "departments": "department",
    "chains": "chain",
    "categories": "category",
    "routing_rules": "routing rule",
    "enterprises": "enterprise",
}
# The fields that name an entry of another section (or of the same one).
REFERENCES: dict[str, tuple[tuple[str, str], ...]] = {
    "departments": (("parent_code", "departments"),),
    "chains": (("liaison_department", "departments"),),
    "categories": (("lead_department", "departments"), ("co_departments", "departments")),
    "routing_rules": (
        ("category", "categories"),
        ("chain", "chains"),
        ("department", "departments"),
        ("co_departments", "departments"),
    ),
    "enterprises": (("chain", "chains"),),
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
    """What a load did, per section (in SECTIONS order): created, updated, unchanged."""

    outcomes: dict[str, Counter[service.Outcome]] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        """Entries loaded per section, whatever became of them."""
        return {section: sum(c.values()) for section, c in self.outcomes.items()}

    def summary(self) -> str:
        """E.g. "enterprises: 1 created, 2 updated, 3 unchanged"; kinds joined by "; "."""
        parts = [
            f"{section.replace('_', ' ')}: "
            + ", ".join(f"{counter[o]} {o}" for o in service.OUTCOMES)
            for section, counter in self.outcomes.items()
        ]
        return "; ".join(parts) or "nothing to load"


@dataclass(frozen=True)
class _Problem:
    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: "
        return where + (f"{self.field}: " if self.field else "") + self.message


@dataclass
class _Entry:
    """One entry of the file: its raw fields, where they stand, and its model once valid."""

    section: str
    line: int
    raw: dict[str, Any]
    field_lines: dict[str, int] = field(default_factory=dict)
    model: BaseModel | None = None
    bad_fields: set[str] = field(default_factory=set)

    def line_of(self, name: str) -> int:
        return self.field_lines.get(name, self.line)

    def value(self, name: str) -> Any:
        """The field's value: from the model when the entry is valid, else from the raw entry
        (None when absent or itself invalid), so that a bad field does not hide a problem of
        another one."""
        if self.model is not None:
            return getattr(self.model, name, None)
        if name in self.bad_fields:
            return None
        return _tidy(self.raw.get(name))


def _tidy(value: Any) -> Any:
    """A raw value as the schema would keep it, enough to look it up: text stripped."""
    if isinstance(value, str):
        return None if "\x00" in value else value.strip()
    if isinstance(value, list):
        return [v.strip() for v in value if isinstance(v, str) and "\x00" not in v]
    return None


# --- reading ---------------------------------------------------------------------


class _Mapping(dict[Any, Any]):
    """A YAML mapping that remembers its line and the line of each of its keys."""

    def __init__(self, items: dict[Any, Any], line: int, key_lines: dict[str, int]) -> None:
        super().__init__(items)
        self.line = line
        self.key_lines = key_lines


class _Sequence(list[Any]):
    """A YAML sequence that remembers the line of each of its items."""

    def __init__(self, items: list[Any], lines: list[int]) -> None:
        super().__init__(items)
        self.lines = lines


class _LineLoader(yaml.SafeLoader):
    """Pure Python: what a document that is not valid YAML is explained by."""


# libyaml's parser, where PyYAML was built with it (its wheels are): 7× faster on the tests'
# directory (1.0 against 7.7 ms). Its messages are terser and may name another line, so a
# document it refuses is read again by `_LineLoader` for the problem the user sees.
_FastLineLoader: Any = _LineLoader
if yaml.__with_libyaml__:

    class _CLineLoader(yaml.CSafeLoader):
        pass

    _FastLineLoader = _CLineLoader


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> _Mapping:
    items = loader.construct_mapping(node, deep=True)
    key_lines = {
        str(key.value): key.start_mark.line + 1
        for key, _ in node.value
        if isinstance(key, yaml.ScalarNode)
    }
    return _Mapping(items, node.start_mark.line + 1, key_lines)


def _construct_sequence(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> _Sequence:
    items = loader.construct_sequence(node, deep=True)
    return _Sequence(items, [item.start_mark.line + 1 for item in node.value])


for _loader in (_LineLoader, _FastLineLoader):  # the same twice without libyaml
    _loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
    _loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def _read_yaml(text: str) -> tuple[list[_Entry], list[_Problem]]:
    try:
        try:
            data = yaml.load(text, Loader=_FastLineLoader)
        except yaml.YAMLError:
            data = yaml.load(text, Loader=_LineLoader)  # raises again, with its own words
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        return [], [_Problem(mark.line + 1 if mark else 1, None, f"not valid YAML: {reason}")]
    if not isinstance(data, _Mapping):
        expected = "expected a mapping of sections: " + ", ".join(SECTIONS)
        return [], [_Problem(1, None, expected)]
    problems = [
        _Problem(
            data.key_lines.get(str(k), 1),
            str(k),
            "unknown section (the sections are " + ", ".join(SECTIONS) + ")",
        )
        for k in data
        if k not in SECTIONS
    ]
    entries: list[_Entry] = []
    for section in SECTIONS:
        items = data.get(section)
        if items is None:
            continue
        if not isinstance(items, _Sequence):
            problems.append(
                _Problem(data.key_lines[section], section, "expected a list of entries")
            )
            continue
        for line, item in zip(items.lines, items, strict=True):
            if not isinstance(item, _Mapping):
                problems.append(
                    _Problem(line, section, f"each entry must be a mapping, not {item!r}")
                )
                continue
            entries.append(_Entry(section, item.line, dict(item), dict(item.key_lines)))
    return entries, problems


def _read_csv(text: str) -> tuple[list[_Entry], list[_Problem]]:
    """Enterprises, one a row. A column the header lacks is left alone; an empty cell clears
    its field (the schema's default), or is an error where the field is required."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in next(reader, [])]
    columns = ", ".join(ENTERPRISE_COLUMNS)
    problems = [
        _Problem(1, "header", f"unknown column {h!r} (the columns are {columns})")
        for h in header
        if h not in ENTERPRISE_COLUMNS
    ]
    problems += [
        _Problem(1, "header", f"column {h!r} appears more than once")
        for h, n in Counter(header).items()
        if n > 1
    ]
    problems += [
        _Problem(1, "header", f"the required column {h!r} is missing")
        for h in ("uscc", "name")
        if h not in header
    ]
    if problems:
        return [], problems
    entries: list[_Entry] = []
    previous_end = reader.line_num
    for cells in reader:
        line, previous_end = previous_end + 1, reader.line_num
        if not any(c.strip() for c in cells):
            continue  # a blank line, or a row of empty cells a spreadsheet left behind
        if len(cells) != len(header):
            problems.append(
                _Problem(
                    line,
                    None,
                    f"the row has {len(cells)} cells but the header has {len(header)} columns",
                )
            )
            continue
        raw = {
            name: cell if cell != "" else _blank(name)
            for name, cell in zip(header, cells, strict=True)
        }
        entries.append(_Entry("enterprises", line, raw))
    return entries, problems


def _blank(column: str) -> Any:
    """What an empty cell means: the field's default, or "" where the field is required (so
    that the schema reports it)."""
    info = EnterpriseIn.model_fields[column]
    return "" if info.is_required() else info.default


# --- checking ----------------------------------------------------------------------


def _validate(entry: _Entry) -> list[_Problem]:
    try:
        entry.model = SECTIONS[entry.section].model_validate(entry.raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            message = validation_message(err)
            if loc:
                entry.bad_fields.add(loc[0])
                problems.append(_Problem(entry.line_of(loc[0]), ".".join(loc), message))
            else:  # about the entry as a whole
                problems.append(_Problem(entry.line, KINDS[entry.section], message))
        return problems
    return []


def _check_file(
    session: Session,
    entries: Sequence[_Entry],
    *,
    urgencies: Sequence[str],
    grid_code_pattern: str,
) -> list[_Problem]:
    """What one entry cannot tell alone: duplicates, references (to the database or to the
    file), urgencies and grid codes."""
    stored = service.stored_codes(session=session)
    in_file: dict[str, dict[str, int]] = {section: {} for section in stored}
    for entry in entries:
        code = entry.value("code") if entry.section in in_file else None
        if isinstance(code, str) and code:
            in_file[entry.section].setdefault(code, entry.line)
    grids = service.grid_codes(grid_code_pattern)
    problems = _duplicates(entries)
    for entry in entries:
        for name, target in REFERENCES[entry.section]:
            value = entry.value(name)
            for code in value if isinstance(value, list) else [value]:
                if code and (
                    problem := _reference_problem(entry, name, code, target, stored, in_file)
                ):
                    problems.append(_Problem(entry.line_of(name), name, problem))
        urgency = entry.value("urgency") if entry.section == "categories" else None
        if isinstance(urgency, str) and urgency not in urgencies:
            message = f"{urgency!r} is not one of {', '.join(urgencies)}"
            problems.append(_Problem(entry.line_of("urgency"), "urgency", message))
        for section, name, check in (
            ("enterprises", "grid_code", grids.code_problem),
            ("routing_rules", "grid_prefix", grids.prefix_problem),
        ):
            grid = entry.value(name) if entry.section == section else None
            if isinstance(grid, str) and grid and (problem := check(grid)):
                problems.append(_Problem(entry.line_of(name), name, problem))
    return problems


def _duplicates(entries: Sequence[_Entry]) -> list[_Problem]:
    """An entry that names the same thing as an earlier one (the later would overwrite it)."""
    problems: list[_Problem] = []
    first: dict[tuple[str, Any], _Entry] = {}
    for entry in entries:
        if entry.section == "routing_rules":
            name = KINDS[entry.section]
            key: Any = tuple(entry.value(f) for f in ("category", "grid_prefix", "chain"))
            if key == (None, None, None):
                continue
        else:
            name = "uscc" if entry.section == "enterprises" else "code"
            key = entry.value(name)
            if not isinstance(key, str) or not key:
                continue
            key = key.upper() if name == "uscc" else key
        earlier = first.setdefault((entry.section, key), entry).line
        if first[(entry.section, key)] is entry:
            continue
        if entry.section == "routing_rules":
            message = f"the same category, grid_prefix and chain as line {earlier}"
        else:
            message = f"{KINDS[entry.section]} {key!r} is also on line {earlier}"
        problems.append(_Problem(entry.line_of(name), name, message))
    return problems


def _reference_problem(
    entry: _Entry,
    name: str,
    code: str,
    target: str,
    stored: dict[str, set[str]],
    in_file: dict[str, dict[str, int]],
) -> str | None:
    """Why `code`, given in field `name` for a `target` entry, names nothing, or None."""
    if name == "parent_code" and code == entry.value("code"):
        return "a department cannot be its own parent"
    if code in stored[target]:
        return None
    defined_on = in_file[target].get(code)
    if defined_on is None:
        return f"unknown {KINDS[target]} {code!r}"
    if name == "parent_code" and defined_on > entry.line:  # departments are written in order
        return f"department {code!r} comes later, on line {defined_on}: list a parent first"
    return None


# --- loading -----------------------------------------------------------------------


def load_text(
    *,
    session: Session,
    text: str,
    path: str,
    urgencies: Sequence[str],
    now: datetime,
    grid_code_pattern: str = DEFAULT_GRID_CODE_PATTERN,
    actor: str = "cli",
) -> Loaded:
    """Check every entry, then write them all, or raise LoadError and write nothing. Each
    creation and change is audited as `actor`'s ("<type>.create", "<type>.update"); an
    entry loaded as it is stored writes no audit entry."""
    entries, problems = _read_csv(text) if path.lower().endswith(".csv") else _read_yaml(text)
    for entry in entries:
        problems += _validate(entry)
    problems += _check_file(
        session, entries, urgencies=urgencies, grid_code_pattern=grid_code_pattern
    )
    if problems:
        ordered = sorted(problems, key=lambda p: p.line)  # stable: a line's own order stays
        raise LoadError(path, [str(p) for p in ordered])

    cli = service.Audit(actor, now)  # each write audited in this same transaction
    writers: dict[str, Callable[[Any], service.Saved[Any]]] = {
        "departments": lambda d: service.save_department(
            session=session, data=d, now=now, audit_as=cli
        ),
        "chains": lambda c: service.save_chain(session=session, data=c, audit_as=cli),
        "categories": lambda c: service.save_category(
            session=session, data=c, urgencies=urgencies, audit_as=cli
        ),
        "routing_rules": lambda r: service.save_rule(
            session=session, data=r, grid_code_pattern=grid_code_pattern, audit_as=cli
        ),
        "enterprises": lambda e: service.save_enterprise(
            session=session, data=e, now=now, grid_code_pattern=grid_code_pattern, audit_as=cli
        ),
    }
    result = Loaded()
    for section in SECTIONS:
        for entry in entries:
            if entry.section != section:
                continue
            try:
                saved = writers[section](entry.model)
            except HuyingError as exc:  # a check above should have caught it; write nothing
                raise LoadError(path, [f"line {entry.line}: {exc.detail}"]) from None
            result.outcomes.setdefault(section, Counter())[saved.outcome] += 1
    return result


def load_file(
    *,
    session: Session,
    path: Path,
    urgencies: Sequence[str],
    now: datetime,
    grid_code_pattern: str = DEFAULT_GRID_CODE_PATTERN,
    actor: str = "cli",
) -> Loaded:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LoadError(str(path), [f"cannot read: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise LoadError(str(path), ["not UTF-8 text"]) from None
    return load_text(
        session=session,
        text=text,
        path=str(path),
        urgencies=urgencies,
        now=now,
        grid_code_pattern=grid_code_pattern,
        actor=actor,
    )
