"""The enterprise import: parsing CSV (UTF-8, BOM, GB18030) and XLSX with Chinese or English
headers, each line's preview, and the commit of all lines or none."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook  # type: ignore[import-untyped]
from sqlalchemy import select

from huying.audit.models import AuditEntry
from huying.directory import imports
from huying.directory.models import Chain, Enterprise
from huying.runtime import Runtime
from tests.conftest import USCC_A, USCC_B, World

NEW = "91310000MA1FL8TQ36"
PATTERN = "^[0-9]{15}$"


def csv_bytes(text: str, encoding: str = "utf-8") -> bytes:
    return text.encode(encoding)


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


HEADER_ZH = "统一社会信用代码,企业名称,产业链,网格编码,联系人\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_in_each_encoding_chinese_excel_writes(encoding: str) -> None:
    data = csv_bytes(
        HEADER_ZH + f"{NEW},上海新企业有限公司,display,440112012001002,张三\n", encoding
    )
    sheet = imports.parse("企业.csv", data)
    assert sheet.columns == ("uscc", "name", "chain", "grid_code", "contact_name")
    assert [dict(line.values) for line in sheet.lines] == [
        {
            "uscc": NEW,
            "name": "上海新企业有限公司",
            "chain": "display",
            "grid_code": "440112012001002",
            "contact_name": "张三",
        }
    ]
    assert sheet.lines[0].number == 2


def test_xlsx_with_english_headers_numbers_as_text_and_blank_lines_skipped() -> None:
    data = xlsx_bytes(
        [
            ["USCC", "Name", "grid_code", "序号"],
            [NEW, "新企业", 440112012001002, 1],
            [None, None, None, None],
            [USCC_A, "北京示例", None, 2],
        ]
    )
    sheet = imports.parse("e.xlsx", data)
    assert sheet.columns == ("uscc", "name", "grid_code") and sheet.ignored == ("序号",)
    assert [line.number for line in sheet.lines] == [2, 4]
    assert sheet.lines[0].values["grid_code"] == "440112012001002"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"name\nx\n", "no_uscc"),
        (b"", "empty"),
        (b"\xd0\xcf\x11\xe0rest", "xls"),
        (b"PK\x03\x04not a zip", "xlsx"),
        (b"uscc,uscc\n", "duplicate_column"),
        (bytes([0xFF, 0xFE, 0x81, 0x30]) * 3, "encoding"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_in_chinese(data: bytes, reason: str) -> None:
    with pytest.raises(imports.FileRefused) as refused:
        imports.parse("f.csv", data)
    assert refused.value.reason == reason and refused.value.message


def test_size_and_line_limits() -> None:
    lines = "uscc\n" + "".join(f"{NEW}\n" for _ in range(4))
    with pytest.raises(imports.FileRefused) as refused:
        imports.parse("f.csv", lines.encode(), max_rows=3)
    assert refused.value.reason == "too_many_rows" and "3 行" in refused.value.message
    with pytest.raises(imports.FileRefused) as refused:
        imports.parse("f.csv", lines.encode(), max_bytes=20)
    assert refused.value.reason == "too_large"
    assert imports.MAX_BYTES == 2 * 1024 * 1024 and imports.MAX_ROWS == 5000
    assert len(imports.parse("f.csv", lines.encode(), max_rows=4).lines) == 4


def test_preview_says_each_lines_outcome(rt: Runtime, world: World) -> None:
    text = (
        "统一社会信用代码,企业名称,产业链,网格编码\n"
        f"{NEW},新企业,display,440112012001002\n"  # created
        f"{USCC_A},北京示例科技有限公司,display,440112012001001\n"  # as stored
        f"{USCC_B},乐金显示（新名）,,\n"  # renamed; empty cells keep the stored values
        "91110000600037341X,坏代码,,\n"  # bad check character
        f"{NEW},重复,,\n"  # twice in the file
        "91440300MA5FUTGB83,无产业链,nochain,12\n"  # unknown chain, bad grid code
    )
    with rt.transaction() as s:
        checked = imports.preview(
            session=s, sheet=imports.parse("f.csv", text.encode()), grid_code_pattern=PATTERN
        )
    assert [c.status for c in checked.lines] == [
        "created",
        "unchanged",
        "updated",
        "error",
        "error",
        "error",
    ]
    assert checked.lines[2].changes == {"name": "乐金显示（新名）"}
    assert "统一社会信用代码无效" in checked.lines[3].errors["uscc"]
    assert checked.lines[4].errors == {"uscc": "与第 2 行的统一社会信用代码重复"}
    assert set(checked.lines[5].errors) == {"chain", "grid_code"}
    assert not checked.ok and checked.counts["error"] == 3


def enterprises(rt: Runtime) -> dict[str, tuple[str, str | None, str | None, str]]:
    with rt.transaction() as s:
        return {
            e.uscc: (e.name, e.chain_code, e.grid_code, e.contact_name)
            for e in s.scalars(select(Enterprise))
        }


def test_one_bad_line_imports_nothing(rt: Runtime, world: World) -> None:
    before = enterprises(rt)
    text = f"uscc,name\n{NEW},新企业\n{USCC_A},改名\n91110000600037341X,坏\n"
    with rt.transaction() as s, pytest.raises(imports.LinesRefused) as refused:
        imports.commit(
            session=s,
            sheet=imports.parse("f.csv", text.encode()),
            grid_code_pattern=PATTERN,
            actor="user:admin",
            now=rt.now(),
        )
    assert [line["line"] for line in refused.value.extra["lines"]] == [4]
    assert enterprises(rt) == before


def test_commit_writes_each_line_audited_and_a_summary(rt: Runtime, world: World) -> None:
    # No name column: USCC_A keeps its name; an empty contact keeps the stored one.
    text = f"uscc,grid_code,contact_name\n{USCC_A},440112012001009,\n"
    data = text.encode()
    with rt.transaction() as s:
        summary = imports.commit(
            session=s,
            sheet=imports.parse("更新.csv", data),
            grid_code_pattern=PATTERN,
            actor="user:admin",
            now=rt.now(),
        )
    assert (summary.created, summary.updated, summary.unchanged) == (0, 1, 0)
    assert enterprises(rt)[USCC_A] == ("北京示例科技有限公司", "display", "440112012001009", "")
    with rt.transaction() as s:
        rows = s.scalars(
            select(AuditEntry).where(AuditEntry.actor == "user:admin").order_by(AuditEntry.id)
        ).all()
        said = [(e.action, e.target_type, e.target_id, e.after) for e in rows]
    assert said[0][:3] == ("enterprise.update", "enterprise", USCC_A)
    assert said[1][:3] == ("enterprise.import", "import", "更新.csv")
    after = said[1][3]
    assert after is not None and after["updated"] == 1 and after["file"] == "更新.csv"
    import hashlib

    assert after["sha256"] == hashlib.sha256(data).hexdigest()


def test_an_import_creates_with_the_given_columns(rt: Runtime, world: World) -> None:
    text = f"统一社会信用代码,企业名称,地址\n{NEW},新企业,广州市黄埔区\n"
    with rt.transaction() as s:
        summary = imports.commit(
            session=s,
            sheet=imports.parse("n.csv", text.encode("gb18030")),
            grid_code_pattern=PATTERN,
            actor="user:admin",
            now=rt.now(),
        )
        e = s.scalar(select(Enterprise).where(Enterprise.uscc == NEW))
        assert e is not None and (e.name, e.address, e.active) == ("新企业", "广州市黄埔区", True)
    assert summary.created == 1


def test_a_retired_chain_is_refused_for_a_new_choice_and_kept_where_it_is(
    rt: Runtime, world: World
) -> None:
    """Retiring `display`: a line may not newly choose it (the commit would refuse it too),
    while an enterprise already of that chain keeps it through an import."""
    with rt.transaction() as s:
        chain = s.scalars(select(Chain).where(Chain.code == "display")).one()
        chain.active = False
    text = (
        "uscc,name,chain\n"
        f"{NEW},新企业,display\n"  # newly chosen: refused
        f"{USCC_A},北京示例科技有限公司,display\n"  # already of it: unchanged
    )
    with rt.transaction() as s:
        checked = imports.preview(
            session=s, sheet=imports.parse("f.csv", text.encode()), grid_code_pattern=PATTERN
        )
    assert [c.status for c in checked.lines] == ["error", "unchanged"]
    assert checked.lines[0].errors == {"chain": "产业链“display”已停用"}
