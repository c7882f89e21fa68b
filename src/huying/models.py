"""Every ORM model, imported in one place so that metadata is complete (Alembic, tests)."""

from huying.alerts.models import Event
from huying.attachments.models import Attachment, AttachmentBlob
from huying.audit.models import AuditEntry
from huying.auth.models import ApiKey, LoginFailure, StaffSession, User
from huying.cache import generations_table
from huying.db import Base
from huying.deadlines.models import Deadline, WorkerHeartbeat
from huying.directory.models import Category, Chain, Department, Enterprise, RoutingRule
from huying.reports.models import report_months, report_rollups
from huying.requests.models import (
    Request,
    RequestCoDepartment,
    RequestReturn,
    RequestTask,
    TimelineEntry,
)

__all__ = [
    "ApiKey",
    "Attachment",
    "AttachmentBlob",
    "AuditEntry",
    "Base",
    "Category",
    "Chain",
    "Deadline",
    "Department",
    "Enterprise",
    "Event",
    "LoginFailure",
    "Request",
    "RequestCoDepartment",
    "RequestReturn",
    "RequestTask",
    "RoutingRule",
    "StaffSession",
    "TimelineEntry",
    "User",
    "WorkerHeartbeat",
    "generations_table",
    "report_months",
    "report_rollups",
]
