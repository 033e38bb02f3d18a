"""Reading Server-Sent Events back in tests: the messages of a body, a node's streamed text."""

from __future__ import annotations

import json
from typing import Any

from flowloom.engine.events import DELTA

Messages = list[tuple[str, dict[str, Any]]]


def sse_messages(data: bytes) -> Messages:
    """(event, data) of each Server-Sent Event in ``data``."""
    found = []
    for block in data.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            found.append((fields["event"], json.loads(fields["data"])))
    return found


def streamed_text(messages: Messages, node_id: str) -> str:
    """The node's text as a reader puts it together: each delta placed at its offset (a gap
    fails the test)."""
    text = ""
    for kind, data in messages:
        if kind == DELTA and data["node_id"] == node_id:
            piece, offset = data["data"]["text"], data["data"]["offset"]
            assert offset <= len(text), f"a gap at {offset} (have {len(text)})"
            if offset + len(piece) > len(text):
                text = text[:offset] + piece
    return text
