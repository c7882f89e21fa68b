"""Dependencies every router shares that are not about identity: the runtime, If-Match.
Who is calling is `huying.auth.deps`.

Each dependency is `async def` though it awaits nothing: FastAPI runs a plain `def`
dependency on a worker thread, one hand-off from the event loop per dependency per request,
which for these few lines costs more than they do."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request

from huying.errors import InvalidInput
from huying.runtime import Runtime


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def provide_runtime(request: Request) -> Runtime:
    """`Rt`: what FastAPI solves outside the API; the gate hands an API route `runtime(request)`
    itself (`huying.auth.gate`)."""
    return runtime(request)


async def if_match(
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


Rt = Annotated[Runtime, Depends(provide_runtime)]
IfMatch = Annotated[int | None, Depends(if_match)]


def _declared(dependant: Any) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared(sub)
    return names


def _query_names(route: Any) -> frozenset[str]:
    """The query parameters a route declares, its dependencies' included; kept on the route
    (routes are not hashable, and live as long as their app)."""
    names: frozenset[str] | None = getattr(route, "_huying_query_names", None)
    if names is None:
        names = frozenset(_declared(route.dependant))
        route._huying_query_names = names
    return names


async def known_query(request: Request) -> None:
    """Every API route: a query parameter the route does not take is 422, never ignored
    (a misspelt filter must not silently return everything)."""
    if not request.scope.get("query_string"):  # most calls: nothing to parse
        return
    route = request.scope.get("route")
    if route is None or not hasattr(route, "dependant"):
        return
    known = _query_names(route)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise InvalidInput(
            f"unknown query parameter(s): {', '.join(unknown)}; this endpoint takes: {takes}",
            code="unknown_query_parameter",
            parameters=unknown,
        )
