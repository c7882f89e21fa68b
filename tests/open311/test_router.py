"""The facade's answers by hand (httpx, in process): Open311's error format and statuses
for every kind of bad call, with nothing written, and the formats' own details."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from huying.auth.models import ApiKey
from huying.directory.models import Category
from huying.runtime import Runtime
from tests.api.support import nothing_written, uscc_check_character
from tests.conftest import World
from tests.open311.conftest import BASE, form, post

JSON = "application/json; charset=utf-8"
XML = "text/xml; charset=utf-8"
READS = ["/services", "/services/POWER", "/requests", "/requests/HY-20261118-000001"]


def errors_of(r: Any, status: int, fmt: str = "json") -> list[str]:
    """The descriptions of an Open311 error answer, checked to be one: this status, the
    format's content type, each error's code the status."""
    assert r.status_code == status, r.text
    if fmt == "json":
        assert r.headers["content-type"] == JSON
        found = r.json()
        assert all(e["code"] == status for e in found), found
        return [e["description"] for e in found]
    assert r.headers["content-type"] == XML
    assert r.text.startswith('<?xml version="1.0" encoding="utf-8"?>\n<errors>')
    root = ET.fromstring(r.content)
    assert root.tag == "errors"
    assert all(e.findtext("code") == str(status) for e in root.iter("error"))
    return [e.findtext("description") or "" for e in root.iter("error")]


# ---- who may call --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_post_without_api_key_is_403_and_writes_nothing(
    client: TestClient, world: World, rt: Runtime, fmt: str
) -> None:
    with nothing_written(rt):
        r = client.post(f"{BASE}/requests.{fmt}", data=form(None))
    assert errors_of(r, 403, fmt) == ["api_key: required: an API key of role integration"]


@pytest.mark.parametrize("path", READS)
def test_reads_need_an_integration_key_unless_public(
    client: TestClient, world: World, key: str, path: str
) -> None:
    post(client, key)
    assert "api_key: required" in errors_of(client.get(f"{BASE}{path}.json"), 403)[0]
    r = client.get(f"{BASE}{path}.json", params={"api_key": key})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("open311", [{"public_reads": True}])
@pytest.mark.parametrize("path", READS)
def test_public_reads_need_no_key_but_a_wrong_one_is_still_403(
    client: TestClient, world: World, key: str, path: str
) -> None:
    post(client, key)
    assert client.get(f"{BASE}{path}.xml").status_code == 200
    r = client.get(f"{BASE}{path}.xml", params={"api_key": "hyk_nope"})
    assert errors_of(r, 403, "xml") == ["api_key: unknown or revoked"]


@pytest.mark.parametrize("who", ["admin", "dispatcher", "gxj"])
def test_a_key_of_another_role_is_403(client: TestClient, world: World, who: str) -> None:
    role = "department" if who == "gxj" else who
    with nothing_written(world.rt):
        r = client.post(f"{BASE}/requests.json", data=form(world.tokens[who]))
    assert errors_of(r, 403) == [f"api_key: a key of role {role!r}; Open311 takes integration keys"]


def test_a_revoked_key_is_403(client: TestClient, world: World, rt: Runtime, key: str) -> None:
    with rt.transaction() as s:
        s.execute(update(ApiKey).where(ApiKey.name == "integration").values(revoked_at=rt.now()))
    r = client.get(f"{BASE}/services.json", params={"api_key": key})
    assert errors_of(r, 403) == ["api_key: unknown or revoked"]


def test_the_key_may_come_in_the_query_of_a_post(client: TestClient, key: str) -> None:
    r = client.post(f"{BASE}/requests.json", params={"api_key": key}, data=form(None))
    assert r.status_code == 200, r.text
    r = client.post(f"{BASE}/requests.json", params={"api_key": key}, data=form(key))
    assert errors_of(r, 400) == ["api_key: sent more than once"]


@pytest.mark.parametrize("open311", [{"jurisdiction_id": "huangpu.gov.cn"}])
def test_the_jurisdiction_may_be_left_out_but_not_mistaken(
    client: TestClient, world: World, key: str
) -> None:
    ok = client.get(f"{BASE}/services.json", params={"api_key": key})
    assert ok.status_code == 200
    named = {"api_key": key, "jurisdiction_id": "huangpu.gov.cn"}
    assert client.get(f"{BASE}/services.json", params=named).status_code == 200
    with nothing_written(world.rt):
        r = client.post(f"{BASE}/requests.json", data=form(key, jurisdiction_id="elsewhere.gov.cn"))
    assert errors_of(r, 404) == [
        "jurisdiction_id: 'elsewhere.gov.cn' not found; this is 'huangpu.gov.cn'"
    ]


# ---- what a POST may not send --------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unknown_or_inactive_service_code_is_404(
    client: TestClient, world: World, rt: Runtime, key: str, fmt: str
) -> None:
    with rt.transaction() as s:
        s.execute(update(Category).where(Category.code == "OTHER").values(active=False))
    for code in ("NOPE", "OTHER"):
        with nothing_written(rt):
            r = client.post(f"{BASE}/requests.{fmt}", data=form(key, service_code=code))
        assert errors_of(r, 404, fmt) == [
            f"service_code: {code!r} not found; GET services lists them"
        ]
        r = client.get(f"{BASE}/services/{code}.{fmt}", params={"api_key": key})
        assert errors_of(r, 404, fmt)[0].startswith("service_code:")
    services = client.get(f"{BASE}/services.json", params={"api_key": key}).json()
    assert "OTHER" not in {s["service_code"] for s in services}


def test_an_enterprise_not_registered_is_400(
    client: TestClient, world: World, rt: Runtime, key: str
) -> None:
    first17 = "91440101MA5CXXXX0"
    uscc = first17 + uscc_check_character(first17)
    with nothing_written(rt):
        r = client.post(
            f"{BASE}/requests.json", data=form(key, **{"attribute[enterprise_uscc]": uscc})
        )
    assert errors_of(r, 400) == [f"attribute[enterprise_uscc]: no enterprise {uscc} is registered"]


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"service_code": ""}, "service_code: required"),
        ({"attribute[enterprise_uscc]": ""}, "attribute[enterprise_uscc]: required"),
        (
            {"attribute[enterprise_uscc]": "91110000600037341X"},
            "attribute[enterprise_uscc]: invalid USCC",
        ),
        ({"attribute[size]": "big"}, "attribute[size]: no such attribute"),
        ({"description": "   "}, "description: required"),
        ({"long": ""}, "lat, long: send both"),
        ({"lat": "", "long": ""}, "lat/long or address_string: one of them is required"),
        ({"lat": "200"}, "lat: Input should be less than or equal to 90"),
        ({"media_url": "javascript:alert(1)"}, "media_url: String should match pattern"),
        ({"zipcode": "510000"}, "zipcode: not a field this call takes"),
        ({"description": "a\x00b"}, "description: a NUL character cannot be stored"),
    ],
)
def test_bad_fields_are_400_naming_them_and_write_nothing(
    client: TestClient, world: World, rt: Runtime, key: str, fields: dict[str, str], says: str
) -> None:
    with nothing_written(rt):
        r = client.post(f"{BASE}/requests.json", data=form(key, **fields))
    found = errors_of(r, 400)
    assert any(d.startswith(says) for d in found), found


def test_every_problem_is_an_error_of_its_own(client: TestClient, key: str) -> None:
    r = client.post(
        f"{BASE}/requests.xml", data={"api_key": key, "service_code": "POWER", "lat": "1"}
    )
    assert errors_of(r, 400, "xml") == [
        "attribute[enterprise_uscc]: required: the enterprise's unified social credit code",
        "description: required: the request's title is its first line",
        "lat, long: send both, or address_string instead",
    ]


@pytest.mark.parametrize(
    ("content", "content_type", "says"),
    [
        (
            b'{"service_code": "POWER"}',
            "application/json",
            "send the fields as application/x-www-form-urlencoded, not application/json",
        ),
        (b"description=%FF", "application/x-www-form-urlencoded", "the fields are not UTF-8"),
        (b"\xff\xfe", "application/x-www-form-urlencoded", "the fields are not UTF-8"),
    ],
)
def test_a_body_that_is_not_a_utf8_form_is_400(
    client: TestClient, rt: Runtime, key: str, content: bytes, content_type: str, says: str
) -> None:
    with nothing_written(rt):
        r = client.post(
            f"{BASE}/requests.json",
            params={"api_key": key},
            content=content,
            headers={"Content-Type": content_type},
        )
    assert errors_of(r, 400) == [says]


def test_a_body_past_the_limit_is_413_in_open311s_format(
    client: TestClient, rt: Runtime, key: str
) -> None:
    """Sent in chunks without a Content-Length: read up to server.max_body, no further."""

    def chunks() -> Iterator[bytes]:
        yield b"description="
        for _ in range(40):  # 40 x 64 KiB: past the 1 MiB limit
            yield b"x" * 65536

    with nothing_written(rt):
        r = client.post(
            f"{BASE}/requests.xml",
            params={"api_key": key},
            content=chunks(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    [says] = errors_of(r, 413, "xml")
    assert "larger than the limit of 1048576 bytes" in says


# ---- GET requests' filters and paths ---------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"limit": "5"}, "limit: not a field this call takes"),
        ({"status": "pending"}, "status: 'pending'; one of open, closed"),
        (
            {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
            "start_date, end_date: at most 90 days apart",
        ),
        ({"start_date": "2026-11-18T00:00:00"}, "start_date: give the time zone"),
        ({"end_date": "soon"}, "end_date: 'soon' is not a w3 date-time"),
        ({"start_date": "2026-01-01", "start_date ": "x"}, "start_date : not a field"),
    ],
)
def test_bad_filters_are_400(
    client: TestClient, key: str, params: dict[str, str], says: str
) -> None:
    r = client.get(f"{BASE}/requests.xml", params={"api_key": key, **params})
    [found] = errors_of(r, 400, "xml")
    assert found.startswith(says), found


def test_a_request_not_found_is_404(client: TestClient, key: str) -> None:
    r = client.get(f"{BASE}/requests/HY-20261118-000042.xml", params={"api_key": key})
    assert errors_of(r, 404, "xml") == ["service_request_id: no request 'HY-20261118-000042'"]


def test_a_format_other_than_json_or_xml_is_404(client: TestClient, key: str) -> None:
    for path in ("/services.csv", "/requests/HY-20261118-000001.html"):
        r = client.get(f"{BASE}{path}", params={"api_key": key})
        [says] = errors_of(r, 404)
        assert says.endswith("not a format; use .json or .xml")


def test_the_format_names_the_last_dot_of_a_code(
    client: TestClient, world: World, key: str
) -> None:
    r = client.get(f"{BASE}/services/POWER.json.xml", params={"api_key": key})
    assert errors_of(r, 404, "xml") == [
        "service_code: 'POWER.json' not found; GET services lists them"
    ]


def test_the_facade_is_not_in_the_json_apis_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/open311")]


def test_a_body_announced_past_the_limit_is_413_unread(client: TestClient, rt: Runtime) -> None:
    with nothing_written(rt):
        r = client.post(
            f"{BASE}/requests.json",
            content=b"description=" + b"x" * (1 << 20),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert r.status_code == 413


def test_paths_naming_nothing_storable_are_404(client: TestClient, key: str) -> None:
    """A NUL or a character no code has, in the path: never a query PostgreSQL refuses."""
    for path in ("/services/PO%00WER.json", "/services/用电.json", "/requests/HY%00-1.json"):
        r = client.get(f"{BASE}{path}", params={"api_key": key})
        [says] = errors_of(r, 404)
        assert says.startswith(("service_code:", "service_request_id:")), says
