"""Ids: prefixed, sortable by creation time as plain strings, and parsed strictly."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest

from flowloom import ids as ids_module
from flowloom.ids import (
    PREFIXES,
    id_floor,
    id_timestamp_ms,
    idempotency_key,
    idempotency_keys,
    new_id,
    new_ids,
    parse_id,
)


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


def _as_new_id_writes_it(made: str) -> str:
    prefix, _, _ = made.rpartition("_")
    value = parse_id(made)
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    return f"{prefix}_{ids_module._encode(value.int)}"


def test_ids_made_in_bulk_sort_after_earlier_ids_and_before_later_ones() -> None:
    made = [new_id("nex"), *new_ids("nex", 3_000), new_id("nex"), *new_ids("nex", 2)]

    assert made == sorted(made)
    assert len(set(made)) == len(made) == 3_004
    assert all(_as_new_id_writes_it(one) == one for one in made)
    assert new_ids("nex", 0) == []
    with pytest.raises(ValueError, match="cannot make -1 ids"):
        new_ids("nex", -1)


def _bulk_after(
    monkeypatch: pytest.MonkeyPatch, last_rand: int, count: int
) -> tuple[int, list[str]]:
    """``count`` ids made in bulk right after an id of a future millisecond whose counter was
    ``last_rand``; that millisecond and the ids, checked sorted and distinct."""
    future_ms = time.time_ns() // 1_000_000 + 60_000
    monkeypatch.setattr(ids_module, "_last_ms", future_ms)
    monkeypatch.setattr(ids_module, "_last_rand", last_rand)
    made = new_ids("nex", count)
    assert made == sorted(made)
    assert len(set(made)) == count
    return future_ms, made


def test_ids_made_in_bulk_across_a_change_of_their_shared_leading_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Within one millisecond, from just below a change of bit 60 of the value (the bits the
    # bulk path encodes once for many ids) to past it.
    future_ms, made = _bulk_after(monkeypatch, (1 << 60) - 3, 6)

    assert all(_as_new_id_writes_it(one) == one for one in made)
    assert [id_timestamp_ms(one) for one in made] == [future_ms] * 6
    assert [parse_id(one).int & ((1 << 62) - 1) for one in made] == [
        (1 << 60) + n for n in range(-2, 4)
    ]


def test_ids_made_in_bulk_that_would_overflow_the_counter_move_to_the_next_millisecond(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    future_ms, made = _bulk_after(monkeypatch, (1 << 74) - 3, 5)

    assert [id_timestamp_ms(one) for one in made] == [future_ms] * 2 + [future_ms + 1] * 3


def test_ids_made_in_bulk_across_blocks_of_their_last_two_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two changes of the low ten bits' block and a carry into the counter's bits above the
    # variant (bit 62 of the counter): each id is the canonical text of the next value.
    start = (1 << 62) - 1030
    future_ms, made = _bulk_after(monkeypatch, start, 2_100)

    assert all(_as_new_id_writes_it(one) == one for one in made)
    assert {id_timestamp_ms(one) for one in made} == {future_ms}
    counters = [parse_id(one).int >> 64 & 0xFFF for one in made]
    lows = [parse_id(one).int & ((1 << 62) - 1) for one in made]
    expected = [start + n for n in range(1, 2_101)]
    assert [(high << 62) | low for high, low in zip(counters, lows, strict=True)] == expected


def test_idempotency_keys_in_bulk_are_each_nodes_key() -> None:
    nodes = ["n1", "fetch:2", "é", ""]

    assert idempotency_keys("run_x", nodes) == [idempotency_key("run_x", n) for n in nodes]
    assert idempotency_keys("run_x", nodes) == ["run_x:n1", "run_x:fetch:2", "run_x:é", "run_x:"]
    assert idempotency_keys("run_x", []) == []
