from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StrictInt, StringConstraints

from huying.attachments.schemas import AttachmentOnRequest
from huying.directory.schemas import USCC, Code, GridCode
from huying.durations import parse_duration
from huying.inputs import Input
from huying.workflow.library import RATINGS

Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text4000 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Rating = Literal[RATINGS]  # type: ignore[valid-type]
Source = Literal["grid", "hotline", "phone", "portal", "staff", "api"]


def _duration(text: str) -> str:
    parse_duration(text)
    return text


DurationText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=64), AfterValidator(_duration)
]


MediaUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=1000, pattern=r"^https?://\S+$"),
]
AttachmentIds = Annotated[
    list[Annotated[int, Field(ge=1, le=2**62, strict=True)]], Field(max_length=50)
]


class Contact(Input):
    name: str = Field(default="", max_length=100)
    phone: str = Field(default="", max_length=50)


class SubmitIn(Input):
    enterprise_uscc: USCC
    category: Code
    title: Text200
    description: Text4000
    urgency: Annotated[str, StringConstraints(max_length=32)] | None = None
    grid_code: GridCode | None = None
    location: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] | None = None
    contact: Contact | None = None
    source: Source = "api"
    external_id: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
        | None
    ) = Field(
        default=None,
        description="the submitter's own id: unique per submitter (the same body again "
        "replays, another body is 409 naming the existing request)",
    )
    lat: float | None = Field(default=None, ge=-90, le=90, description="WGS-84 latitude")
    long: float | None = Field(default=None, ge=-180, le=180, description="WGS-84 longitude")
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] | None = None
    media_urls: list[MediaUrl] = Field(
        default_factory=list, max_length=20, description="links to media the submitter hosts"
    )
    attachment_ids: AttachmentIds = Field(
        default_factory=list, description="attachments uploaded before (POST /attachments)"
    )


# --- action bodies: one model per action, fields as the design names them ------


class NoteBody(Input):
    note: Note | None = None


class DispatchBody(Input):
    lead_department: Code
    co_departments: list[Code] = Field(default_factory=list, max_length=20)
    note: Note | None = None


class ReasonBody(Input):
    reason: Note
    note: Note | None = None


class ReturnBody(ReasonBody):
    attachment_ids: AttachmentIds = Field(default_factory=list)


class MergeBody(Input):
    target_id: StrictInt = Field(ge=1, le=2**62, description="the request this one duplicates")
    note: Note | None = None


class ExtensionRequestBody(Input):
    extend_by: DurationText = Field(description='how much more time, e.g. "3 working days"')
    reason: Note
    attachment_ids: AttachmentIds = Field(default_factory=list)


class ExtensionDecisionBody(Input):
    approved: bool
    extend_by: DurationText | None = Field(
        default=None, description="grant a different length than was asked for"
    )
    note: Note | None = None


class ReplyBody(Input):
    content: Text4000
    resolved: bool
    attachment_ids: AttachmentIds = Field(default_factory=list)


class RateBody(Input):
    rating: Rating
    resolved: bool | None = Field(
        default=None,
        description="the enterprise's answer to 是否解决: required from an integration, "
        "optional when staff record a phone follow-up",
    )
    note: Note | None = Field(default=None, description="the enterprise's comment")


class SuperviseBody(Input):
    note: Note | None = None
    level: StrictInt | None = Field(
        default=None,
        ge=1,
        le=9,
        description="raise to this level (at most the escalation ladder's top)",
    )


class SuspensionRequestBody(Input):
    reason_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] = Field(
        description="one of the configured `suspension.reasons`"
    )
    reason: Note
    length: DurationText = Field(
        description='how long, e.g. "5 working days"; at most `suspension.max_length`'
    )
    attachment_ids: AttachmentIds = Field(default_factory=list)


class SuspensionDecisionBody(Input):
    approved: bool
    note: Note | None = None


class ReassignBody(Input):
    lead_department: Code
    co_departments: list[Code] = Field(default_factory=list, max_length=20)
    reason: Note


class DelegateBody(Input):
    departments: list[Code] = Field(
        min_length=1, max_length=20, description="departments below the lead (下派)"
    )
    note: Note | None = None
    limit: DurationText | None = Field(
        default=None, description="the tasks' own time limit; default time_limits.*.task"
    )


TaskId = Annotated[int, Field(ge=1, le=2**62, strict=True)]


class TaskSignBody(Input):
    task_id: TaskId
    note: Note | None = None


