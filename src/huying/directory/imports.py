"""Importing enterprises from a spreadsheet (XLSX or CSV): parse, preview line by line, commit.

The console's 企业 page and `POST /api/v1/enterprises/import` share these three steps:

- `parse(name, data)` reads the header row (Chinese or English column names) and the lines
  under it, refusing a file past `MAX_BYTES` or `MAX_ROWS`, of another kind, or without the
  USCC column (`FileRefused`, with its reason said in Chinese).
- `preview(...)` says for each line what a commit would do: 新增, 更新, 无变化, or 错误 with
  each field's error in Chinese. It writes nothing.
- `commit(...)` previews again in the same transaction (the directory may have changed since
  the person looked) and writes every line, or raises `LinesRefused` and writes nothing.
  Each write goes through `directory.service.create_enterprise` / `update_enterprise`, so
  each enterprise gets its own audit entry, and one summary entry names the file.

A column the file lacks never touches a stored value, and neither does an empty cell of an
optional column: an update changes only the non-empty cells of the columns present. A
spreadsheet cannot tell "clear this" from "unknown here", and a partial export must not
erase what the directory knows; a value is cleared on the enterprise's own edit page.
`active` is not a column: an import neither retires nor restores.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.orm import Session

from huying.audit import service as audit
from huying.directory import repository as repo
from huying.directory import service
from huying.directory.models import Enterprise
from huying.directory.schemas import EnterpriseIn, EnterprisePatch
from huying.errors import InvalidInput

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000
# The columns read (any more are ignored) and the size unzipped an XLSX may have: a file of
# MAX_BYTES that unzips to gigabytes is refused before openpyxl reads it.
MAX_COLUMNS = 50
MAX_UNZIPPED = 64 * 1024 * 1024

# Each field, its Chinese column name, and the other names a header may give it.
COLUMNS: dict[str, tuple[str, ...]] = {
    "uscc": ("统一社会信用代码", "uscc", "信用代码", "社会信用代码"),
    "name": ("企业名称", "name", "名称"),
    "chain": ("产业链", "chain", "产业链编码"),
    "grid_code": ("网格编码", "grid_code", "网格"),
    "address": ("地址", "address", "企业地址"),
    "contact_name": ("联系人", "contact_name"),
    "contact_phone": ("联系电话", "contact_phone", "电话"),
}
LABELS = {name: names[0] for name, names in COLUMNS.items()}
_HEADER = {alias.lower(): name for name, names in COLUMNS.items() for alias in names}
# EnterpriseIn's field -> the Enterprise attribute it is stored in.
_ATTRIBUTES = {name: ("chain_code" if name == "chain" else name) for name in COLUMNS}

Status = Literal["created", "updated", "unchanged", "error"]
OUTCOMES = ("created", "updated", "unchanged")
STATUS_LABELS: dict[Status, str] = {
    "created": "新增",
    "updated": "更新",
    "unchanged": "无变化",
    "error": "错误",
}


class FileRefused(InvalidInput):
    """The file as a whole cannot be imported: `reason` (a key) and `message` (Chinese)."""

    def __init__(self, reason: str, message: str, detail: str) -> None:
        super().__init__(detail, field="file", reason=reason, message=message)
        self.reason = reason
        self.message = message


class LinesRefused(InvalidInput):
    """Some lines are bad: nothing was imported. `lines` lists each bad line's errors."""

    def __init__(self, preview: Preview) -> None:
        bad = [c for c in preview.lines if c.status == "error"]
        super().__init__(
            f"{len(bad)} line(s) of the file are invalid; nothing was imported",
            field="file",
            lines=[c.as_json() for c in bad],
            message=f"文件中有 {len(bad)} 行有误，没有导入任何企业。请修改后重新上传。",
        )
        self.preview = preview


@dataclass(frozen=True)
class Line:
    """One line of the file: its line number (the header is line 1) and its cells, by field,
    for the columns the file has (an empty cell is "")."""

    number: int
    values: Mapping[str, str]


