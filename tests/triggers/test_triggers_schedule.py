"""Cron expressions in time zones, and webhook tokens: the arithmetic the triggers stand on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flowloom.exceptions import InputError
from flowloom.triggers import Schedule, new_webhook_token, token_digest, token_matches
from flowloom.triggers.schedule import MAX_COUNTED_MISSES


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_next_fire_time_is_read_in_the_schedules_time_zone() -> None:
    nine_in_paris = Schedule("0 9 * * *", "Europe/Paris")
    # Summer: Paris is UTC+2; winter: UTC+1.
    assert nine_in_paris.next_after(at("2026-07-01T00:00:00")) == at("2026-07-01T07:00:00")
    assert nine_in_paris.next_after(at("2026-01-15T12:00:00")) == at("2026-01-16T08:00:00")
    assert nine_in_paris.next_after(at("2026-07-01T00:00:00")).tzinfo == UTC


def test_next_fire_time_is_strictly_after() -> None:
    hourly = Schedule("@hourly")
    assert hourly.next_after(at("2026-03-01T10:00:00")) == at("2026-03-01T11:00:00")
    assert hourly.next_after(at("2026-03-01T10:59:59")) == at("2026-03-01T11:00:00")


def test_a_fire_time_inside_the_spring_gap_moves_after_it() -> None:
    # 02:30 does not exist in Paris on 2026-03-29 (clocks jump from 02:00 to 03:00).
    at_half_past_two = Schedule("30 2 * * *", "Europe/Paris")
    fire = at_half_past_two.next_after(at("2026-03-28T12:00:00"))
    assert at("2026-03-29T00:00:00") <= fire <= at("2026-03-29T01:30:00")


def test_cron_spacing_is_normalised() -> None:
    assert Schedule("  */5   *  * * 1-5 ").cron == "*/5 * * * 1-5"


@pytest.mark.parametrize(
    ("cron", "says"),
    [
        ("61 * * * *", "not a valid expression"),
        ("* * * *", "has 4 fields"),
        ("* * * * * *", "has 6 fields"),
        ("every minute", "has 2 fields"),
        ("@reboot", "not a valid expression"),
        ("0 0 30 2 *", "never fires"),
        ("", "1-120 characters"),
    ],
)
def test_a_bad_cron_is_an_input_error_naming_cron(cron: str, says: str) -> None:
    with pytest.raises(InputError) as caught:
        Schedule(cron, "UTC")
    assert caught.value.field == "cron"
    assert says in str(caught.value)


@pytest.mark.parametrize("timezone", ["Mars/Olympus_Mons", "../../etc/passwd", "", "x" * 65])
def test_an_unknown_time_zone_is_an_input_error_naming_timezone(timezone: str) -> None:
    with pytest.raises(InputError) as caught:
        Schedule("* * * * *", timezone)
    assert caught.value.field == "timezone"


def test_missed_fire_times_are_counted_from_the_first() -> None:
    every_minute = Schedule("* * * * *")
    missed = every_minute.missed_between(at("2026-05-01T10:00:00"), at("2026-05-01T10:10:30"))
    assert (missed.count, missed.capped) == (11, False)
    assert missed.first == at("2026-05-01T10:00:00")
    assert missed.last == at("2026-05-01T10:10:00")


def test_counting_missed_fire_times_stops_at_the_cap() -> None:
    every_minute = Schedule("* * * * *")
    first = at("2026-01-01T00:00:00")
    missed = every_minute.missed_between(first, first + timedelta(days=30))
    assert missed.capped
    assert missed.count == MAX_COUNTED_MISSES


def test_a_token_matches_only_its_own_digest() -> None:
    token, digest = new_webhook_token()
    other, _ = new_webhook_token()
    assert token.startswith("flh_")
    assert len(token) > 40
    assert digest == token_digest(token)
    assert token not in digest
    assert token_matches(digest, token)
    assert not token_matches(digest, other)
    assert not token_matches(digest, None)
    assert not token_matches(None, token)
    assert not token_matches(digest, "")
