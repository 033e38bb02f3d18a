"""An example flowloom node plugin: ``text.word_count`` counts the words of a text.

flowloom finds it through the entry point in ``pyproject.toml`` (group ``flowloom.nodes``),
and it is written against the node contract that ``flowloom`` itself exports, nothing else.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from pydantic import Field

import flowloom

__all__ = ["WordCount", "WordCountConfig"]

# A word: letters or digits, joined by inner apostrophes or hyphens ("don't", "well-known").
_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")


class WordCountConfig(flowloom.NodeConfig):
    top: int = Field(default=5, ge=0, le=100)
    """List this many of the most frequent words (0: none)."""
    min_length: int = Field(default=1, ge=1, le=100)
    """Leave words shorter than this out of the most frequent ones."""


class WordCount(flowloom.Node[WordCountConfig]):
    """Count the words, characters and lines of a text, and list its most frequent words.

    Words are compared without case; the most frequent come first, ties in alphabetical order.
    """

    type_name = "text.word_count"
    category = flowloom.Category.ACTION
    Config = WordCountConfig
    # How the palette and the canvas show it: a plugin brings its own name, icon and colour.
    display_name = "Count words"
    icon = "M4 6h10M4 12h10M4 18h6M18 4v16M15 7l3-3 3 3"
    color = "#0f766e"

    def inputs(self, config: WordCountConfig) -> list[flowloom.Port]:
        return [flowloom.Port("text", flowloom.PortType.STRING, description="The text to count.")]

    def outputs(self, config: WordCountConfig) -> list[flowloom.Port]:
        integer, listed = flowloom.PortType.INTEGER, flowloom.PortType.LIST
        return [
            flowloom.Port("words", integer, description="How many words."),
            flowloom.Port("characters", integer, description="How many characters."),
            flowloom.Port("lines", integer, description="How many lines."),
            flowloom.Port(
                "top_words", listed, description="[{word, count}], the most frequent first."
            ),
        ]

    async def run(
        self, ctx: flowloom.RunContext, config: WordCountConfig, inputs: dict[str, Any]
    ) -> flowloom.NodeResult:
        text = inputs["text"]
        if not isinstance(text, str):
            raise ctx.fail(f"text must be text, got {type(text).__name__}")
        words = [word.casefold() for word in _WORD.findall(text)]
        counts = Counter(word for word in words if len(word) >= config.min_length)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: config.top]
        return flowloom.NodeResult(
            {
                "words": len(words),
                "characters": len(text),
                "lines": len(text.splitlines()),
                "top_words": [{"word": word, "count": count} for word, count in ranked],
            }
        )
