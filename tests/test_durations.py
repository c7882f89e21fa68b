import pytest

from huying.durations import Duration, DurationKind, make_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30 seconds", 30),
        ("1 second", 1),
        ("15 minutes", 900),
        ("1 minute", 60),
        ("2 hours", 7200),
        ("3 days", 3 * 86400),
        ("1 week", 7 * 86400),
        ("2 weeks", 14 * 86400),
        ("1.5 hours", 5400),
        ("  2 HOURS  ", 7200),
        ("PT2S", 2),
        ("P1DT2H", 86400 + 7200),
        ("pt1.5h", 5400),
        ("P1W", 7 * 86400),
        ("PT0S", 0),
    ],
)
def test_parse_calendar_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == Duration("calendar", seconds, 0, text.strip())


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("4 working hours", 4 * 3600),
        ("1 working hour", 3600),
        ("1.5 Working Hours", 5400),
        ("30 working minutes", 1800),
    ],
)
def test_parse_working_hours(text: str, seconds: float) -> None:
    assert parse_duration(text) == Duration("working_hours", seconds, 0, text)


@pytest.mark.parametrize(
    ("text", "days"), [("5 working days", 5), ("1 working day", 1), ("0 working days", 0)]
)
def test_parse_working_days(text: str, days: int) -> None:
    assert parse_duration(text) == Duration("working_days", 0.0, days, text)


def test_str_is_the_original_text() -> None:
    assert str(parse_duration("5 working days")) == "5 working days"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "5 parsecs",
        "-1 hours",
        "1.5 working days",
        "working days",
        "hours",
        "1 working week",
        "P1M",
        "P1Y",
        "-PT1S",
        "P-1D",
        "PT",
        "P",
    ],
)
def test_parse_rejects_bad_text(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as error:
        parse_duration(text)
    assert repr(text) in str(error.value)


@pytest.mark.parametrize(
    ("kind", "amount", "text"),
    [
        ("calendar", 0, "0 seconds"),
        ("calendar", 1, "1 second"),
        ("calendar", 1.5, "1.5 seconds"),
        ("calendar", 5400, "90 minutes"),
        ("calendar", 7200, "2 hours"),
        ("calendar", 3 * 86400, "3 days"),
        ("working_hours", 3600, "1 working hour"),
        ("working_hours", 1000, "1000 working seconds"),
        ("working_hours", 86400, "24 working hours"),
        ("working_days", 1, "1 working day"),
        ("working_days", 0, "0 working days"),
    ],
)
def test_make_duration_text_parses_back(kind: DurationKind, amount: float, text: str) -> None:
    duration = make_duration(kind, amount)
    assert duration.text == text
    assert parse_duration(text) == duration


def test_make_duration_rejects_negative_and_fractional_days() -> None:
    with pytest.raises(ValueError):
        make_duration("calendar", -1)
    with pytest.raises(ValueError):
        make_duration("working_days", 1.5)
