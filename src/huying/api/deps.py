"""Dependencies every router shares that are not about identity: the runtime, If-Match.
Who is calling is `huying.auth.deps`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from huying.errors import InvalidInput
from huying.runtime import Runtime


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def if_match(
    value: Annotated[
        str | None,
        Header(alias="If-Match", description='the version you last read, as given in ETag: "3"'),
    ] = None,
) -> int | None:
    if value is None:
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 12:
        raise InvalidInput('If-Match: expected the request\'s version as an entity tag, e.g. "3"')
    return int(text)


Rt = Annotated[Runtime, Depends(runtime)]
IfMatch = Annotated[int | None, Depends(if_match)]
