"""Reading Open311's fields, without a server: forms, lists, dates and periods, and a POST's
fields as a submit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from huying.errors import InvalidInput
from huying.open311 import forms
from tests.conftest import USCC_A

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)
FORM = "application/x-www-form-urlencoded"


def fields(**given: str) -> dict[str, str]:
    base = {
        "service_code": "POWER",
        "attribute[enterprise_uscc]": USCC_A,
        "description": "用电增容",
        "address_string": "开创大道 1 号",
    }
    base.update(given)
    return {k: v for k, v in base.items() if v}


def problems_of(given: dict[str, str]) -> list[str]:
    with pytest.raises(InvalidInput) as raised:
        forms.submit_body(given)
    found: list[str] = raised.value.extra["problems"]
    return found


# ---- forms and fields ------------------------------------------------------------------------


def test_a_form_is_read_as_utf8_pairs_in_order() -> None:
    body = "service_code=POWER&attribute%5Benterprise_uscc%5D=X&description=%E7%94%A8%E7%94%B5"
    assert forms.form_pairs(body.encode(), f"{FORM}; charset=utf-8") == [
        ("service_code", "POWER"),
        ("attribute[enterprise_uscc]", "X"),
        ("description", "用电"),
    ]


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (b'{"service_code": "POWER"}', "application/json", "application/x-www-form-urlencoded"),
        (b"service_code=POWER", None, "no Content-Type"),
        (b"description=%FF%FE", FORM, "not UTF-8"),
        (b"description=\xff", FORM, "not UTF-8"),
        (b"&".join(b"a%d=1" % i for i in range(101)), FORM, "more than 100 fields"),
    ],
)
def test_what_is_not_a_utf8_form_is_refused(
    body: bytes, content_type: str | None, says: str
) -> None:
    with pytest.raises(InvalidInput, match=says):
        forms.form_pairs(body, content_type)


def test_fields_leave_out_empty_ones_and_join_list_fields() -> None:
    given = forms.fields(
        [("status", "open"), ("service_code", ""), ("status", " closed "), ("api_key", "k")],
        allowed=forms.QUERY_FIELDS,
    )
    assert given == {"status": "open,closed", "api_key": "k"}


@pytest.mark.parametrize(
    ("pairs", "says"),
    [
        ([("api_key", "a"), ("api_key", "b")], "api_key: sent more than once"),
        ([("limit", "5")], "limit: not a field this call takes"),
        ([("attribute[colour]", "red")], "attribute[colour]: no such attribute"),
        ([("description", "a\x00b")], "description: a NUL character"),
        ([("a\x00", "b")], "a\\0: a NUL character"),
    ],
)
def test_fields_refuse_repeats_unknown_names_and_nul(
    pairs: list[tuple[str, str]], says: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        forms.fields(pairs, allowed=forms.POST_FIELDS)
    assert raised.value.detail.startswith(says), raised.value.detail


# ---- GET requests' filters -----------------------------------------------------------------


def test_without_dates_the_period_is_the_last_90_days() -> None:
    query = forms.request_query({}, tz=SHANGHAI, now=NOW)
    assert (query.start, query.end) == (NOW - timedelta(days=90), None)
    assert query.numbers == [] and query.service_codes == [] and not query.statuses


def test_one_date_gives_90_days_from_or_up_to_it() -> None:
    start = forms.request_query({"start_date": "2026-01-01T00:00:00Z"}, tz=SHANGHAI, now=NOW)
    assert start.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert start.end == datetime(2026, 4, 1, tzinfo=UTC)
    end = forms.request_query({"end_date": "2026-04-01T08:00:00+08:00"}, tz=SHANGHAI, now=NOW)
    assert (end.start, end.end) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 4, 1, tzinfo=UTC),
    )


def test_a_bare_date_is_midnight_in_the_calendars_zone() -> None:
    query = forms.request_query(
        {"start_date": "2026-11-01", "end_date": "2026-11-30"}, tz=SHANGHAI, now=NOW
    )
    assert query.start == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
    assert query.end == datetime(2026, 11, 29, 16, 0, tzinfo=UTC)


def test_lists_are_split_deduplicated_and_normalised() -> None:
    query = forms.request_query(
        {
            "service_request_id": "hy-20261118-000001, HY-20261118-000002,HY-20261118-000001",
            "service_code": "POWER,HIRE,",
            "status": "OPEN",
        },
        tz=SHANGHAI,
        now=NOW,
    )
    assert query.numbers == ["HY-20261118-000001", "HY-20261118-000002"]
    assert query.service_codes == ["POWER", "HIRE"]
    assert query.statuses == {"open"}


@pytest.mark.parametrize(
    ("given", "says"),
    [
        (
            {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-04-01T00:00:01Z"},
            "at most 90 days apart",
        ),
        ({"start_date": "2026-02-01", "end_date": "2026-01-01"}, "end_date: before start_date"),
        ({"start_date": "2026-01-01T00:00:00"}, "start_date: give the time zone"),
        ({"end_date": "yesterday"}, "end_date: 'yesterday' is not a w3 date-time"),
        ({"start_date": "1969-12-31T00:00:00Z"}, "a year between 1970 and 9000"),
        ({"status": "open,pending"}, "status: 'pending'; one of open, closed"),
        ({"service_code": "POWER;DROP"}, "service_code: 'POWER;DROP' is not a service code"),
        ({"service_request_id": "HY 1"}, "service_request_id: 'HY 1' is not a request number"),
        ({"service_request_id": ",".join(f"HY-{i}" for i in range(201))}, "at most 200"),
    ],
)
def test_bad_filters_are_refused(given: dict[str, str], says: str) -> None:
    with pytest.raises(InvalidInput, match=says.replace("(", r"\(")):
        forms.request_query(given, tz=SHANGHAI, now=NOW)


def test_exactly_90_days_is_allowed() -> None:
    query = forms.request_query(
        {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-04-01T00:00:00Z"},
        tz=SHANGHAI,
        now=NOW,
    )
    assert query.end is not None and query.start is not None
    assert query.end - query.start == timedelta(days=90)


# ---- POST requests as a submit ---------------------------------------------------------------


def test_a_post_becomes_a_submit() -> None:
    body = forms.submit_body(
        fields(
            description="\n  新厂房用电增容，二期厂房投产需要增容至 2000 kVA，请协调供电方案  \n附：负荷清单",
            address_string="",
            lat="23.1688",
            long="113.4512",
            first_name="三",
            last_name="张",
            phone="13800000000",
            media_url="https://grid.example.com/1.jpg",
            **{"attribute[enterprise_uscc]": USCC_A.lower()},
        )
    )
    assert body.enterprise_uscc == USCC_A
    assert body.category == "POWER"
    assert body.title == "新厂房用电增容，二期厂房投产需要增容至 2000 kVA，请"  # 30 characters
    assert body.description.startswith("新厂房用电增容")
    assert (body.lat, body.long, body.address) == (23.1688, 113.4512, None)
    assert body.contact is not None
    assert (body.contact.name, body.contact.phone) == ("张三", "13800000000")
    assert body.media_urls == ["https://grid.example.com/1.jpg"]
    assert body.source == "api"


def test_a_western_name_keeps_its_order_and_no_name_no_contact() -> None:
    named = forms.submit_body(fields(first_name="John", last_name="Smith"))
    assert named.contact is not None and named.contact.name == "John Smith"
    alone = forms.submit_body(fields(last_name="王"))
    assert alone.contact is not None and alone.contact.name == "王"
    assert forms.submit_body(fields()).contact is None


def test_everything_missing_is_named_at_once() -> None:
    assert problems_of({"address_id": "545483"}) == [
        "service_code: required (GET services lists them)",
        "attribute[enterprise_uscc]: required: the enterprise's unified social credit code",
        "description: required: the request's title is its first line",
        "lat/long or address_string: one of them is required (address_id is not used here)",
    ]


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"address_string": "", "lat": "23.1"}, "lat, long: send both, or address_string instead"),
        ({"lat": "north", "long": "113"}, "lat: 'north' is not a number of degrees"),
        ({"lat": "nan", "long": "113"}, "lat: 'nan' is not a number of degrees"),
        ({"lat": "23", "long": "inf"}, "long: 'inf' is not a number of degrees"),
        ({"lat": "91", "long": "113"}, "lat: Input should be less than or equal to 90"),
        (
            {"attribute[enterprise_uscc]": "91110000600037341X"},
            "attribute[enterprise_uscc]: invalid USCC",
        ),
        ({"service_code": "用电"}, "service_code: String should match pattern"),
        ({"description": "x" * 4001}, "description: String should have at most 4000 characters"),
        ({"media_url": "ftp://example.com/1.jpg"}, "media_url: String should match pattern"),
        ({"phone": "1" * 51}, "phone: String should have at most 50 characters"),
        ({"first_name": "名" * 101}, "first_name, last_name: String should have at most 100"),
        ({"address_string": "路" * 301}, "address_string: String should have at most 300"),
    ],
)
def test_each_wrong_field_is_named_as_sent(given: dict[str, str], says: str) -> None:
    problems = problems_of(fields(**given))
    assert any(p.startswith(says) for p in problems), problems
