"""The text so far of each node streaming now, put together from its ``node.delta`` events.

Two keep one. The event bus keeps one for every run of the process, so that whoever starts
following a run while a node streams can be handed the text that came before (a delta carries
only its piece). Each run feed keeps one for its own run, seeded from the bus's as it
subscribes, in the order its readers see the events, to hand the whole text to a reader that
lost pieces.

A node's text of one attempt is dropped when the node ends (its output, once stored, has the
whole) and every text of a run when the run ends. What is kept is bounded per node
(``max_text_chars``) and in all (``max_kept_chars``): past the first, the node's text is no
longer handed on; past the second, the texts of the runs that began streaming first go.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from flowloom.engine.event_kinds import DELTA, NODE_ENDS, RUN_FINISHED_EVENTS

__all__ = ["MAX_KEPT_CHARS", "MAX_TEXT_CHARS", "StreamedText", "StreamedTexts"]

MAX_TEXT_CHARS: Final = 1_000_000
"""Streamed text kept per node; past this the node's text is not handed on (a reader that
lost pieces sees a gap, and the node's stored output has the whole)."""
MAX_KEPT_CHARS: Final = 8_000_000
"""Streamed text kept in all, over every run: past this the oldest runs' texts go."""
MAX_KEPT_NODES: Final = 10_000
"""Nodes whose text is kept at once, over every run: past this the oldest runs' texts go."""


@dataclass(slots=True)
class StreamedText:
    """A node's streamed text so far, of its latest attempt."""

    attempt: int
    buffer: io.StringIO
    chars: int
    """Where the next piece goes: the end of the text so far (kept or not)."""
    whole: bool = True
    """False once a piece went missing or the text outgrew its limit: then it is not kept."""

    @property
    def kept(self) -> int:
        return self.chars if self.whole else 0


class StreamedTexts:
    """The text so far of each node streaming now, by run (see the module)."""

    def __init__(
        self,
        *,
        max_text_chars: int = MAX_TEXT_CHARS,
        max_kept_chars: int = MAX_KEPT_CHARS,
        max_kept_nodes: int = MAX_KEPT_NODES,
    ) -> None:
        self._runs: dict[str, dict[str, StreamedText]] = {}
        self._max_text_chars = max_text_chars
        self._max_kept_chars = max_kept_chars
        self._max_kept_nodes = max_kept_nodes
        self._kept_chars = 0
        self._kept_nodes = 0

    @property
    def kept_chars(self) -> int:
        return self._kept_chars

    def note(self, kind: str, run_id: str, node_id: str | None, data: dict[str, object]) -> None:
        """Take in one event (``kind`` of ``node_id`` in ``run_id``, with its ``data``)."""
        if kind == DELTA:
            if node_id is not None:
                self._add(run_id, node_id, data)
            return
        texts = self._runs.get(run_id)
        if texts is None:
            return
        if kind in RUN_FINISHED_EVENTS:
            self.forget_run(run_id)
        elif kind in NODE_ENDS and node_id in texts:
            self._drop(texts.pop(node_id))
            if not texts:
                del self._runs[run_id]

    def forget_run(self, run_id: str) -> None:
        for text in self._runs.pop(run_id, {}).values():
            self._drop(text)

    def of_run(self, run_id: str) -> StreamedTexts:
        """A copy holding ``run_id``'s texts alone (for a feed that starts following it)."""
        copy = StreamedTexts(
            max_text_chars=self._max_text_chars,
            max_kept_chars=self._max_kept_chars,
            max_kept_nodes=self._max_kept_nodes,
        )
        for node_id, text in self._runs.get(run_id, {}).items():
            kept = StreamedText(text.attempt, io.StringIO(), text.chars, text.whole)
            if text.whole:
                kept.buffer.write(text.buffer.getvalue())
            copy._runs.setdefault(run_id, {})[node_id] = kept
            copy._kept_chars += kept.kept
            copy._kept_nodes += 1
        return copy

    def streaming(self, run_id: str) -> list[str]:
        """The nodes of ``run_id`` whose text of this attempt is held whole."""
        return [node_id for node_id, text in self._runs.get(run_id, {}).items() if text.whole]

    def text(self, run_id: str, node_id: str) -> tuple[str, int] | None:
        """``node_id``'s whole text so far and its attempt; None when it is not held whole."""
        text = self._runs.get(run_id, {}).get(node_id)
        if text is None or not text.whole:
            return None
        return text.buffer.getvalue(), text.attempt

    def runs(self) -> Iterable[str]:
        return self._runs.keys()

    def holds_any(self, run_ids: Iterable[str]) -> bool:
        """Whether a text of any of ``run_ids`` is kept (whole or not)."""
        runs = self._runs
        return any(run_id in runs for run_id in run_ids)

    def _add(self, run_id: str, node_id: str, data: dict[str, object]) -> None:
        attempt = _int(data.get("attempt"), 1)
        offset = _int(data.get("offset"), -1)
        piece = str(data.get("text", ""))
        texts = self._runs.get(run_id)
        if texts is None:
            texts = self._runs[run_id] = {}
        text = texts.get(node_id)
        if text is None or attempt > text.attempt:
            if text is not None:
                self._drop(text)
            text = texts[node_id] = StreamedText(attempt, io.StringIO(), 0, whole=offset == 0)
            self._kept_nodes += 1
        elif attempt < text.attempt:
            return
        if text.whole and (offset != text.chars or text.chars + len(piece) > self._max_text_chars):
            self._kept_chars -= text.chars
            text.whole = False
            text.buffer = io.StringIO()  # no longer handed on: not kept either
        if text.whole:
            text.buffer.write(piece)
            self._kept_chars += len(piece)
        text.chars = (offset if offset >= 0 else text.chars) + len(piece)
        self._bound(run_id)

    def _drop(self, text: StreamedText) -> None:
        self._kept_chars -= text.kept
        self._kept_nodes -= 1

    def _bound(self, newest: str) -> None:
        """Forget the oldest runs' texts while more is kept than allowed (never ``newest``'s:
        its node's own limit bounds it)."""
        while self._kept_chars > self._max_kept_chars or self._kept_nodes > self._max_kept_nodes:
            oldest = next(iter(self._runs))
            if oldest == newest:
                return
            self.forget_run(oldest)


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