class TaskReplyBody(Input):
    task_id: TaskId
    content: Text4000
    attachment_ids: AttachmentIds = Field(default_factory=list)


class CancelTaskBody(Input):
    task_id: TaskId
    reason: Note | None = None


ACTION_BODIES: dict[str, type[Input]] = {
    "dispatch": DispatchBody,
    "reject": ReasonBody,
    "merge": MergeBody,
    "sign": NoteBody,
    "return": ReturnBody,
    "request_extension": ExtensionRequestBody,
    "decide_extension": ExtensionDecisionBody,
    "suspend": ReasonBody,
    "request_suspension": SuspensionRequestBody,
    "decide_suspension": SuspensionDecisionBody,
    "resume": NoteBody,
    "reply": ReplyBody,
    "rate": RateBody,
    "urge": NoteBody,
    "supervise": SuperviseBody,
    "reassign": ReassignBody,
    "accept_return": NoteBody,
    "refuse_return": ReasonBody,
    "delegate": DelegateBody,
    "task_sign": TaskSignBody,
    "task_reply": TaskReplyBody,
    "cancel_task": CancelTaskBody,
}


# --- responses -----------------------------------------------------------------


class Ref(BaseModel):
    code: str
    name: str


class EnterpriseRef(BaseModel):
    uscc: str
    name: str


class DeadlineOut(BaseModel):
    kind: str
    status: Literal["running", "paused", "met", "missed", "cancelled"]
    duration: str
    started_at: datetime
    due_at: datetime
    warn_at: datetime | None
    warned: bool
    completed_at: datetime | None
    escalations: int | None = Field(description="rungs fired; null in the public view")
    extensions: int | None = Field(
        default=0, description="extensions approved on this deadline; null in the public view"
    )
    task_id: int | None = Field(default=None, description="kind task: the task it is of")


class TaskOut(BaseModel):
    id: int
    department: Ref
    kind: Literal["assist", "delegate"] = Field(description="assist 协办, delegate 下派")
    status: Literal["pending", "signed", "done", "cancelled"]
    note: str | None
    limit: str | None = Field(description="the lead's own limit for it, if given")
    created_at: datetime
    signed_at: datetime | None
    replied_at: datetime | None
    reply: str | None
    on_time: bool | None = Field(description="replied within its task deadline")
    deadline: DeadlineOut | None = Field(description="its own `task` deadline")


class TimelineOut(BaseModel):
    seq: int
    action: str
    from_state: str | None
    to_state: str
    actor: str
    role: str
    at: datetime
    note: str | None
    data: dict[str, Any]
    public: bool = Field(default=False, description="shown in the public view")


class RequestOut(BaseModel):
    id: int
    number: str
    state: str
    workflow: dict[str, Any]
    enterprise: EnterpriseRef
    category: Ref
    urgency: str
    title: str
    description: str
    grid_code: str | None
    chain: str | None
    location: str | None
    lat: float | None
    long: float | None
    address: str | None
    media_urls: list[str]
    receipt_url: str | None = Field(
        default=None, description="the enterprise's receipt page (回执), no login"
    )
    contact: dict[str, Any] | None
    source: str
    external_id: str | None
    lead_department: Ref | None
    co_departments: list[Ref]
    # null in the public view (an integration's): supervision is internal
    escalation_level: int | None
    overdue: bool | None
    return_count: int | None
    reopen_count: int | None
    rating: str | None
    resolved: bool | None = Field(description="the lead department's claim in its reply")
    enterprise_resolved: bool | None = Field(
        description="the enterprise's own answer to 是否解决 when it rated; null: none given"
    )
    pending_extension: dict[str, Any] | None
    pending_suspension: dict[str, Any] | None = Field(
        description="a suspension asked and waiting for a decision"
    )
    suspension: dict[str, Any] | None = Field(
        description="the suspension running now: reason_code, reason, length, since, resumes_at"
    )
    suspension_count: int | None
    returned_from: str | None = Field(
        description="while a return is under review: the state it came from"
    )
    tasks: list[TaskOut]
    attachments: list[AttachmentOnRequest] = Field(
        default_factory=list, description="files bound to it; the public ones in the public view"
    )
    merged_into: int | None
    deadlines: list[DeadlineOut]
    version: int
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    timeline: list[TimelineOut] | None = None


class RequestPage(BaseModel):
    items: list[RequestOut]
    next_cursor: str | None


class ActionsOut(BaseModel):
    state: str
    version: int
    actions: list[str]
