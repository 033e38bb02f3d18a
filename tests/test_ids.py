"""Ids: prefixed, sortable by creation time as plain strings, and parsed strictly."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest

from flowloom.ids import PREFIXES, id_floor, id_timestamp_ms, new_id, parse_id


def test_an_id_is_a_prefix_and_26_base32_characters() -> None:
    run_id = new_id("run")
    prefix, _, suffix = run_id.partition("_")

    assert prefix == "run"
    assert len(suffix) == 26
    assert set(suffix) <= set("0123456789abcdefghjkmnpqrstvwxyz")
    assert parse_id(run_id, prefix="run").version == 7


def test_ids_sort_in_creation_order_even_within_one_millisecond() -> None:
    ids = [new_id("run") for _ in range(20_000)]

    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    # The loop made many ids per millisecond, so the order within one was tested too.
    per_ms = Counter(id_timestamp_ms(i) for i in ids)
    assert max(per_ms.values()) > 10


def test_ids_made_later_sort_later() -> None:
    first = new_id("wf")
    time.sleep(0.002)
    second = new_id("wf")

    assert first < second
    assert id_timestamp_ms(first) < id_timestamp_ms(second)


def test_an_id_carries_its_creation_time() -> None:
    before_ms = time.time_ns() // 1_000_000
    made = new_id("usr")
    after_ms = time.time_ns() // 1_000_000

    assert before_ms <= id_timestamp_ms(made) <= after_ms
    assert id_floor("usr", before_ms) <= made < id_floor("usr", after_ms + 1)


def test_parse_id_round_trips() -> None:
    made = new_id("key")
    parsed = parse_id(made)

    assert isinstance(parsed, uuid.UUID)
    assert parsed.variant == uuid.RFC_4122


@pytest.mark.parametrize(
    ("value", "prefix", "message"),
    [
        ("01jd4y9q6xf3k8r2m5t7v9w0ab", None, "has no prefix"),
        ("_01jd4y9q6xf3k8r2m5t7v9w0ab", None, "has no prefix"),
        ("wf_01jd4y9q6xf3k8r2m5t7v9w0ab", "run", "should start with 'run'_"),
        ("run_01jd4y9q6xf3k8r2m5t7v9w0a", None, "should end in 26 base32 characters"),
        ("run_01jd4y9q6xf3k8r2m5t7v9w0abc", None, "should end in 26 base32 characters"),
        ("run_81jd4y9q6xf3k8r2m5t7v9w0ab", None, "should end in 26 base32 characters"),
        ("run_01jd4y9q6xf3k8r2m5t7v9w0au", None, "holds 'u', which is not base32"),
        ("run_01JD4Y9Q6XF3K8R2M5T7V9W0AB", None, "holds 'J', which is not base32"),
    ],
)
def test_malformed_ids_are_refused_with_a_reason(
    value: str, prefix: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_id(value, prefix=prefix)
    assert repr(value) in str(caught.value)


def test_every_table_has_its_own_prefix() -> None:
    prefixes = list(PREFIXES.values())

    assert len(prefixes) == len(set(prefixes))
    assert all(p.isalpha() and p.islower() and 1 <= len(p) <= 8 for p in prefixes)