@dataclass(frozen=True)
class Sheet:
    """A parsed file: its name and SHA-256, the known columns it has (in its order), the
    header cells ignored, and its lines."""

    name: str
    sha256: str
    columns: tuple[str, ...]
    ignored: tuple[str, ...]
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class Checked:
    """What a commit would do with one line. `changes` holds the fields it would write
    (all given ones for a new enterprise); `errors` each bad field's error in Chinese."""

    number: int
    uscc: str
    name: str
    status: Status
    changes: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    def as_json(self) -> dict[str, Any]:
        return {
            "line": self.number,
            "uscc": self.uscc,
            "name": self.name,
            "status": self.status,
            "changes": self.changes,
            "errors": self.errors,
        }


@dataclass(frozen=True)
class Preview:
    lines: tuple[Checked, ...]

    @property
    def ok(self) -> bool:
        return all(c.status != "error" for c in self.lines)

    @property
    def counts(self) -> dict[Status, int]:
        counted: dict[Status, int] = {s: 0 for s in STATUS_LABELS}
        for c in self.lines:
            counted[c.status] += 1
        return counted


@dataclass(frozen=True)
class Summary:
    created: int
    updated: int
    unchanged: int
    file: str
    sha256: str

    def as_json(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "file": self.file,
            "sha256": self.sha256,
        }


# --- parse ---------------------------------------------------------------------------


def parse(name: str, data: bytes, *, max_bytes: int = MAX_BYTES, max_rows: int = MAX_ROWS) -> Sheet:
    """The file's header and lines. XLSX by its content (a ZIP), anything else as CSV:
    UTF-8 with or without a BOM, else GB18030 (as Chinese Excel saves CSV)."""
    if len(data) > max_bytes:
        raise FileRefused(
            "too_large",
            f"文件超过 {_size(max_bytes)} 上限，请分成几个文件导入。",
            f"the file is larger than {max_bytes} bytes",
        )
    if not data.strip():
        raise FileRefused("empty", "文件是空的。", "the file is empty")
    if data.startswith(b"PK\x03\x04"):
        rows = _xlsx_rows(data)
    elif data.startswith(b"\xd0\xcf\x11\xe0"):  # the old binary .xls
        raise FileRefused(
            "xls", "不支持旧版 .xls 文件，请另存为 .xlsx 或 CSV 后上传。", "XLS is not read"
        )
    else:
        rows = _csv_rows(data)
    return _sheet(name, hashlib.sha256(data).hexdigest(), rows, max_rows)


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:g} MB" if n >= 1024 * 1024 else f"{n / 1024:g} KB"


def _csv_rows(data: bytes) -> Iterator[list[str]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        break
    else:
        raise FileRefused(
            "encoding",
            "无法识别文件的编码，请另存为 UTF-8 或 GB18030 编码的 CSV，或 .xlsx 文件。",
            "the CSV is neither UTF-8 nor GB18030",
        )
    if "\x00" in text:
        raise FileRefused("binary", "文件不是 CSV 或 .xlsx 表格。", "the file holds NUL bytes")
    try:
        yield from csv.reader(io.StringIO(text, newline=""))
    except csv.Error as exc:
        raise FileRefused("csv", "CSV 文件格式有误，无法读取。", f"CSV: {exc}") from None


def _xlsx_rows(data: bytes) -> Iterator[list[str]]:
    from openpyxl import load_workbook  # type: ignore[import-untyped]  # no stubs

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            unzipped = sum(i.file_size for i in z.infolist())
        if unzipped > MAX_UNZIPPED:
            raise FileRefused(
                "too_large", "表格内容过大，请分成几个文件导入。", "the XLSX unzips too large"
            )
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except FileRefused:
        raise
    except Exception:  # openpyxl raises many kinds for a damaged or foreign file
        raise FileRefused(
            "xlsx", "无法读取该 .xlsx 文件，请确认它是 Excel 表格。", "not a readable XLSX"
        ) from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            return
        for row in sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True):
            yield [_cell(v) for v in row]
    finally:
        book.close()


