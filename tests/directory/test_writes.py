"""Directory writes outside `huying load`: the API's create endpoints and the service."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from huying.directory import service
from huying.directory.schemas import EnterpriseIn, RoutingRuleIn
from huying.errors import InvalidInput
from huying.runtime import Runtime
from tests.api.support import assert_problem, nothing_written
from tests.conftest import World

UNREGISTERED = "91440101713472665D"


@pytest.mark.parametrize(
    ("path", "body", "fragments"),
    [
        pytest.param(
            "/api/v1/enterprises",
            {"uscc": UNREGISTERED, "name": "x", "grid_code": "44011201200100"},
            ["grid_code", "44011201200100", r"\d{15}"],
            id="enterprise-14-digits",
        ),
        pytest.param(
            "/api/v1/routing-rules",
            {"department": "GXJ", "grid_prefix": "4401120120010011"},
            ["grid_prefix", "4401120120010011"],
            id="rule-prefix-16-digits",
        ),
    ],
)
def test_the_api_refuses_grid_codes_off_the_pattern(
    client: TestClient,
    world: World,
    rt: Runtime,
    path: str,
    body: dict[str, Any],
    fragments: list[str],
) -> None:
    with nothing_written(rt):
        assert_problem(client.post(path, json=body, headers=world.h("admin")), 422, *fragments)


def test_the_api_takes_a_grid_code_and_a_prefix_on_the_pattern(
    client: TestClient, world: World
) -> None:
    admin = world.h("admin")
    body = {"uscc": UNREGISTERED, "name": "x", "grid_code": "440112014001001"}
    assert client.post("/api/v1/enterprises", json=body, headers=admin).status_code == 201
    rule = {"department": "GXJ", "grid_prefix": "440112014"}
    assert client.post("/api/v1/routing-rules", json=rule, headers=admin).status_code == 201


def test_the_service_checks_the_pattern_it_is_given(rt: Runtime, world: World) -> None:
    pattern = r"GZ\d{4}"
    with rt.transaction() as s:
        saved = service.save_enterprise(
            session=s,
            data=EnterpriseIn(uscc=UNREGISTERED, name="x", grid_code="GZ0001"),
            now=rt.now(),
            grid_code_pattern=pattern,
        )
        assert (saved.outcome, saved.item.grid_code) == ("created", "GZ0001")
        rule = RoutingRuleIn(department="GXJ", grid_prefix="GZ00")
        assert service.save_rule(session=s, data=rule, grid_code_pattern=pattern).outcome == (
            "created"
        )
        with pytest.raises(InvalidInput, match="grid_code"):
            service.save_enterprise(
                session=s,
                data=EnterpriseIn(uscc=UNREGISTERED, name="x", grid_code="440112014001001"),
                now=rt.now(),
                grid_code_pattern=pattern,
            )
        with pytest.raises(InvalidInput, match="grid_prefix"):
            service.save_rule(
                session=s,
                data=RoutingRuleIn(department="GXJ", grid_prefix="4401"),
                grid_code_pattern=pattern,
            )


def test_saving_again_says_what_changed(rt: Runtime, world: World) -> None:
    with rt.transaction() as s:
        data = EnterpriseIn(uscc=UNREGISTERED, name="x", grid_code="440112014001001")
        assert service.save_enterprise(session=s, data=data, now=rt.now()).outcome == "created"
        assert service.save_enterprise(session=s, data=data, now=rt.now()).outcome == "unchanged"
        renamed = EnterpriseIn(uscc=UNREGISTERED, name="y")
        saved = service.save_enterprise(session=s, data=renamed, now=rt.now())
        assert (saved.outcome, saved.item.name, saved.item.grid_code) == (
            "updated",
            "y",
            "440112014001001",
        )
