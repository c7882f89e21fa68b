"""What the dispatcher is offered for a request: the call list's lead and co-departments of its
category, never the department that has just sent it back."""

from __future__ import annotations

from huying.directory import service
from huying.runtime import Runtime
from tests.conftest import World


def test_a_request_is_offered_its_categorys_lead_and_co_departments(
    rt: Runtime, world: World
) -> None:
    with rt.transaction() as s:
        power = service.dispatch_suggestion(session=s, category_code="POWER")
        other = service.dispatch_suggestion(session=s, category_code="OTHER")
        unknown = service.dispatch_suggestion(session=s, category_code="NOPE")
    assert (power.lead, power.co) == ("GXJ", ["STREET"])
    assert (other.lead, other.co) == ("", [])
    assert (unknown.lead, unknown.co) == ("", [])


def test_the_department_that_sent_a_request_back_is_never_offered_it(
    rt: Runtime, world: World
) -> None:
    with rt.transaction() as s:
        suggested = service.dispatch_suggestions(
            session=s,
            category_codes={1: "POWER", 2: "POWER", 3: "POWER", 4: "HIRE", 5: "NOPE"},
            returned_by={2: "GXJ", 3: "STREET", 5: "GXJ"},
        )
    assert suggested == {
        1: ("GXJ", ["STREET"]),
        2: ("", ["STREET"]),
        3: ("GXJ", []),
        4: ("RSJ", []),
        5: ("", []),
    }
    # the template reads a suggestion as a pair
    lead, co = suggested[1]
    assert (lead, co) == (suggested[1].lead, suggested[1].co)
