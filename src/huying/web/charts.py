"""Charts drawn on the server as inline SVG, so the board needs no chart library: this module
computes the shapes, `templates/_charts.html` writes them out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from huying.web.rates import DepartmentRates, Rate

SERIES = (
    ("response", "响应率", "s1"),
    ("resolution", "解决率", "s2"),
    ("satisfaction", "满意率", "s3"),
)


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str = ""


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    anchor: str = "start"
    css: str = ""
    title: str = ""


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    css: str = "grid"


@dataclass
class Chart:
    width: float
    height: float
    title: str
    rects: list[Rect] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rates_chart(rows: Sequence[DepartmentRates]) -> Chart:
    """Horizontal bars: per department, its response, resolution and satisfaction rates."""
    label_w, plot_w, right = 200.0, 420.0, 64.0
    top, bar_h, gap, pad = 52.0, 12.0, 3.0, 16.0
    row_h = 3 * bar_h + 2 * gap + pad
    height = top + max(1, len(rows)) * row_h + 8
    chart = Chart(label_w + plot_w + right, height, "本月各部门三率")
    for i, (_, name, css) in enumerate(SERIES):  # legend
        x = label_w + i * 110
        chart.rects.append(Rect(x, 6, 14, 14, css))
        chart.texts.append(Text(x + 20, 18, name, css="legend"))
    for pct in (0, 25, 50, 75, 100):
        x = label_w + plot_w * pct / 100
        chart.lines.append(Line(x, top - 6, x, height - 8))
        chart.texts.append(Text(x, top - 12, f"{pct}%", anchor="middle", css="axis"))
    if not rows:
        chart.texts.append(Text(label_w + plot_w / 2, top + 28, "本月暂无数据", "middle", "empty"))
    for r_i, row in enumerate(rows):
        y0 = top + r_i * row_h + pad / 2
        chart.texts.append(
            Text(label_w - 10, y0 + row_h / 2 - 4, shorten(row.name, 14), "end", "name", row.name)
        )
        for s_i, (attr, series_name, css) in enumerate(SERIES):
            rate: Rate = getattr(row, attr)
            y = y0 + s_i * (bar_h + gap)
            value = rate.value
            width = 0.0 if value is None else plot_w * value
            tip = f"{row.name} {series_name} {rate.text}（{rate.hits}/{rate.total}）"
            chart.rects.append(Rect(label_w, y, max(width, 1.5), bar_h, css, tip))
            chart.texts.append(
                Text(label_w + width + 6, y + bar_h - 2, rate.text, css="value", title=tip)
            )
    return chart


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 × 10^k that is at least `value` (at least 4)."""
    if value <= 4:
        return 4
    exponent = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * exponent >= value:
            return step * exponent
    return 10 * exponent  # pragma: no cover


def day_chart(days: Sequence[date], counts: Sequence[int], *, workdays: set[date]) -> Chart:
    """Vertical bars: requests per day; non-working days drawn lighter."""
    left, right, top, bottom = 40.0, 12.0, 16.0, 34.0
    plot_w, plot_h = 760.0, 170.0
    chart = Chart(left + plot_w + right, top + plot_h + bottom, "每日诉求量")
    peak = nice_ceiling(max(counts, default=0))
    for tick in (0, peak // 2, peak):
        y = top + plot_h - plot_h * tick / peak
        chart.lines.append(Line(left, y, left + plot_w, y))
        chart.texts.append(Text(left - 6, y + 4, str(tick), "end", "axis"))
    n = max(1, len(days))
    slot = plot_w / n
    every = max(1, math.ceil(n / 10))
    for i, (day, c) in enumerate(zip(days, counts, strict=True)):
        h = plot_h * c / peak
        x = left + i * slot + slot * 0.15
        css = "day" if day in workdays else "day off"
        tip = f"{day:%m月%d日}：{c} 件"
        chart.rects.append(Rect(x, top + plot_h - h, slot * 0.7, max(h, 0.0), css, tip))
        if c and n <= 31:
            chart.texts.append(
                Text(x + slot * 0.35, top + plot_h - h - 4, str(c), "middle", "value")
            )
        if i % every == 0 or i == n - 1:
            chart.texts.append(
                Text(x + slot * 0.35, top + plot_h + 18, f"{day:%m/%d}", "middle", "axis")
            )
    return chart
