"""One error type per failure kind. `huying.api.problems` maps each to one HTTP status.

Each error carries a stable `code` (the kind, for programs: the API's problem body holds it,
the console words it in Chinese) and its structured fields in `extra` (the missing fields,
the refusals, the current version …), beside `detail`, the English sentence for a person.
Nothing should read `detail` to learn what went wrong.

Pure: the workflow core raises these too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Every code an error (or another problem the API sends) may carry, and what it means.
CODES: dict[str, str] = {
    "bad_request": "400: the request cannot be read",
    "invalid_input": "422: the input is malformed or names something that does not exist",
    "invalid_fields": "422: fields fail validation; `errors` lists each",
    "missing_fields": "422: the action needs these fields; `fields` names them",
    "unknown_reference": (
        "422: the input names something that does not exist; `kind` says what "
        "(department, request, category, chain, task, attachment), `codes` which, "
        "`field` where"
    ),
    "merge_into_itself": "422: a request cannot be merged into itself",
    "merge_target_closed": "422: the request to merge into is rejected or merged itself",
    "unknown_reason_code": "422: `reason_code` is not one of the configured suspension.reasons",
    "suspension_too_long": "422: `length` is longer than suspension.max_length",
    "duration_not_positive": "422: the duration (`length`, `extend_by`) must be longer than zero",
    "extension_too_long": (
        "422: `extend_by`, with this deadline's earlier extensions, is longer than "
        "extension.max_length"
    ),
    "level_above_ladder": "422: `level` is above the escalation ladder's top",
    "unknown_query_parameter": "422: a query parameter the endpoint does not take; `parameters`",
    "same_lead": "422: a reassignment names the department that already leads the request",
    "not_below_lead": "422: a request is delegated only to departments below its lead",
    "task_already_open": "422: the department already has an open task on this request",
    "not_authenticated": "401: no valid credentials",
    "forbidden": "403: the caller's role or department may not do this; `allowed` if any",
    "not_found": "404: nothing there, or nothing the caller may see",
    "request_not_found": "404: no such request, or one the caller may not see",
    "unknown_action": "404: the workflow has no such action; `allowed` lists those allowed now",
    "unknown_workflow": "404: no such workflow or workflow version is loaded",
    "method_not_allowed": "405: the path does not take this method; see the Allow header",
    "conflict": "409: the current state does not allow it, or a concurrent change won",
    "has_active_children": (
        "409: a department with active sub-departments cannot be retired; `children` names them"
    ),
    "not_allowed_now": (
        "409: the request's state does not allow the action; `allowed` lists those allowed now"
    ),
    "refused": (
        "409: a condition of the action is not met; `refusals` names each "
        "(the workflow's guards), `allowed` lists the actions allowed now"
    ),
    "external_id_taken": (
        "409: this submitter already has a request with that external_id and another body; "
        "`existing_id`, `existing_number` name it"
    ),
    "changed_meanwhile": "409: the request was changed meanwhile; reload it and retry",
    "precondition_failed": "412: If-Match named a version that is no longer current",
    "stale_version": "412: If-Match named an old version; `current_version` is the current one",
    "too_large": "413: the request body is larger than allowed",
    "too_many_requests": "429: too many attempts for now; see the Retry-After header",
    "internal_error": "500: an unexpected error; it has been logged",
    "unavailable": "503: a dependency (the database) is unreachable for now; retry",
}


class HuyingError(Exception):
    """A failure of one kind. `code=` names a finer kind than the class's own."""

    code: str = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        if code is not None:
            self.code = code

    @property
    def all_codes(self) -> list[str]:
        """This error's code, then those of the kinds it refines, most specific first."""
        kinds = [k.code for k in type(self).__mro__ if issubclass(k, HuyingError)]
        return list(dict.fromkeys([self.code, *kinds]))


class InvalidInput(HuyingError):
    """The input is malformed or names something that does not exist (422)."""

    code = "invalid_input"


class InvalidFields(InvalidInput):
    """Fields fail validation; `errors` holds Pydantic's list of them."""

    code = "invalid_fields"

    def __init__(self, detail: str, *, errors: Sequence[Mapping[str, Any]], **extra: Any) -> None:
        super().__init__(detail, errors=list(errors), **extra)
        self.errors = list(errors)


