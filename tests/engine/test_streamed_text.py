"""The text so far of each node streaming now: put together from its deltas, dropped when the
node or the run ends, and bounded per node and in all."""

from __future__ import annotations

from typing import Any

from flowloom.engine.events import DELTA, Event, EventBus, progress_publisher
from flowloom.engine.streamed_text import StreamedTexts


def _delta(
    texts: StreamedTexts, run_id: str, node_id: str, text: str, offset: Any, **more: Any
) -> None:
    texts.note(DELTA, run_id, node_id, {"text": text, "offset": offset, **more})


def test_pieces_in_order_make_the_text_and_the_nodes_end_drops_it() -> None:
    texts = StreamedTexts()
    _delta(texts, "r", "a", "Hel", 0)
    _delta(texts, "r", "a", "lo", 3)
    _delta(texts, "r", "b", "x", 0)

    assert texts.text("r", "a") == ("Hello", 1)
    assert texts.streaming("r") == ["a", "b"]
    assert texts.kept_chars == 6
    texts.note("node.succeeded", "r", "a", {})
    assert texts.text("r", "a") is None
    assert texts.streaming("r") == ["b"]
    texts.note("run.failed", "r", None, {})
    assert texts.streaming("r") == []
    assert texts.kept_chars == 0
    assert list(texts.runs()) == []


def test_a_missing_piece_or_a_text_that_did_not_start_at_zero_is_not_handed_on() -> None:
    texts = StreamedTexts()
    _delta(texts, "r", "late", "middle", 40)
    _delta(texts, "r", "gap", "ab", 0)
    _delta(texts, "r", "gap", "ef", 4)

    assert texts.text("r", "late") is None
    assert texts.text("r", "gap") is None
    assert texts.kept_chars == 0, "what is not handed on is not kept"


def test_a_new_attempt_starts_over_and_an_old_one_is_ignored() -> None:
    texts = StreamedTexts()
    _delta(texts, "r", "a", "first", 0, attempt=1)
    _delta(texts, "r", "a", "again", 0, attempt=2)
    _delta(texts, "r", "a", "stale", 5, attempt=1)

    assert texts.text("r", "a") == ("again", 2)
    assert texts.kept_chars == 5


def test_malformed_deltas_are_not_kept_and_raise_nothing() -> None:
    texts = StreamedTexts()
    for offset in (None, "0", True, -1):
        _delta(texts, "r", f"n{offset}", "text", offset)
    _delta(texts, "r", "attempt", "text", 0, attempt="two")
    texts.note(DELTA, "r", None, {"text": "no node", "offset": 0})

    assert texts.text("r", "attempt") == ("text", 1)
    assert texts.streaming("r") == ["attempt"]


def test_a_node_past_its_limit_is_no_longer_kept() -> None:
    texts = StreamedTexts(max_text_chars=10)
    _delta(texts, "r", "a", "12345", 0)
    _delta(texts, "r", "a", "678901", 5)
    _delta(texts, "r", "a", "2", 11)

    assert texts.text("r", "a") is None
    assert texts.kept_chars == 0


def test_past_the_limit_in_all_the_oldest_runs_go_first() -> None:
    texts = StreamedTexts(max_text_chars=100, max_kept_chars=25, max_kept_nodes=100)
    for run_id in ("old", "mid", "new"):
        _delta(texts, run_id, "a", "x" * 10, 0)

    assert list(texts.runs()) == ["mid", "new"]
    assert texts.kept_chars == 20

    one = StreamedTexts(max_text_chars=100, max_kept_chars=25)
    _delta(one, "r", "a", "x" * 20, 0)
    _delta(one, "r", "b", "y" * 20, 0)
    assert one.text("r", "b") == ("y" * 20, 1), "a run never pushes itself out"


def test_past_the_node_limit_in_all_the_oldest_runs_go_first() -> None:
    texts = StreamedTexts(max_kept_nodes=3)
    for run_id in ("r1", "r2", "r3", "r4"):
        _delta(texts, run_id, "a", "x", 0)

    assert list(texts.runs()) == ["r2", "r3", "r4"]


def test_a_copy_of_one_run_goes_its_own_way() -> None:
    texts = StreamedTexts()
    _delta(texts, "r", "a", "abc", 0)
    _delta(texts, "other", "a", "zzz", 0)
    copy = texts.of_run("r")
    _delta(copy, "r", "a", "def", 3)

    assert copy.text("r", "a") == ("abcdef", 1)
    assert texts.text("r", "a") == ("abc", 1)
    assert list(copy.runs()) == ["r"]


def test_the_bus_keeps_texts_whether_or_not_anyone_follows() -> None:
    bus = EventBus()
    progress = progress_publisher(bus, "r", "a", 1)
    progress("delta", {"text": "Hi ", "offset": 0})
    progress("delta", {"text": "there", "offset": 3})
    assert bus.texts.text("r", "a") == ("Hi there", 1)

    bus.publish([Event("run.cancelled", "r")])
    assert bus.texts.text("r", "a") is None
