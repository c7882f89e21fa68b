"""HTML forms: reading a posted form, and the fields of each action's form.

An action's fields are those of its body model in `huying.requests.schemas.ACTION_BODIES`;
this module only says how each is asked for (a text box, a yes/no choice, a department
list …) and turns the posted strings back into the body the service validates. The files of
a form (`attachment_ids`, asked for as files to upload) are uploaded by the route, which
then names them in the body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import IO, Any, Literal
from urllib.parse import parse_qsl

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from huying.errors import HuyingError, InvalidInput
from huying.requests.schemas import ACTION_BODIES, NoteBody
from huying.web import labels

MAX_FORM_BYTES = 64 * 1024
MAX_FIELDS = 200
# Files one action form may carry; together at most attachments.max_bytes (huying.app).
MAX_FILES = 10
# The fields of the files widget: the files, and whether the enterprise may see them.
FILES_FIELD = "attachment_files"
VISIBILITY_FIELD = "attachment_visibility"

Widget = Literal[
    "textarea",
    "yesno",
    "department",
    "departments",
    "duration",
    "rating",
    "level",
    "request",
    "reason_code",
    "task",
    "files",
]

# How each field of ACTION_BODIES is asked for; a field missing here fails the web tests.
WIDGETS: dict[str, Widget] = {
    "note": "textarea",
    "reason": "textarea",
    "content": "textarea",
    "resolved": "yesno",
    "approved": "yesno",
    "extend_by": "duration",
    "length": "duration",
    "limit": "duration",
    "reason_code": "reason_code",
    "task_id": "task",
    "departments": "departments",
    "lead_department": "department",
    "co_departments": "departments",
    "target_id": "request",
    "rating": "rating",
    "level": "level",
    "attachment_ids": "files",
}

YES_NO = {
    "resolved": (("true", "已解决"), ("false", "未解决")),
    "approved": (("true", "同意"), ("false", "不同意")),
}

# Extensions and suspensions are asked for in working days; the value is the duration text
# the API takes (the service checks it against the configured maximum).
DURATIONS = tuple((f"{n} working days", f"{n} 个工作日") for n in (1, 2, 3, 5, 10, 15))

MAX_LENGTH = {"content": 4000}


@dataclass(frozen=True)
class Upload:
    """A file posted with a form: its name as the browser gave it, and its bytes."""

    filename: str
    file: IO[bytes]


@dataclass(frozen=True)
class Form:
    """A posted form: application/x-www-form-urlencoded, or multipart/form-data with files."""

    pairs: tuple[tuple[str, str], ...]
    files: tuple[Upload, ...] = ()

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.pairs if k == name), None)

    def getlist(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k == name]


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_form(request: Request) -> Form:
    """The posted form; an empty one for another content type (its CSRF check then fails)."""
    if content_type(request) != "application/x-www-form-urlencoded":
        return Form(())
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInput("the form is too large")
    try:
        pairs = parse_qsl(
            body.decode("utf-8", errors="replace"),
            keep_blank_values=True,
            max_num_fields=MAX_FIELDS,
        )
    except ValueError:
        raise InvalidInput("the form has too many fields") from None
    # No text may hold a NUL character (PostgreSQL cannot store one): drop it.
    return Form(tuple((k, v.replace("\x00", "")) for k, v in pairs))


@asynccontextmanager
async def form_with_files(request: Request) -> AsyncIterator[Form]:
    """The posted form, with its files when it is multipart/form-data (as forms with a file
    input are sent); the files are closed when the block ends. Files the browser sent
    empty, for a file input left empty, are left out."""
    if content_type(request) != "multipart/form-data":
        yield await read_form(request)
        return
    parsed = await request.form(
        max_files=MAX_FILES, max_fields=MAX_FIELDS, max_part_size=MAX_FORM_BYTES
    )
    try:
        yield _multipart(parsed)
    finally:
        await parsed.close()


def _multipart(parsed: FormData) -> Form:
    pairs: list[tuple[str, str]] = []
    files: list[Upload] = []
    for name, value in parsed.multi_items():
        if isinstance(value, UploadFile):
            if value.filename or value.size:
                files.append(Upload(value.filename or "", value.file))
        else:
            pairs.append((name.replace("\x00", ""), value.replace("\x00", "")))
    return Form(tuple(pairs), tuple(files))


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    widget: Widget
    required: bool
    max_length: int = 2000

    @property
    def choices(self) -> Sequence[tuple[str, str]]:
        if self.widget == "yesno":
            return YES_NO.get(self.name, (("true", "是"), ("false", "否")))
        if self.widget == "duration":
            return DURATIONS
        if self.widget == "rating":
            return tuple(labels.RATINGS.items())
        return ()


def fields_of(action: str) -> tuple[FieldSpec, ...]:
    model = ACTION_BODIES.get(action, NoteBody)
    return tuple(
        FieldSpec(
            name=name,
            label=labels.field(name),
            widget=WIDGETS.get(name, "textarea"),
            required=info.is_required(),
            max_length=MAX_LENGTH.get(name, 2000),
        )
        for name, info in model.model_fields.items()
    )


def body_from(action: str, form: Form) -> dict[str, Any]:
    """The action's body from the posted strings; left-out fields stay out, so the service
    says which are required."""
    body: dict[str, Any] = {}
    for spec in fields_of(action):
        if spec.widget == "files":
            continue  # uploaded by the route, which names them in the body
        if spec.widget == "departments":
            codes = [v for v in form.getlist(spec.name) if v.strip()]
            if codes:
                body[spec.name] = codes
            continue
        value = form.get(spec.name)
        if value is None or not value.strip():
            continue
        if spec.widget == "yesno":
            body[spec.name] = {"true": True, "false": False}.get(value, value)
        elif spec.widget in ("level", "task") and value.isdigit():
            body[spec.name] = int(value)
        else:
            body[spec.name] = value
    return body


# The order of the forms on a request's page: the usual next step first.
PRIORITY = (
    "sign",
    "task_sign",
    "task_reply",
    "reply",
    "dispatch",
    "accept_return",
    "refuse_return",
    "resume",
    "decide_extension",
    "rate",
    "decide_suspension",
    "request_extension",
    "request_suspension",
    "suspend",
    "delegate",
    "cancel_task",
    "return",
    "reassign",
    "reject",
    "merge",
    "urge",
    "supervise",
)


def by_priority(actions: Sequence[str]) -> list[str]:
    return sorted(actions, key=lambda a: PRIORITY.index(a) if a in PRIORITY else len(PRIORITY))


# --- 来电登记: the phone intake's form -------------------------------------------------

# Its fields, as the page names them; `enterprise` is what was typed (a name or a USCC),
# `enterprise_uscc` the enterprise picked from the look-up, `enterprise_pick` one picked
# from the candidates the page lists when the typed name matched several.
INTAKE_FIELDS = (
    "enterprise",
    "enterprise_uscc",
    "enterprise_pick",
    "category",
    "title",
    "description",
    "urgency",
    "contact_name",
    "contact_phone",
    "grid_code",
    "source",
)


# The fields chosen from a list: an error there asks to choose.
INTAKE_CHOICES = ("category", "urgency", "source")


def intake_values(form: Form) -> dict[str, str]:
    """The intake's fields as posted, trimmed: what the page shows again after a refusal."""
    return {name: (form.get(name) or "").strip() for name in INTAKE_FIELDS}


