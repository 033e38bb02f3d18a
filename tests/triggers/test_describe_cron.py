"""Cron expressions in words, for the schedules panel."""

from __future__ import annotations

import pytest

from flowloom.triggers.describe import describe_cron


@pytest.mark.parametrize(
    ("cron", "words"),
    [
        ("* * * * *", "Every minute"),
        ("*/15 * * * *", "Every 15 minutes"),
        ("0 * * * *", "Every hour, on the hour"),
        ("5 * * * *", "At minute 5 of every hour"),
        ("0 */2 * * *", "Every 2 hours, on the hour"),
        ("0 9 * * 1-5", "At 09:00, on Monday through Friday"),
        ("0 9  *  * MON-FRI", "At 09:00, on Monday through Friday"),
        ("0 9,17 * * *", "At 09:00 and 17:00, every day"),
        ("15 10 * * 0,6", "At 10:15, on Sunday and Saturday"),
        ("0 22 * * 7", "At 22:00, on Sunday"),
        ("30 8 1,15 * *", "At 08:30, on day 1 and 15 of the month"),
        ("0 0 1 1 *", "At 00:00, on day 1 of the month, in January"),
        ("0 12 1 */3 *", "At 12:00, on day 1 of the month, every 3 months"),
        ("0 0 13 * 5", "At 00:00, on day 13 of the month or on Friday"),
        ("0 9 L * *", "At 09:00, on the last day of the month"),
        ("0 9 * * 5#2", "At 09:00, on the second Friday of the month"),
        (
            "*/5 9-17 * * 1-5",
            "Every 5 minutes, during hours 9 through 17, on Monday through Friday",
        ),
        ("@daily", "At 00:00, every day"),
        ("@hourly", "Every hour, on the hour"),
        ("@weekly", "At 00:00, on Sunday"),
    ],
)
def test_cron_in_words(cron: str, words: str) -> None:
    assert describe_cron(cron) == words


@pytest.mark.parametrize("cron", ["0 9 * * 8#x", "a b c d e", "1 2 3", "0 9 ? * *"])
def test_what_it_cannot_word_is_still_a_sentence(cron: str) -> None:
    assert describe_cron(cron)
