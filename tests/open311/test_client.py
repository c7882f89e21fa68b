"""The facade driven by a real Open311 GeoReport v2 client from PyPI (georeport), over HTTP
against uvicorn on loopback, in JSON and in XML.

georeport reads only (it has no POST) and sends no `api_key` on its reads, so its reads
run with `open311.public_reads: true`, and the requests they read are submitted with httpx,
form-encoded as GeoReport v2 says. With reads not public the same client meets the 403."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from georeport import GeoReport

import requests
from huying.clock import FrozenClock
from huying.runtime import Runtime
from tests.conftest import USCC_B, World
from tests.open311.conftest import form, request_id

PUBLIC = [{"public_reads": True, "jurisdiction_id": "huangpu.gov.cn"}]
FORMATS = ["json", "xml"]
# httpx gives up after 5 s by default; uvicorn's thread, starved by the other xdist worker's
# processes on 2 cores, once answered later than that (georeport's `requests` waits). A slow
# answer is not what these tests check.
TIMEOUT = 30.0


def submit(live: str, key: str, **fields: str) -> str:
    """POST requests.json with httpx (georeport cannot post); the new request's number."""
    r = httpx.post(f"{live}/requests.json", data=form(key, **fields), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    [created] = r.json()
    number: str = created["service_request_id"]
    return number


def items(found: Any) -> list[dict[str, Any]]:
    """georeport's XML answers give one item as a dict (xmltodict), several as a list."""
    if found is None:
        return []
    return found if isinstance(found, list) else [found]


def scalar(value: Any) -> str:
    """A value as both formats compare: XML has text only (an empty element is None)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@pytest.mark.parametrize("open311", PUBLIC)
@pytest.mark.parametrize("fmt", FORMATS)
def test_services_are_the_active_call_list(live: str, world: World, fmt: str) -> None:
    client = GeoReport(live, jurisdiction="huangpu.gov.cn", output_format=fmt)
    services = {s["service_code"]: s for s in items(client.get_service_list())}
    assert set(services) == {"POWER", "HIRE", "OTHER", "OUTAGE"}
    power = services["POWER"]
    assert power["service_name"] == "用电保障"
    assert power["group"] == "要素保障"
    assert scalar(power["metadata"]) == "true"
    assert power["type"] == "realtime"
    assert scalar(power["keywords"]) == ""


@pytest.mark.parametrize("open311", PUBLIC)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_service_asks_for_the_enterprise(live: str, world: World, fmt: str) -> None:
    definition = GeoReport(live, output_format=fmt).get_service_definition("HIRE")
    assert definition["service_code"] == "HIRE"
    attributes = definition["attributes"]
    [attribute] = attributes if fmt == "json" else items(attributes["attribute"])
    assert attribute["code"] == "enterprise_uscc"
    assert scalar(attribute["required"]) == "true"
    assert scalar(attribute["variable"]) == "true"
    assert attribute["datatype"] == "string"
    assert scalar(attribute["order"]) == "1"
    assert "统一社会信用代码" in attribute["description"]


@pytest.mark.parametrize("open311", PUBLIC)
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_posted_request_is_read_back(live: str, key: str, fmt: str) -> None:
    number = submit(live, key)
    found = GeoReport(live, jurisdiction="huangpu.gov.cn", output_format=fmt)
    request = found.get_service_request(number)
    assert request["service_request_id"] == number
    assert request["status"] == "open"
    assert request["service_code"] == "POWER"
    assert request["service_name"] == "用电保障"
    assert request["description"].startswith("新厂房用电增容\n二期厂房")
    assert request["agency_responsible"] == "区工信局"
    assert "待签收" in request["service_notice"]
    # 2026-11-18 10:00 in Shanghai; the sign deadline (1 working day) is due the next evening
    assert request["requested_datetime"] == "2026-11-18T10:00:00+08:00"
    assert request["updated_datetime"] == "2026-11-18T10:00:00+08:00"
    assert request["expected_datetime"] == "2026-11-19T17:30:00+08:00"
    assert float(request["lat"]) == 23.1688 and float(request["long"]) == 113.4512
    assert request["media_url"] == "https://grid.example.com/photos/1.jpg"
    assert scalar(request["status_notes"]) == ""
    assert scalar(request["address"]) == ""


@pytest.mark.parametrize("open311", PUBLIC)
@pytest.mark.parametrize("fmt", FORMATS)
def test_lists_filter_by_number_code_status_and_period(
    live: str, key: str, rt: Runtime, clock: FrozenClock, world: World, fmt: str
) -> None:
    old = submit(live, key, service_code="HIRE", lat="", long="", address_string="萝岗区开创大道")
    clock.advance(timedelta(days=100))
    power = submit(live, key)
    hire = submit(live, key, service_code="HIRE", **{"attribute[enterprise_uscc]": USCC_B})
    closed = submit(live, key)
    _close(live, world, rt, closed)
    client = GeoReport(live, output_format=fmt)

    def numbers(**filters: str) -> list[str]:
        return [r["service_request_id"] for r in items(client.get_service_requests(**filters))]

    assert numbers() == [closed, hire, power]  # the last 90 days, newest first
    assert numbers(service_code="HIRE") == [hire]
    assert numbers(service_code="HIRE,POWER", status="open") == [hire, power]
    assert numbers(status="closed") == [closed]
    assert numbers(start_date="2026-11-01T00:00:00+08:00", end_date="2026-12-01T00:00:00Z") == [old]
    assert numbers(end_date="2026-11-19T00:00:00+08:00") == [old]
    # service_request_id overrides every other filter
    assert numbers(service_request_id=f"{old},{power}", status="closed") == [power, old]
    [done] = items(client.get_service_requests(service_request_id=closed))
    assert done["status"] == "closed"
    assert done["status_notes"] == "已协调供电公司完成增容。"


def _close(live: str, world: World, rt: Runtime, number: str) -> None:
    """Sign, reply and rate through the JSON API of the same server."""
    rid = request_id(rt, number)
    api = live.removesuffix("/open311/v2") + "/api/v1/requests"
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("gxj", "sign", {}),
        ("gxj", "reply", {"content": "已协调供电公司完成增容。", "resolved": True}),
        ("integration", "rate", {"rating": "satisfied", "resolved": True}),
    ]
    for who, action, body in steps:
        r = httpx.post(
            f"{api}/{rid}/actions/{action}", json=body, headers=world.h(who), timeout=TIMEOUT
        )
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("fmt", FORMATS)
def test_without_public_reads_the_client_meets_403(live: str, world: World, fmt: str) -> None:
    client = GeoReport(live, output_format=fmt)
    with pytest.raises(requests.HTTPError) as raised:
        client.get_service_list()
    assert raised.value.response is not None and raised.value.response.status_code == 403
    r = httpx.get(f"{live}/services.{fmt}", timeout=TIMEOUT)
    assert r.status_code == 403
    assert "api_key" in r.text


@pytest.mark.parametrize("open311", PUBLIC)
@pytest.mark.parametrize("fmt", FORMATS)
def test_unknown_service_code_and_request_are_404(live: str, world: World, fmt: str) -> None:
    client = GeoReport(live, output_format=fmt)
    for call, argument in (
        (client.get_service_definition, "NOPE"),
        (client.get_service_request, "HY-20261118-999999"),
    ):
        with pytest.raises(requests.HTTPError) as raised:
            call(argument)
        assert raised.value.response is not None
        assert raised.value.response.status_code == 404


@pytest.mark.parametrize("open311", PUBLIC)
def test_another_jurisdiction_is_404(live: str, world: World) -> None:
    with pytest.raises(requests.HTTPError) as raised:
        GeoReport(live, jurisdiction="elsewhere.gov.cn").get_service_list()
    assert raised.value.response is not None
    assert raised.value.response.status_code == 404
    assert raised.value.response.json() == [
        {
            "code": 404,
            "description": "jurisdiction_id: 'elsewhere.gov.cn' not found; this is 'huangpu.gov.cn'",
        }
    ]


@pytest.mark.parametrize("open311", PUBLIC)
def test_a_post_without_the_attribute_is_400_and_writes_nothing(live: str, key: str) -> None:
    r = httpx.post(
        f"{live}/requests.xml",
        data=form(key, **{"attribute[enterprise_uscc]": ""}),
        timeout=TIMEOUT,
    )
    assert r.status_code == 400
    assert r.headers["content-type"] == "text/xml; charset=utf-8"
    assert "<code>400</code>" in r.text and "attribute[enterprise_uscc]: required" in r.text
    assert GeoReport(live).get_service_requests() == []
