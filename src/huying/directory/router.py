"""The directory's API: read it (retired entries left out unless `include_retired=true`),
create entries, change them with PATCH (`active: false` retires one, `true` restores it; no
DELETE: what requests name is never deleted), search the enterprises. Every write is audited
as the caller's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from huying import roles
from huying.api.deps import Rt
from huying.auth.deps import Auth
from huying.auth.gate import GatedRoute, allow
from huying.directory import service
from huying.directory.schemas import (
    USCC,
    CategoryIn,
    CategoryOut,
    CategoryPatch,
    ChainIn,
    ChainOut,
    ChainPatch,
    Code,
    DepartmentIn,
    DepartmentOut,
    DepartmentPatch,
    EnterpriseIn,
    EnterpriseOut,
    EnterprisePage,
    EnterprisePatch,
    GridCode,
    RoutingRuleIn,
    RoutingRuleOut,
    RoutingRulePatch,
)

router = APIRouter(tags=["directory"], route_class=GatedRoute)
ADMIN = allow(*roles.ADMINS)
# the directory is reference data for every role that works with requests (not `monitor`)
READERS = allow(*roles.REQUEST_WORKERS)
IncludeRetired = Annotated[
    bool, Query(description="also the retired entries (`active: false`), for admin pages")
]
CodePath = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
RuleId = Annotated[int, Path(ge=1, le=2**62)]


# --- departments -------------------------------------------------------------------


@router.post(
    "/departments",
    status_code=status.HTTP_201_CREATED,
    response_model=DepartmentOut,
    dependencies=[ADMIN],
)
def create_department(body: DepartmentIn, rt: Rt, auth: Auth) -> DepartmentOut:
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        return service.department_out(
            service.create_department(session=s, data=body, actor=who.id, now=rt.now())
        )


@router.get("/departments", dependencies=[READERS], response_model=list[DepartmentOut])
def list_departments(
    rt: Rt, auth: Auth, include_retired: IncludeRetired = False
) -> list[DepartmentOut]:
    with rt.transaction() as s:
        auth.principal(s, rt)
        found = service.departments(session=s, active_only=not include_retired)
        return [service.department_out(d) for d in found]


@router.patch("/departments/{code}", response_model=DepartmentOut, dependencies=[ADMIN])
def change_department(code: CodePath, body: DepartmentPatch, rt: Rt, auth: Auth) -> DepartmentOut:
    """Change the fields given. `active: false` retires the department: it can no longer be
    chosen (dispatch, reassignment, delegation, routing, new directory entries), while the
    requests it leads keep it; refused (409 `has_active_children`) while an active
    department is below it."""
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        dept = service.update_department(
            session=s, code=code, changes=body, actor=who.id, now=rt.now()
        )
        return service.department_out(dept)


# --- chains ------------------------------------------------------------------------


@router.post(
    "/chains", status_code=status.HTTP_201_CREATED, response_model=ChainOut, dependencies=[ADMIN]
)
def create_chain(body: ChainIn, rt: Rt, auth: Auth) -> ChainOut:
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        return service.chain_out(
            service.create_chain(session=s, data=body, actor=who.id, now=rt.now())
        )


@router.get("/chains", dependencies=[READERS], response_model=list[ChainOut])
def list_chains(rt: Rt, auth: Auth, include_retired: IncludeRetired = False) -> list[ChainOut]:
    with rt.transaction() as s:
        auth.principal(s, rt)
        return [
            service.chain_out(c) for c in service.chains(session=s, active_only=not include_retired)
        ]


@router.patch("/chains/{code}", response_model=ChainOut, dependencies=[ADMIN])
def change_chain(code: CodePath, body: ChainPatch, rt: Rt, auth: Auth) -> ChainOut:
    """Change the fields given. A retired chain stays on its enterprises and rules; no new
    enterprise or rule may name it."""
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        chain = service.update_chain(session=s, code=code, changes=body, actor=who.id, now=rt.now())
        return service.chain_out(chain)


# --- categories --------------------------------------------------------------------


@router.post(
    "/categories",
    status_code=status.HTTP_201_CREATED,
    response_model=CategoryOut,
    dependencies=[ADMIN],
)
def create_category(body: CategoryIn, rt: Rt, auth: Auth) -> CategoryOut:
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        cat = service.create_category(
            session=s, data=body, urgencies=rt.settings.urgencies, actor=who.id, now=rt.now()
        )
        return service.category_out(cat)


@router.get("/categories", dependencies=[READERS], response_model=list[CategoryOut])
def list_categories(
    rt: Rt, auth: Auth, include_retired: IncludeRetired = False
) -> list[CategoryOut]:
    """The call list; retired categories (refused at submit) only with include_retired."""
    with rt.transaction() as s:
        auth.principal(s, rt)
        found = service.categories(session=s, active_only=not include_retired)
        return [service.category_out(c) for c in found]


@router.patch("/categories/{code}", response_model=CategoryOut, dependencies=[ADMIN])
def change_category(code: CodePath, body: CategoryPatch, rt: Rt, auth: Auth) -> CategoryOut:
    """Change the fields given. A retired category leaves the call list and is refused at
    submit; its requests keep it."""
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        cat = service.update_category(
            session=s,
            code=code,
            changes=body,
            urgencies=rt.settings.urgencies,
            actor=who.id,
            now=rt.now(),
        )
        return service.category_out(cat)


# --- enterprises -------------------------------------------------------------------


@router.post(
    "/enterprises",
    status_code=status.HTTP_201_CREATED,
    response_model=EnterpriseOut,
    dependencies=[allow(*roles.ENTERPRISE_WRITERS)],
)
def create_enterprise(body: EnterpriseIn, rt: Rt, auth: Auth) -> EnterpriseOut:
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        return service.enterprise_out(
            service.create_enterprise(
                session=s,
                data=body,
                grid_code_pattern=rt.settings.directory.grid_code_pattern,
                actor=who.id,
                now=rt.now(),
            )
        )


@router.get(
    "/enterprises",
    response_model=EnterprisePage,
    dependencies=[allow(*roles.ENTERPRISE_READERS)],
)
def find_enterprises(
    rt: Rt,
    auth: Auth,
    q: Annotated[
        str | None,
        Query(max_length=200, description="the start of a USCC, or words of the name (any case)"),
    ] = None,
    chain: Annotated[Code | None, Query(description="chain code")] = None,
    grid_prefix: Annotated[GridCode | None, Query(description="the start of the grid code")] = None,
    active: Annotated[
        bool | None,
        Query(description="true: active only, false: retired only (default: active only)"),
    ] = None,
    include_retired: IncludeRetired = False,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> EnterprisePage:
    """Enterprises by registration order, a page at a time (`next_cursor` for the next)."""
    after = service.enterprises_after(cursor)
    wanted = active if active is not None else None if include_retired else True
    with rt.transaction() as s:
        auth.principal(s, rt)
        rows, next_cursor = service.find_enterprises(
            session=s,
            q=q,
            chain=chain,
            grid_prefix=grid_prefix,
            active=wanted,
            after=after,
            limit=limit,
        )
        return EnterprisePage(
            items=[service.enterprise_out(e) for e in rows], next_cursor=next_cursor
        )


@router.get(
    "/enterprises/{uscc}",
    response_model=EnterpriseOut,
    dependencies=[allow(*roles.ENTERPRISE_READERS)],
)
def get_enterprise(uscc: USCC, rt: Rt, auth: Auth) -> EnterpriseOut:
    """One enterprise, retired or not (`active`)."""
    with rt.transaction() as s:
        auth.principal(s, rt)
        return service.enterprise_out(service.get_enterprise(session=s, uscc=uscc))


@router.patch(
    "/enterprises/{uscc}",
    response_model=EnterpriseOut,
    dependencies=[allow(*roles.ENTERPRISE_WRITERS)],
)
def change_enterprise(uscc: USCC, body: EnterprisePatch, rt: Rt, auth: Auth) -> EnterpriseOut:
    """Change the fields given. An admin changes any enterprise; an integration only one it
    registered with the same key, and never `active`. A retired enterprise is refused at
    submit; its requests keep it."""
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        service.may_change_enterprise(
            session=s, uscc=uscc, actor=who.id, role=who.role, changes=body
        )
        ent = service.update_enterprise(
            session=s,
            uscc=uscc,
            changes=body,
            grid_code_pattern=rt.settings.directory.grid_code_pattern,
            actor=who.id,
            now=rt.now(),
        )
        return service.enterprise_out(ent)


# --- routing rules -----------------------------------------------------------------


@router.post(
    "/routing-rules",
    status_code=status.HTTP_201_CREATED,
    response_model=RoutingRuleOut,
    dependencies=[ADMIN],
)
def create_rule(body: RoutingRuleIn, rt: Rt, auth: Auth) -> RoutingRuleOut:
    """A new rule; 409 if a rule has the same category, grid_prefix and chain (PATCH it)."""
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        return service.rule_out(
            service.create_rule(
                session=s,
                data=body,
                grid_code_pattern=rt.settings.directory.grid_code_pattern,
                actor=who.id,
                now=rt.now(),
            )
        )


@router.get(
    "/routing-rules",
    response_model=list[RoutingRuleOut],
    dependencies=[allow(*roles.COORDINATORS)],
)
def list_rules(rt: Rt, auth: Auth, include_retired: IncludeRetired = False) -> list[RoutingRuleOut]:
    with rt.transaction() as s:
        auth.principal(s, rt)
        found = service.routing_rules(session=s, active_only=not include_retired)
        return [service.rule_out(r) for r in found]


@router.patch("/routing-rules/{rule_id}", response_model=RoutingRuleOut, dependencies=[ADMIN])
def change_rule(rule_id: RuleId, body: RoutingRulePatch, rt: Rt, auth: Auth) -> RoutingRuleOut:
    """Change the fields given, the condition too (409 if another rule has it). A retired
    rule never matches."""
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        found = service.update_rule(
            session=s,
            rule_id=rule_id,
            changes=body,
            grid_code_pattern=rt.settings.directory.grid_code_pattern,
            actor=who.id,
            now=rt.now(),
        )
        return service.rule_out(found)