def _cell(value: object) -> str:
    """A spreadsheet cell as text: a whole number without ".0" (a grid code or a phone number
    typed as a number), a date as YYYY-MM-DD."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else str(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _sheet(name: str, sha256: str, rows: Iterator[list[str]], max_rows: int) -> Sheet:
    header: list[str] | None = None
    number = 0
    for number, row in enumerate(rows, start=1):  # noqa: B007 - the header's line number
        if any(c.strip() for c in row):
            header = row[:MAX_COLUMNS]
            break
    if header is None:
        raise FileRefused("no_header", "文件中没有表头行。", "the file has no header row")
    where: dict[str, int] = {}
    ignored: list[str] = []
    for index, cell in enumerate(header):
        text = "".join(cell.split()).lower()
        known = _HEADER.get(text)
        if known is None:
            if text:
                ignored.append(cell.strip())
            continue
        if known in where:
            raise FileRefused(
                "duplicate_column",
                f"表头中“{LABELS[known]}”列出现了两次。",
                f"column {known} appears twice",
            )
        where[known] = index
    if "uscc" not in where:
        raise FileRefused(
            "no_uscc",
            "表头中缺少“统一社会信用代码”列（也可写作 uscc）。",
            "the header has no uscc column",
        )
    lines: list[Line] = []
    for n, row in enumerate(rows, start=number + 1):
        if not any(c.strip() for c in row):
            continue
        if len(lines) >= max_rows:
            raise FileRefused(
                "too_many_rows",
                f"文件超过 {max_rows} 行上限，请分成几个文件导入。",
                f"the file has more than {max_rows} lines",
            )
        cells = {f: (row[i].strip() if i < len(row) else "") for f, i in where.items()}
        lines.append(Line(n, cells))
    columns = tuple(sorted(where, key=where.__getitem__))
    return Sheet(name, sha256, columns, tuple(ignored), tuple(lines))


# --- preview ---------------------------------------------------------------------------


def preview(*, session: Session, sheet: Sheet, grid_code_pattern: str) -> Preview:
    """Each line checked against the directory as it is now (and the lines above it: a USCC
    twice in one file is an error on its second line). Reads only."""
    seen: dict[str, int] = {}
    chains: dict[str, bool | None] = {}  # code -> active, None: no such chain
    checked = []
    for line in sheet.lines:
        result = _check(session, line, grid_code_pattern, chains)
        if result.status != "error" and result.uscc in seen:
            result = Checked(
                line.number,
                result.uscc,
                result.name,
                "error",
                errors={"uscc": f"与第 {seen[result.uscc]} 行的统一社会信用代码重复"},
            )
        seen.setdefault(result.uscc, line.number)
        checked.append(result)
    return Preview(tuple(checked))


def _check(
    session: Session, line: Line, grid_code_pattern: str, chains: dict[str, bool | None]
) -> Checked:
    given = {f: v for f, v in line.values.items() if v}  # an empty cell keeps what is stored
    raw_uscc = line.values.get("uscc", "")
    uscc = raw_uscc.upper()
    if not uscc:
        return Checked(line.number, "", given.get("name", ""), "error", errors=_required("uscc"))
    existing = repo.enterprise(session, uscc)
    stored = _stored(existing) if existing is not None else {}
    try:
        data = EnterpriseIn.model_validate({**stored, **given})
    except ValidationError as exc:
        return Checked(line.number, raw_uscc, given.get("name", ""), "error", errors=_said(exc))
    errors: dict[str, str] = {}
    if "chain" in given and data.chain is not None:
        if data.chain not in chains:
            found = repo.chain(session, data.chain)
            chains[data.chain] = None if found is None else found.active
        state = chains[data.chain]
        if state is None:
            errors["chain"] = f"产业链“{data.chain}”不存在"
        elif not state and data.chain != stored.get("chain"):  # a retired chain is kept, not chosen
            errors["chain"] = f"产业链“{data.chain}”已停用"
    grid = data.grid_code if "grid_code" in given else None
    if grid is not None and service.grid_code_problem(grid, pattern=grid_code_pattern):
        errors["grid_code"] = f"网格编码“{data.grid_code}”不符合本区网格编码规则"
    if errors:
        return Checked(line.number, data.uscc, data.name, "error", errors=errors)
    values = data.model_dump()
    if existing is None:
        changes = {f: str(values[f]) for f in given if f != "uscc"}
        return Checked(line.number, data.uscc, data.name, "created", changes=changes)
    changes = {f: str(values[f]) for f in given if f != "uscc" and values[f] != stored.get(f)}
    status: Status = "updated" if changes else "unchanged"
    return Checked(line.number, data.uscc, data.name, status, changes=changes)


def _stored(e: Enterprise) -> dict[str, Any]:
    """The stored enterprise's fields, those that hold a value."""
    values = {f: getattr(e, attribute) for f, attribute in _ATTRIBUTES.items()}
    return {f: v for f, v in values.items() if v is not None and v != ""}