class MissingFields(InvalidInput):
    """The action needs fields the input left out or left empty."""

    code = "missing_fields"

    def __init__(self, detail: str, *, fields: Sequence[str], **extra: Any) -> None:
        super().__init__(detail, fields=list(fields), **extra)
        self.fields = tuple(fields)


class UnknownReference(InvalidInput):
    """The input names something that does not exist: `kind` says what, `codes` which."""

    code = "unknown_reference"

    def __init__(
        self,
        detail: str,
        *,
        kind: str,
        codes: Sequence[str],
        field: str | None = None,
        **extra: Any,
    ) -> None:
        if field is not None:
            extra["field"] = field
        super().__init__(detail, kind=kind, codes=list(codes), **extra)
        self.kind = kind
        self.codes = tuple(codes)
        self.field = field


class NotAuthenticated(HuyingError):
    """No valid credentials (401)."""

    code = "not_authenticated"


class Forbidden(HuyingError):
    """The caller's role or department may not do this (403)."""

    code = "forbidden"


class NotFound(HuyingError):
    """Nothing there, or nothing the caller may see (404)."""

    code = "not_found"


class UnknownAction(NotFound):
    """The workflow has no such action; `allowed` lists the actions allowed now."""

    code = "unknown_action"

    def __init__(self, detail: str, *, allowed: Sequence[str], **extra: Any) -> None:
        super().__init__(detail, allowed=list(allowed), **extra)


class Conflict(HuyingError):
    """The current state does not allow it, or a concurrent change won (409)."""

    code = "conflict"


class NotAllowedNow(Conflict):
    """The request's state does not allow the action; `allowed` lists the actions allowed now."""

    code = "not_allowed_now"

    def __init__(self, detail: str, *, allowed: Sequence[str], **extra: Any) -> None:
        super().__init__(detail, allowed=list(allowed), **extra)


class GuardRefused(Conflict):
    """A condition of the action is not met: `refusals` names the guards that refused."""

    code = "refused"

    def __init__(
        self, detail: str, *, refusals: Sequence[str], allowed: Sequence[str], **extra: Any
    ) -> None:
        super().__init__(detail, refusals=list(refusals), allowed=list(allowed), **extra)
        self.refusals = tuple(refusals)


class ChangedMeanwhile(Conflict):
    """Another change to the same request was saved first."""

    code = "changed_meanwhile"


class PreconditionFailed(HuyingError):
    """If-Match named a version that is no longer current (412)."""

    code = "precondition_failed"


class StaleVersion(PreconditionFailed):
    """If-Match named an old version; `current_version` is the current one, when known."""

    code = "stale_version"

    def __init__(self, detail: str, *, current_version: int | None = None, **extra: Any) -> None:
        if current_version is not None:
            extra["current_version"] = current_version
        super().__init__(detail, **extra)
        self.current_version = current_version


class Unavailable(HuyingError):
    """A dependency (the database) is unreachable for now (503)."""

    code = "unavailable"


class TooLarge(HuyingError):
    """The request body is larger than allowed (413); nothing past the limit was read."""

    code = "too_large"


class TooManyRequests(HuyingError):
    """Too many attempts for now (429); `retry_after` says in how many seconds to try again."""

    code = "too_many_requests"

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


# --- saying what Pydantic found wrong -------------------------------------------------------


def validation_message(error: Mapping[str, Any]) -> str:
    """One Pydantic error's message, without the "Value error, " a validator's ValueError gets."""
    return str(error.get("msg", "")).removeprefix("Value error, ")


def validation_detail(errors: Iterable[Mapping[str, Any]], *, whole: str = "") -> str:
    """Pydantic's errors as `loc: message; loc: message`. An error about the input as a whole
    (no location) is said as `whole: message`, or as the bare message when `whole` is ""."""
    parts = []
    for error in errors:
        loc = ".".join(str(p) for p in error.get("loc", ())) or whole
        message = validation_message(error)
        parts.append(f"{loc}: {message}" if loc else message)
    return "; ".join(parts)
