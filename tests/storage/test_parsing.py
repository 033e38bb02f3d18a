"""The arguments of ``flowloom db prune``: durations and dates, good and bad."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flowloom.exceptions import InputError
from flowloom.storage.maintenance import parse_date, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("90m", timedelta(minutes=90)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
        (" 7D ", timedelta(days=7)),
        ("365d", timedelta(days=365)),
    ],
)
def test_parse_duration_reads_one_number_and_one_unit(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "   ", "30", "d", "3x", "30 days", "1.5d", "1.5.2d", "-3d", "+3d", "1d12h", "0d"]
)
def test_parse_duration_refuses_anything_else_naming_value_and_units(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_duration(text)
    message = str(caught.value)
    assert repr(text) in message
    if text.strip() != "0d":
        assert "s (seconds)" in message
        assert "w (weeks)" in message


def test_parse_duration_refuses_a_duration_too_long_to_represent() -> None:
    with pytest.raises(InputError, match="too long"):
        parse_duration("99999999999w")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-31", datetime(2025, 1, 31, tzinfo=UTC)),
        ("2025-01-31T12:30", datetime(2025, 1, 31, 12, 30, tzinfo=UTC)),
        ("2025-01-31T12:30:15Z", datetime(2025, 1, 31, 12, 30, 15, tzinfo=UTC)),
        ("2025-01-31T12:30:00+02:00", datetime(2025, 1, 31, 10, 30, tzinfo=UTC)),
        ("2025-01-31 00:00:00-05:00", datetime(2025, 1, 31, 5, 0, tzinfo=UTC)),
    ],
)
def test_parse_date_gives_aware_utc(text: str, expected: datetime) -> None:
    parsed = parse_date(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text", ["", "yesterday", "31/01/2025", "2025-13-01", "2025-02-30", "2025-01-31T25:00", "30d"]
)
def test_parse_date_refuses_anything_else(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_date(text)
    assert repr(text) in str(caught.value)
    assert "YYYY-MM-DD" in str(caught.value)
