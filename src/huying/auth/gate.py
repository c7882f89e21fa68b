"""The gate in front of the JSON API: who is calling, and may their role call this route, decided
before the body is read.

FastAPI reads and validates a route's body before it runs any dependency, so a check in a
dependency comes too late: a bad token's large body would be read in full, and a caller
without the role would learn from a 422 which fields the route wants. `GatedRoute` (the
`route_class` of the API's routers) wraps the route's handler instead: it resolves the bearer
token to a principal in a short unit of work of its own, checks the roles the route declares
with `allow(...)`, and only then lets FastAPI read the body. The principal is handed on, so
`Credentials.principal` in the handler costs no second query.

Credentials come from a cache (`huying.auth.service.authenticate`): the gate's unit of work
reads one small row, the generation of credentials, and no key. A route declared with
`allow(..., confirm_in_handler=True)` (the intake) may skip even that: a caller this process
already knows is admitted on what it knew, and the handler's `Credentials.principal` confirms
the generation in the handler's own transaction, folded into a statement it makes anyway,
before anything is done; if credentials changed meanwhile it authenticates again there and
checks the roles again, so a revoked key is still refused on its very next call. Only a
handler that calls `Credentials.principal` first may declare it.

A route is gated when it depends on `Auth` or declares `allow`; `/api/v1/auth/login` does
neither and stays public. A department's scope (404 for another department's request) is
the service's business, not the gate's.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, replace
from typing import Any

import fastapi.routing
from fastapi import Depends, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute

from huying.api.deps import known_query, provide_runtime, runtime
from huying.api.threads import run_sync
from huying.auth.deps import (
    ADMITTED,
    UNCONFIRMED,
    bearer,
    check_role,
    credentials,
    credentials_of,
    token_of,
)
from huying.auth.service import Principal, authenticate, cached_principal
from huying.runtime import Runtime

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True)
class Roles:
    """The roles that may call a route; as a dependency it does nothing (the gate checked)."""

    names: tuple[str, ...]
    doing: str = "do this"
    confirm_in_handler: bool = False

    async def __call__(self) -> None:
        return None


def allow(*roles: str, doing: str = "do this", confirm_in_handler: bool = False) -> DependsParam:
    """Declare who may call a route: `@router.post(..., dependencies=[allow("admin")])`, or for
    every route of a router, `APIRouter(..., dependencies=[allow("admin")])`. `doing` ends
    the 403's sentence: "role 'department' may not <doing>". `confirm_in_handler`: see the
    module's docstring."""
    if not roles:
        raise ValueError("allow() needs at least one role")
    marker: DependsParam = Depends(Roles(tuple(roles), doing, confirm_in_handler))
    return marker


@dataclass(frozen=True)
class Rule:
    """What the gate asks of a route's caller: a valid token, and one of `roles` if given."""

    roles: Roles | None


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def rule_of(dependant: Dependant) -> Rule | None:
    """The route's rule, from its dependencies; None for a public route."""
    calls = list(_calls(dependant))
    declared = [c for c in calls if isinstance(c, Roles)]
    if len(declared) > 1:
        raise ValueError(f"{dependant.path}: one allow(...) per route, not {len(declared)}")
    if declared:
        return Rule(declared[0])
    return Rule(None) if credentials in calls else None


def _authenticate(rt: Runtime, token: str) -> Principal:
    with rt.transaction() as session:
        return authenticate(session=session, token=token, now=rt.now())


async def admit(request: Request, rule: Rule) -> Principal:
    """401 without a usable token, 403 for a role the rule does not name; nothing is read
    from the body. The principal is kept for the handler's `Auth`."""
    token = token_of(request)
    rt = runtime(request)
    known = None
    if rule.roles is not None and rule.roles.confirm_in_handler:
        known = cached_principal(rt.db, token, rt.now())
    if known is not None:
        who, generation = known
        request.scope[UNCONFIRMED] = (generation, rule.roles)
    else:
        who = await run_sync(_authenticate, rt, token)
    if rule.roles is not None:
        check_role(who, rule.roles.names, rule.roles.doing)
    request.scope[ADMITTED] = who
    return who


