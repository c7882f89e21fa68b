"""The console's admin pages (系统管理), one module per section of `common.SECTIONS`. Each
reads and writes through the same services as the API, so every rule and the audit log hold
here as they do there."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from huying.web.admin import (
    audit,
    calendar,
    categories,
    departments,
    enterprises,
    rules,
    users,
    webhooks,
)
from huying.web.admin.common import SECTIONS

router = APIRouter(include_in_schema=False)


@router.get("/admin")
def admin_home() -> RedirectResponse:
    return RedirectResponse(SECTIONS[0][2], status_code=303)


# Each included in the app on its own (`huying.app`): FastAPI matches every level of
# included routers again, so none includes another.
routers = (
    router,
    *(
        m.router
        for m in (categories, departments, enterprises, rules, users, webhooks, audit, calendar)
    ),
)
