from __future__ import annotations

from fastapi import APIRouter, status

from huying import roles
from huying.api.deps import Rt
from huying.auth.deps import Auth
from huying.auth.gate import GatedRoute, allow
from huying.directory import service
from huying.directory.schemas import (
    USCC,
    CategoryIn,
    CategoryOut,
    ChainIn,
    ChainOut,
    DepartmentIn,
    DepartmentOut,
    EnterpriseIn,
    EnterpriseOut,
    RoutingRuleIn,
    RoutingRuleOut,
)

router = APIRouter(tags=["directory"], route_class=GatedRoute)
ADMIN = allow(*roles.ADMINS)
# the directory is reference data for every role that works with requests (not `monitor`)
READERS = allow(*roles.REQUEST_WORKERS)


@router.post(
    "/departments",
    status_code=status.HTTP_201_CREATED,
    response_model=DepartmentOut,
    dependencies=[ADMIN],
)
def create_department(body: DepartmentIn, rt: Rt, auth: Auth) -> DepartmentOut:
    with rt.transaction() as s:
        auth.principal(s, rt)
        return service.department_out(
            service.upsert_department(session=s, data=body, now=rt.now(), replace=False)
        )


@router.get("/departments", dependencies=[READERS], response_model=list[DepartmentOut])
def list_departments(rt: Rt, auth: Auth) -> list[DepartmentOut]:
    with rt.transaction() as s:
        auth.principal(s, rt)
        return [service.department_out(d) for d in service.departments(session=s)]


@router.post(
    "/chains", status_code=status.HTTP_201_CREATED, response_model=ChainOut, dependencies=[ADMIN]
)
def create_chain(body: ChainIn, rt: Rt, auth: Auth) -> ChainOut:
    with rt.transaction() as s:
        auth.principal(s, rt)
        return service.chain_out(service.upsert_chain(session=s, data=body, replace=False))


@router.get("/chains", dependencies=[READERS], response_model=list[ChainOut])
def list_chains(rt: Rt, auth: Auth) -> list[ChainOut]:
    with rt.transaction() as s:
        auth.principal(s, rt)
        return [service.chain_out(c) for c in service.chains(session=s)]


@router.post(
    "/categories",
    status_code=status.HTTP_201_CREATED,
    response_model=CategoryOut,
    dependencies=[ADMIN],
)
def create_category(body: CategoryIn, rt: Rt, auth: Auth) -> CategoryOut:
    with rt.transaction() as s:
        auth.principal(s, rt)
        cat = service.upsert_category(
            session=s, data=body, urgencies=rt.settings.urgencies, replace=False
        )
        return service.category_out(cat)


@router.get("/categories", dependencies=[READERS], response_model=list[CategoryOut])
def list_categories(rt: Rt, auth: Auth) -> list[CategoryOut]:
    with rt.transaction() as s:
        auth.principal(s, rt)
        return [service.category_out(c) for c in service.categories(session=s, active_only=True)]


@router.post(
    "/enterprises",
    status_code=status.HTTP_201_CREATED,
    response_model=EnterpriseOut,
    dependencies=[allow(*roles.ENTERPRISE_WRITERS)],
)
def create_enterprise(body: EnterpriseIn, rt: Rt, auth: Auth) -> EnterpriseOut:
    with rt.transaction() as s:
        auth.principal(s, rt)
        return service.enterprise_out(
            service.upsert_enterprise(
                session=s,
                data=body,
                now=rt.now(),
                replace=False,
                grid_code_pattern=rt.settings.directory.grid_code_pattern,
            )
        )


@router.get(
    "/enterprises/{uscc}",
    response_model=EnterpriseOut,
    dependencies=[allow(*roles.ENTERPRISE_READERS)],
)
def get_enterprise(uscc: USCC, rt: Rt, auth: Auth) -> EnterpriseOut:
    with rt.transaction() as s:
        auth.principal(s, rt)
        return service.enterprise_out(service.get_enterprise(session=s, uscc=uscc))


@router.post(
    "/routing-rules",
    status_code=status.HTTP_201_CREATED,
    response_model=RoutingRuleOut,
    dependencies=[ADMIN],
)
def create_rule(body: RoutingRuleIn, rt: Rt, auth: Auth) -> RoutingRuleOut:
    with rt.transaction() as s:
        auth.principal(s, rt)
        return service.rule_out(
            service.upsert_rule(
                session=s, data=body, grid_code_pattern=rt.settings.directory.grid_code_pattern
            )
        )


@router.get(
    "/routing-rules",
    response_model=list[RoutingRuleOut],
    dependencies=[allow(*roles.COORDINATORS)],
)
def list_rules(rt: Rt, auth: Auth) -> list[RoutingRuleOut]:
    with rt.transaction() as s:
        auth.principal(s, rt)
        return [service.rule_out(r) for r in service.routing_rules(session=s)]