def intake_body(values: Mapping[str, str], *, uscc: str) -> dict[str, Any]:
    """The submit's body (`SubmitIn`) from the intake's fields. Blank optional fields are
    left out, so that the category's urgency and the enterprise's grid apply; a channel the
    page does not offer is sent empty, for the schema to refuse."""
    sources = dict(labels.INTAKE_SOURCES)
    body: dict[str, Any] = {
        "enterprise_uscc": uscc,
        "category": values["category"],
        "title": values["title"],
        "description": values["description"],
        "source": values["source"] if values["source"] in sources else "",
    }
    for name in ("urgency", "grid_code"):
        if values[name]:
            body[name] = values[name]
    if values["contact_name"] or values["contact_phone"]:
        body["contact"] = {"name": values["contact_name"], "phone": values["contact_phone"]}
    return body


def _intake_field(loc: Sequence[str]) -> str:
    """The intake field a body error's location points at: contact.name → contact_name."""
    if not loc:
        return ""
    if loc[0] == "contact":
        return f"contact_{loc[1]}" if len(loc) > 1 else "contact_name"
    if loc[0] == "enterprise_uscc":
        return "enterprise"
    return loc[0] if loc[0] in INTAKE_FIELDS else ""


def intake_errors(exc: HuyingError | ValidationError) -> dict[str, str]:
    """The refusal of an intake, in Chinese, under the field it concerns ("" for the form as
    a whole): the schema's errors field by field, the service's by the field it names."""
    errors = exc.errors() if isinstance(exc, ValidationError) else exc.extra.get("errors")
    said: dict[str, str] = {}
    for e in errors or ():
        loc = [str(p) for p in e.get("loc", ()) if not str(p).isdigit() and p != "body"]
        name = _intake_field(loc)
        kind = str(e.get("type"))
        if name == "enterprise" and kind == "value_error":
            message = "统一社会信用代码格式不正确，请核对或从列表中选择企业。"
        elif name == "grid_code":
            message = labels.INTAKE_REFUSALS["grid_code"]
        elif name in INTAKE_CHOICES:
            chosen = "有效的" if e.get("input") else ""
            message = f"请选择{chosen}{labels.INTAKE_FIELDS[name]}。"
        else:
            template = labels.PYDANTIC.get(kind, "{f}填写有误")
            message = template.format(f=labels.INTAKE_FIELDS.get(name, "表单"))
        said.setdefault(name, message)
    if said or isinstance(exc, ValidationError):
        return said
    field = exc.extra.get("field")
    if isinstance(field, str) and field in labels.INTAKE_REFUSALS:
        return {_intake_field([field]): labels.INTAKE_REFUSALS[field]}
    return {"": labels.explain(exc).message}
