"""CSV and XLSX carry the JSON table's numbers under Chinese headers: parsed back, they match."""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import load_workbook  # type: ignore[import-untyped]  # no stubs in the dev deps

from tests.reports.conftest import Scenario

NOVEMBER = {"from": "2026-11-01", "to": "2026-12-01"}
# header → the JSON field it shows (escalations: the level)
FIELDS = [
    ("受理数", "received"),
    ("派单数", "dispatched"),
    ("应签收数", "sign_due"),
    ("签收数", "signed"),
    ("按时签收数", "signed_on_time"),
    ("答复数", "replied"),
    ("按期答复数", "replied_on_time"),
    ("办结数", "closed"),
    ("解决数", "resolved"),
    ("企业确认解决数", "resolved_confirmed"),
    ("部门自报解决数", "resolved_claimed"),
    ("评价数", "rated"),
    ("满意数", "satisfied"),
    ("重办数", "reopened"),
    ("退单数", "returned"),
    ("当前超期数", "overdue_now"),
    ("任务数", "tasks"),
    ("任务应答复数", "tasks_due"),
    ("任务答复数", "tasks_replied"),
    ("任务按时答复数", "tasks_on_time"),
    ("任务超期未答复数", "tasks_overdue_open"),
    ("升级至1级数", "escalations.1"),
    ("升级至2级数", "escalations.2"),
    ("升级至3级数", "escalations.3"),
    ("平均签收用时(工作小时)", "sign_hours_mean"),
    ("签收用时P90(工作小时)", "sign_hours_p90"),
    ("平均答复用时(工作小时)", "reply_hours_mean"),
    ("答复用时P90(工作小时)", "reply_hours_p90"),
    # each rate's header states its division, by the columns it divides
    ("响应率(按时签收数÷应签收数)", "response_rate"),
    ("按期办结率(按期答复数÷答复数)", "on_time_rate"),
    ("解决率(解决数÷办结数)", "resolution_rate"),
    ("满意率(满意数÷评价数)", "satisfaction_rate"),
    ("协办按时率(任务按时答复数÷任务应答复数)", "task_on_time_rate"),
]
RESPONSE = "响应率(按时签收数÷应签收数)"


def value(row: dict[str, Any], field: str) -> Any:
    if field.startswith("escalations."):
        return row["escalations"][field.split(".")[1]]
    return row[field]


def as_table(rows: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    """The JSON rows as the exports should show them."""
    return [
        {f"{label}编码": r["key"], label: r["name"], **{h: value(r, f) for h, f in FIELDS}}
        for r in rows
    ]


def number(text: str) -> Any:
    if text == "":
        return None
    return float(text) if "." in text else int(text)


def test_csv_has_the_json_numbers(scenario: Scenario) -> None:
    rows = scenario.report(**NOVEMBER, group_by="department").json()["rows"]
    r = scenario.report(**NOVEMBER, group_by="department", format="csv")
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == (
        'attachment; filename="rates-department-20261101-20261130.csv"'
    )
    assert r.content.startswith("\ufeff".encode())  # so that Excel reads UTF-8
    parsed = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    header, body = parsed[0], parsed[1:]
    assert header[:7] == [
        "部门编码",
        "部门",
        "受理数",
        "派单数",
        "应签收数",
        "签收数",
        "按时签收数",
    ]
    assert header[-4:] == [h for h, f in FIELDS[-4:]]
    table = [
        {
            h: (cell or None) if h in ("部门编码", "部门") else number(cell)
            for h, cell in zip(header, line, strict=True)
        }
        for line in body
    ]
    assert table == as_table(rows, "部门")
    assert table[0]["部门"] == "区工信局"
    assert table[0][RESPONSE] == 0.75
    assert (table[0]["解决数"], table[0]["企业确认解决数"], table[0]["部门自报解决数"]) == (3, 2, 1)


def test_xlsx_has_the_json_numbers(scenario: Scenario) -> None:
    rows = scenario.report(**NOVEMBER, group_by="chain").json()["rows"]
    r = scenario.report(**NOVEMBER, group_by="chain", format="xlsx")
    assert r.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert 'filename="rates-chain-20261101-20261130.xlsx"' in r.headers["content-disposition"]
    book = load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == ["三率统计", "说明"]
    sheet = book["三率统计"]
    lines = list(sheet.iter_rows(values_only=True))
    header, body = list(lines[0]), lines[1:]
    table = [dict(zip(header, line, strict=True)) for line in body]
    assert table == as_table(rows, "产业链")
    assert [t["产业链"] for t in table] == ["新型显示", "激光", "无产业链"]
    rate_column = header.index(RESPONSE) + 1
    assert sheet.cell(row=2, column=rate_column).number_format == "0.00%"
    assert sheet.cell(row=2, column=rate_column).value == 0.8
    about = {a: b for a, b in book["说明"].iter_rows(values_only=True)}
    assert about["统计期间(受理时间)"].startswith("2026-11-01T00:00:00+08:00")
    # the notes state the formulas the numbers were divided by
    assert about["响应率"] == "响应率 = 按时签收数 ÷ 应签收数（已签收或签收已超期）"
    assert about["解决率"] == (
        "解决率 = 解决数（企业确认为准，企业未答复时以部门答复为准）÷ 办结数"
    )
    assert about["满意率"] == "满意率 = 满意数（非常满意、满意、基本满意）÷ 评价数"
    assert about["解决数"] == "企业确认解决数 + 部门自报解决数"


def test_grid_exports_name_the_prefix_length(scenario: Scenario) -> None:
    r = scenario.report(**NOVEMBER, group_by="grid", grid_len=12, format="csv")
    header = r.content.decode("utf-8-sig").splitlines()[0].split(",")
    assert header[:3] == ["网格(前12位)编码", "网格(前12位)", "受理数"]
