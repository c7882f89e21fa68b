from __future__ import annotations

from fastapi import APIRouter, status

from huying.api.deps import Auth, Rt
from huying.directory import repository as repo
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

router = APIRouter(tags=["directory"])
ADMIN = ("admin",)
ENTERPRISE_READERS = ("admin", "integration", "dispatcher", "supervisor")


@router.post("/departments", status_code=status.HTTP_201_CREATED, response_model=DepartmentOut)
def create_department(body: DepartmentIn, rt: Rt, auth: Auth) -> DepartmentOut:
    with rt.transaction() as s:
        auth.principal(s, rt, ADMIN)
        return service.department_out(
            service.upsert_department(session=s, data=body, now=rt.now(), replace=False)
        )


@router.get("/departments", response_model=list[DepartmentOut])
def list_departments(rt: Rt, auth: Auth) -> list[DepartmentOut]:
    with rt.transaction() as s:
        auth.principal(s, rt)
        return [service.department_out(d) for d in repo.departments(s)]


@router.post("/chains", status_code=status.HTTP_201_CREATED, response_model=ChainOut)
def create_chain(body: ChainIn, rt: Rt, auth: Auth) -> ChainOut:
    with rt.transaction() as s:
        auth.principal(s, rt, ADMIN)
        return service.chain_out(service.upsert_chain(session=s, data=body, replace=False))


@router.get("/chains", response_model=list[ChainOut])
def list_chains(rt: Rt, auth: Auth) -> list[ChainOut]:
    with rt.transaction() as s:
        auth.principal(s, rt)
        return [service.chain_out(c) for c in repo.chains(s)]


@router.post("/categories", status_code=status.HTTP_201_CREATED, response_model=CategoryOut)
def create_category(body: CategoryIn, rt: Rt, auth: Auth) -> CategoryOut:
    with rt.transaction() as s:
        auth.principal(s, rt, ADMIN)
        cat = service.upsert_category(
            session=s, data=body, urgencies=rt.settings.urgencies, replace=False
        )
        return service.category_out(cat)


@router.get("/categories", response_model=list[CategoryOut])
def list_categories(rt: Rt, auth: Auth) -> list[CategoryOut]:
    with rt.transaction() as s:
        auth.principal(s, rt)
        return [service.category_out(c) for c in repo.categories(s, active_only=True)]


@router.post("/enterprises", status_code=status.HTTP_201_CREATED, response_model=EnterpriseOut)
def create_enterprise(body: EnterpriseIn, rt: Rt, auth: Auth) -> EnterpriseOut:
    with rt.transaction() as s:
        auth.principal(s, rt, ("admin", "integration"))
        return service.enterprise_out(
            service.upsert_enterprise(session=s, data=body, now=rt.now(), replace=False)
        )


@router.get("/enterprises/{uscc}", response_model=EnterpriseOut)
def get_enterprise(uscc: USCC, rt: Rt, auth: Auth) -> EnterpriseOut:
    with rt.transaction() as s:
        auth.principal(s, rt, ENTERPRISE_READERS)
        return service.enterprise_out(service.get_enterprise(session=s, uscc=uscc))


@router.post("/routing-rules", status_code=status.HTTP_201_CREATED, response_model=RoutingRuleOut)
def create_rule(body: RoutingRuleIn, rt: Rt, auth: Auth) -> RoutingRuleOut:
    with rt.transaction() as s:
        auth.principal(s, rt, ADMIN)
        return service.rule_out(service.upsert_rule(session=s, data=body))


@router.get("/routing-rules", response_model=list[RoutingRuleOut])
def list_rules(rt: Rt, auth: Auth) -> list[RoutingRuleOut]:
    with rt.transaction() as s:
        auth.principal(s, rt, ("admin", "dispatcher", "supervisor"))
        return [service.rule_out(r) for r in repo.routing_rules(s)]
