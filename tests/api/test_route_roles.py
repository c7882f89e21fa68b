"""Who may call each route of the API, written out role by role: the routers name groups from
`huying.auth.roles`, and a change to a group shows here as the routes it opens or closes."""

from __future__ import annotations

from typing import Any

import pytest

from huying.alerts.router import router as alerts_router
from huying.attachments.router import build_router as attachments_router
from huying.auth.gate import rule_of
from huying.directory import import_router as directory_import
from huying.directory.router import router as directory_router
from huying.reports.router import router as reports_router
from huying.requests import service as requests_service
from huying.requests.router import router as requests_router

WORKERS = ("admin", "dispatcher", "supervisor", "department", "integration")
ADMIN = ("admin",)

ALLOWED: dict[tuple[str, str], tuple[str, ...]] = {
    ("POST", "/requests"): ("integration", "dispatcher", "admin"),
    ("GET", "/requests"): WORKERS,
    ("GET", "/requests/{request_id}"): WORKERS,
    ("GET", "/requests/{request_id}/actions"): WORKERS,
    ("POST", "/requests/{request_id}/actions/{action}"): WORKERS,
    ("POST", "/attachments"): WORKERS,
    ("GET", "/attachments/{attachment_id}"): WORKERS,
    ("POST", "/departments"): ADMIN,
    ("GET", "/departments"): WORKERS,
    ("POST", "/chains"): ADMIN,
    ("GET", "/chains"): WORKERS,
    ("POST", "/categories"): ADMIN,
    ("GET", "/categories"): WORKERS,
    ("POST", "/enterprises"): ("admin", "integration"),
    ("GET", "/enterprises/{uscc}"): ("admin", "integration", "dispatcher", "supervisor"),
    ("GET", "/enterprises"): ("admin", "integration", "dispatcher", "supervisor"),
    ("POST", "/enterprises/import"): ADMIN,
    ("POST", "/routing-rules"): ADMIN,
    ("GET", "/routing-rules"): ("admin", "dispatcher", "supervisor"),
    ("PATCH", "/departments/{code}"): ADMIN,
    ("PATCH", "/chains/{code}"): ADMIN,
    ("PATCH", "/categories/{code}"): ADMIN,
    ("PATCH", "/enterprises/{uscc}"): ("admin", "integration"),
    ("PATCH", "/routing-rules/{rule_id}"): ADMIN,
    ("GET", "/reports/rates"): ("supervisor", "admin"),
    ("POST", "/webhooks"): ADMIN,
    ("GET", "/webhooks"): ADMIN,
    ("DELETE", "/webhooks/{webhook_id}"): ADMIN,
    ("PATCH", "/webhooks/{webhook_id}"): ADMIN,
    ("POST", "/webhooks/{webhook_id}/test"): ADMIN,
    ("GET", "/deliveries"): ADMIN,
    ("POST", "/deliveries/{delivery_id}/redeliver"): ADMIN,
}

ROUTERS = [
    requests_router,
    attachments_router(sees_request=requests_service.visible),
    directory_router,
    directory_import.router,
    reports_router,
    alerts_router,
]


def _declared(router: Any) -> dict[tuple[str, str], tuple[str, ...]]:
    found = {}
    for route in router.routes:
        rule = rule_of(route.dependant)
        assert rule is not None and rule.roles is not None, f"{route.path}: no allow(...)"
        for method in route.methods:
            found[(method, route.path)] = rule.roles.names
    return found


def test_every_route_allows_exactly_the_roles_it_allowed() -> None:
    declared: dict[tuple[str, str], tuple[str, ...]] = {}
    for router in ROUTERS:
        declared.update(_declared(router))
    assert declared == ALLOWED  # the order too: a 403 names the roles in it


@pytest.mark.parametrize("router", ROUTERS)
def test_no_route_lets_the_monitor_in(router: Any) -> None:
    assert all("monitor" not in names for names in _declared(router).values())
