"""The rates table as CSV and XLSX, with Chinese column headers, ready for a monthly report.

Both carry exactly the numbers of the JSON rows: counts as integers, working hours rounded to
two decimals, rates as fractions rounded to four (XLSX shows them as percentages, the cell
holds the same fraction). An empty cell is a null: no denominator, nothing timed, or a task
count in a table grouped by anything but the department.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from openpyxl import Workbook  # type: ignore[import-untyped]  # no stubs in the dev deps
from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]

from huying.reports.schemas import COUNT_LABELS, RATES, GroupBy, RatesReport, RatesRow

GROUP_LABELS: dict[GroupBy, str] = {
    "department": "部门",
    "category": "诉求类别",
    "chain": "产业链",
    "grid": "网格",
    "urgency": "紧急程度",
}
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

Getter = Callable[[RatesRow], Any]
COUNTS: list[tuple[str, str]] = [(label, name) for name, label in COUNT_LABELS.items()]
HOURS: list[tuple[str, str]] = [
    ("平均签收用时(工作小时)", "sign_hours_mean"),
    ("签收用时P90(工作小时)", "sign_hours_p90"),
    ("平均答复用时(工作小时)", "reply_hours_mean"),
    ("答复用时P90(工作小时)", "reply_hours_p90"),
]
# Each rate's header states its division: 响应率(按时签收数÷应签收数).
RATE_COLUMNS: list[tuple[str, str]] = [(d.header, name) for name, d in RATES.items()]

# What the counts behind the rates mean, on the notes sheet after the formulas.
NOTES: list[tuple[str, str]] = [
    ("应签收数", "已签收（按时或超时），或未签收且签收时限已过；签收时限未到的不计入"),
    ("解决数", "企业确认解决数 + 部门自报解决数"),
    ("企业确认解决数", "已办结，企业评价时答复“已解决”"),
    ("部门自报解决数", "已办结，企业未答复是否解决，部门最后一次答复为“已解决”"),
    ("用时", "工作时间(按工作日历),P90 为最近秩次第 90 百分位"),
    ("任务数", "该部门的协办、下派任务（不含已撤销），所属诉求在统计期间受理；仅按部门统计"),
    ("任务应答复数", "任务已答复（按时或超时），或未答复且任务时限已过；任务时限未到的不计入"),
]


def columns(report: RatesReport) -> list[tuple[str, str, Getter]]:
    """(header, kind, getter) per column; kind is text, count, hours or rate."""
    label = GROUP_LABELS[report.group_by]
    if report.group_by == "grid":
        label = f"{label}(前{report.grid_len}位)"
    cols: list[tuple[str, str, Getter]] = [
        (f"{label}编码", "text", lambda r: r.key),
        (label, "text", lambda r: r.name),
    ]
    cols += [(h, "count", _field(f)) for h, f in COUNTS]
    cols += [
        (f"升级至{level}级数", "count", _level(str(level))) for level in report.escalation_levels
    ]
    cols += [(h, "hours", _field(f)) for h, f in HOURS]
    cols += [(h, "rate", _field(f)) for h, f in RATE_COLUMNS]
    return cols


def _field(name: str) -> Getter:
    return lambda r: getattr(r, name)


def _level(level: str) -> Getter:
    return lambda r: r.escalations.get(level, 0)


def filename(report: RatesReport, ext: str) -> str:
    last = report.to  # excluded: name the period by its first and last day
    return f"rates-{report.group_by}-{report.from_:%Y%m%d}-{(last - last.resolution):%Y%m%d}.{ext}"


def to_csv(report: RatesReport) -> bytes:
    """UTF-8 with a byte-order mark, so that Excel shows the Chinese headers."""
    cols = columns(report)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([h for h, _, _ in cols])
    for row in report.rows:
        writer.writerow(["" if (v := get(row)) is None else v for _, _, get in cols])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(report: RatesReport) -> bytes:
    cols = columns(report)
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook has its first sheet
    sheet.title = "三率统计"
    sheet.append([h for h, _, _ in cols])
    for row in report.rows:
        sheet.append([get(row) for _, _, get in cols])
    formats = {"count": "0", "hours": "0.00", "rate": "0.00%"}
    for i, (header, kind, _) in enumerate(cols, start=1):
        letter = get_column_letter(i)
        sheet.column_dimensions[letter].width = max(10, len(header) * 2 + 2)
        if kind in formats:
            for cell in sheet[letter][1:]:
                cell.number_format = formats[kind]
    sheet.freeze_panes = "C2"

    about = book.create_sheet("说明")
    tz = report.from_.tzinfo
    for line in (
        ("统计期间(受理时间)", f"{report.from_.isoformat()} 至 {report.to.isoformat()}(不含)"),
        ("分组", GROUP_LABELS[report.group_by]),
        ("时区", str(tz)),
        *((d.label, d.formula) for d in RATES.values()),
        *NOTES,
    ):
        about.append(list(line))
    about.column_dimensions["A"].width = 20
    about.column_dimensions["B"].width = 70

    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