def _required(name: str) -> dict[str, str]:
    return {name: f"请填写{LABELS[name]}"}


_PROBLEMS = {
    "missing": "请填写{f}",
    "string_too_short": "请填写{f}",
    "string_too_long": "{f}过长",
    "string_pattern_mismatch": "{f}只能由字母、数字组成",
}


def _said(exc: ValidationError) -> dict[str, str]:
    """Pydantic's errors as each column's error in Chinese."""
    said: dict[str, str] = {}
    for e in exc.errors():
        name = str(e["loc"][0]) if e["loc"] else "name"
        label = LABELS.get(name, name)
        if name == "uscc" and e["type"] == "value_error":
            message = "统一社会信用代码无效，请核对（应为 18 位，且校验位正确）"
        elif name == "name" and e["type"] == "missing":
            message = "新增企业须填写企业名称"
        else:
            message = _PROBLEMS.get(e["type"], "{f}格式不正确").format(f=label)
        said.setdefault(name, message)
    return said


# --- commit ----------------------------------------------------------------------------


def commit(
    *, session: Session, sheet: Sheet, grid_code_pattern: str, actor: str, now: datetime
) -> Summary:
    """Write every line of the file, each through the directory's own create or update (and
    so its own audit entry), then one summary entry `enterprise.import`. Checked again here,
    in this transaction: any bad line raises LinesRefused before anything is written."""
    checked = preview(session=session, sheet=sheet, grid_code_pattern=grid_code_pattern)
    if not checked.ok:
        raise LinesRefused(checked)
    for line, result in zip(sheet.lines, checked.lines, strict=True):
        if result.status == "created":
            given = {f: v for f, v in line.values.items() if v}
            service.create_enterprise(
                session=session,
                data=EnterpriseIn.model_validate(given),
                grid_code_pattern=grid_code_pattern,
                actor=actor,
                now=now,
            )
        elif result.status == "updated":
            service.update_enterprise(
                session=session,
                uscc=result.uscc,
                changes=EnterprisePatch.model_validate(result.changes),
                grid_code_pattern=grid_code_pattern,
                actor=actor,
                now=now,
            )
    counts = checked.counts
    summary = Summary(
        created=counts["created"],
        updated=counts["updated"],
        unchanged=counts["unchanged"],
        file=sheet.name,
        sha256=sheet.sha256,
    )
    audit.record(
        session,
        actor=actor,
        action="enterprise.import",
        target_type="import",
        target_id=sheet.name[:100] or "-",
        before=None,
        after=summary.as_json(),
        now=now,
    )
    return summary


def bad_lines(preview: Preview) -> Sequence[Checked]:
    return [c for c in preview.lines if c.status == "error"]
