"""`GET /reports/rates`: the three rates and the on-time figures, as JSON, CSV or XLSX."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from huying import roles
from huying.api.deps import Rt
from huying.auth.deps import Auth
from huying.auth.gate import GatedRoute, allow
from huying.reports import export, service
from huying.reports.schemas import Format, GroupBy, RatesReport
from huying.requests import service as requests

router = APIRouter(prefix="/reports", tags=["reports"], route_class=GatedRoute)


@router.get(
    "/rates",
    response_model=RatesReport,
    dependencies=[allow(*roles.SUPERVISORS)],
    responses={
        200: {
            "description": "the table; as CSV or XLSX with Chinese headers when `format` says so",
            "content": {
                export.CSV_MEDIA_TYPE: {"schema": {"type": "string"}},
                export.XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
def rates(
    rt: Rt,
    auth: Auth,
    start: Annotated[
        str | None,
        Query(
            alias="from",
            max_length=40,
            description="received at or after: a date (2026-11-01, midnight in the calendar's "
            "time zone) or a time with an offset; default: the start of the current month",
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(
            alias="to",
            max_length=40,
            description="received before (excluded); default: the start of next month",
        ),
    ] = None,
    month: Annotated[
        str | None,
        Query(pattern=r"^\d{4}-\d{2}$", description="a whole month instead of from/to: 2026-11"),
    ] = None,
    group_by: GroupBy = "department",
    grid_len: Annotated[
        int, Query(ge=1, le=32, description="group_by=grid: the length of the grid-code prefix")
    ] = 9,
    fmt: Annotated[Format, Query(alias="format")] = "json",
) -> Any:
    """Requests received in the period, grouped; every figure is about those requests as they
    stand now. Supervisors and admins only; a supervisor bound to a department, the requests
    led in its subtree and the returns and tasks of its departments."""
    now = rt.now()
    with rt.snapshot() as s:  # the months, the counts and the percentiles agree
        scope = requests.scope_of(session=s, principal=auth.principal(s, rt))
        span = service.period(tz=rt.calendar.tz, now=now, start=start, end=end, month=month)
        rows = service.rates(
            session=s,
            escalation_levels=[rung.level for rung in rt.settings.escalation],
            span=span,
            group_by=group_by,
            grid_len=grid_len,
            scope=scope,
        )
    report = RatesReport(
        from_=span.start.astimezone(rt.calendar.tz),
        to=span.end.astimezone(rt.calendar.tz),
        group_by=group_by,
        grid_len=grid_len if group_by == "grid" else None,
        escalation_levels=[rung.level for rung in rt.settings.escalation],
        rows=rows,
    )
    if fmt == "csv":
        return _download(
            export.to_csv(report), export.CSV_MEDIA_TYPE, export.filename(report, "csv")
        )
    if fmt == "xlsx":
        return _download(
            export.to_xlsx(report), export.XLSX_MEDIA_TYPE, export.filename(report, "xlsx")
        )
    return report


def _download(body: bytes, media_type: str, name: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