def _declares_only(call: Any) -> bool:
    """A dependency that does nothing when FastAPI calls it: it declares, for the gate
    (`allow`'s roles), for the OpenAPI document (the bearer scheme), or for the route's
    wrapper, which runs it itself (`known_query`)."""
    return isinstance(call, Roles) or call is bearer or call is known_query


def solved(dependant: Dependant) -> Dependant:
    """What FastAPI solves on each call of a route: its dependencies, without those that only
    declare. FastAPI calls every dependency of a route on every call, each with its own
    bookkeeping (its cache key, its security scopes, its parameters); for the submit those
    three were three of its six. The route's own dependant keeps them, for the OpenAPI
    document and for `rule_of`."""
    kept = [solved(sub) for sub in dependant.dependencies if not _declares_only(sub.call)]
    return replace(dependant, dependencies=kept)


# The dependencies the gate hands a route's handler itself, from the request: `Rt` and
# `Auth`, which nearly every route takes. Solved by FastAPI, each cost its bookkeeping (a
# cache key, four kinds of parameters looked up, its scopes): 30-50 µs a call for the two.
_PROVIDED: tuple[tuple[Callable[..., Any], Callable[[Request], Any]], ...] = (
    (provide_runtime, runtime),
    (credentials, credentials_of),
)
_REQUEST = "_huying_request"


def _provided(call: Any) -> Callable[[Request], Any] | None:
    return next((make for dependency, make in _PROVIDED if call is dependency), None)


def _endpoint(dependant: Dependant) -> Dependant:
    """The route's dependant as its handler runs it: `Rt` and `Auth`, when the endpoint
    takes them, filled in from the request rather than solved by FastAPI; and a blocking
    endpoint run on `huying.api.threads`' pool rather than anyio's (half its CPU a call).
    An `async def` endpoint that takes neither is left as it is."""
    call = dependant.call
    blocking = call is not None and not inspect.iscoroutinefunction(call)
    provided = [
        (sub.name, make)
        for sub in dependant.dependencies
        if sub.name is not None and (make := _provided(sub.call)) is not None
    ]
    if call is None or not (blocking or provided):
        return dependant
    own = dependant.request_param_name  # the endpoint's own `request: Request`, if it has one
    key = own or _REQUEST  # where FastAPI hands the wrapper the request, if it needs it

    @functools.wraps(call)
    async def run(**values: Any) -> Any:
        if provided:
            request = values[key] if own else values.pop(key)
            for name, make in provided:
                values[name] = make(request)
        if blocking:
            return await run_sync(call, **values)
        return await call(**values)

    named = {name for name, _ in provided}
    return replace(
        dependant,
        call=run,
        request_param_name=key if provided else own,
        dependencies=[sub for sub in dependant.dependencies if sub.name not in named],
    )


def _being_built(route: APIRoute) -> Any:
    """The route whose handler FastAPI is building: for a route of a router included in the
    app, the context of that inclusion (its dependant has the inclusion's dependencies
    too), as `APIRoute.get_route_handler` finds it; else the route itself. FastAPI names
    that context privately: if it is gone, this is the route, which only costs the
    pruning of the inclusion's dependencies."""
    var = getattr(fastapi.routing, "_effective_route_context_var", None)
    context = var.get() if var is not None else None
    if context is not None and getattr(context, "original_route", None) is route:
        return context
    return route


class GatedRoute(APIRoute):
    """The JSON API's routes. Their caller is admitted (authenticated, role checked) before
    FastAPI reads and validates the body; then, also before the body is read, a query
    parameter the route does not take is refused (`known_query`, which the app includes
    every API router with). Errors raised here are
    answered by the app's exception handlers, as if the handler had raised them."""

    def get_route_handler(self) -> Handler:
        built = _being_built(self)
        declared: Dependant = built.dependant
        built.dependant = _endpoint(solved(declared))
        try:
            handler = super().get_route_handler()
        finally:
            built.dependant = declared
        rule = rule_of(declared)
        checks_query = known_query in _calls(declared)
        if rule is None and not checks_query:
            return handler

        async def gated(request: Request) -> Response:
            if rule is not None:
                await admit(request, rule)
            if checks_query:
                await known_query(request)
            return await handler(request)

        return gated
