"""``ai.embed``: embedding vectors of a text, or of a list of texts, through OpenAI or Gemini.

The texts go to the provider in batches within its limits per call (OpenAI 2,048 inputs and
300,000 tokens in all, Gemini 100 inputs); the vectors come out in the order of the texts, one
list of numbers each. Tokens are not counted here (that needs the model's tokenizer): a text's
UTF-8 bytes bound its tokens from above (a token stands for one byte or more), so a batch whose
bytes fit the token limit fits it. Every call is a usage row of type ``embeddings``, costed
from the model table's input price. Gemini reports no token count for embeddings: its usage is
estimated from the text (four characters a token) and the row says so (``tokens_estimated``).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Final, Literal

from pydantic import Field

from flowloom.graph.ports import Port, PortType
from flowloom.nodes._provider_call import provider_call, record_usage
from flowloom.nodes.base import Category, Node, NodeConfig, NodeResult, RunContext
from flowloom.providers.model_names import ModelName

__all__ = ["MAX_TEXTS", "Embed", "EmbedConfig", "batches"]

BATCH: Final = {"openai": 2048, "gemini": 100}
"""Most texts one embeddings call of the provider takes."""
BATCH_TOKENS: Final = {"openai": 300_000}
"""Most tokens, all texts together, one embeddings call of the provider takes (where it has
such a limit): a batch holds at most this many bytes of text."""
MAX_TEXTS: Final = 10_000
"""Most texts one node embeds (one run should not hold a million vectors in a row)."""
MAX_TEXT_CHARS: Final = 100_000
"""Longest single text, in characters (the providers' limits are about 8,000 tokens)."""


class EmbedConfig(NodeConfig):
    provider: Literal["openai", "gemini"] = "openai"
    """Who computes the vectors: ``openai`` (or the OpenAI-compatible server the instance is
    set up for) or ``gemini``."""
    model: ModelName = Field(
        default="text-embedding-3-small", json_schema_extra={"x-model-kind": "embedding"}
    )
    """The embedding model, e.g. ``text-embedding-3-small`` or ``gemini-embedding-001``."""
    credential: str | None = Field(default=None, min_length=1, max_length=200)
    """The name of one of your stored credentials holding the API key; empty uses the
    instance's key."""


class Embed(Node[EmbedConfig]):
    """Embedding vectors of a text or a list of texts, for search, clustering or similarity."""

    type_name = "ai.embed"
    display_name = "Embed text"
    icon = "sparkles"
    category = Category.AI_AGENT
    deterministic = True
    Config = EmbedConfig

    def inputs(self, config: EmbedConfig) -> list[Port]:
        return [
            Port("text", PortType.ANY, description="a string, or a list of strings"),
        ]

    def outputs(self, config: EmbedConfig) -> list[Port]:
        return [
            Port("vectors", PortType.LIST, description="one list of numbers per text"),
            Port("dimensions", PortType.INTEGER),
            Port("usage", PortType.OBJECT, description="tokens_in, and cost as a decimal string"),
        ]

    async def run(self, ctx: RunContext, config: EmbedConfig, inputs: dict[str, Any]) -> NodeResult:
        from flowloom.providers import EmbedRequest

        texts = _texts(ctx, inputs.get("text"))
        if ctx.providers is None:
            raise ctx.fail("no AI providers are configured on this instance")
        with provider_call(ctx, config.credential):
            provider = await ctx.providers.resolve(
                config.provider, credential=config.credential, owner_id=ctx.owner_id
            )
            vectors: list[list[float]] = []
            tokens_in, cost = 0, Decimal(0)
            for number, batch in enumerate(batches(texts, config.provider)):
                answer = await provider.embed(EmbedRequest(model=config.model, texts=batch))
                vectors.extend(list(vector) for vector in answer.vectors)
                tokens_in += answer.tokens_in
                cost += await _record(ctx, config, answer, len(batch), number)
        dimensions = len(vectors[0]) if vectors else 0
        if any(len(vector) != dimensions for vector in vectors):
            raise ctx.fail("the provider answered vectors of different lengths")
        return NodeResult(
            {
                "vectors": vectors,
                "dimensions": dimensions,
                "usage": {"tokens_in": tokens_in, "cost": str(cost)},
            }
        )


def batches(texts: list[str], provider: str) -> Iterator[tuple[str, ...]]:
    """``texts`` in order, cut into batches within the provider's limits (see the module
    docstring). A text over the byte budget alone goes alone: the provider judges it."""
    most = BATCH[provider]
    budget = BATCH_TOKENS.get(provider)
    batch: list[str] = []
    size = 0
    for text in texts:
        length = len(text.encode()) if budget is not None else 0
        if batch and (len(batch) == most or (budget is not None and size + length > budget)):
            yield tuple(batch)
            batch, size = [], 0
        batch.append(text)
        size += length
    if batch:
        yield tuple(batch)


def _texts(ctx: RunContext, value: Any) -> list[str]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        raise ctx.fail("text: give a string or a list of strings")
    if not texts:
        raise ctx.fail("text: the list is empty")
    if len(texts) > MAX_TEXTS:
        raise ctx.fail(f"text: {len(texts)} texts, more than {MAX_TEXTS:,} in one node")
    for index, text in enumerate(texts):
        if not text.strip():
            raise ctx.fail(f"text[{index}]: empty text has no embedding")
        if len(text) > MAX_TEXT_CHARS:
            raise ctx.fail(f"text[{index}]: {len(text):,} characters, over {MAX_TEXT_CHARS:,}")
    return texts


async def _record(
    ctx: RunContext, config: EmbedConfig, answer: Any, count: int, batch: int
) -> Decimal:
    """The usage row of one embeddings call; its cost (0 when it could not be recorded)."""
    from flowloom.providers import UsageEvent

    event = UsageEvent(
        provider=config.provider,
        model=config.model,
        tokens_in=answer.tokens_in,
        tokens_out=0,
        type="embeddings",
        run_id=ctx.run_id,
        node_id=ctx.node_id,
        attempt=ctx.attempt,
        metadata={
            "node_type": "ai.embed",
            "texts": count,
            "batch": batch,
            "tokens_estimated": answer.tokens_estimated,
            "credential": config.credential,
        },
    )
    return await record_usage(ctx, event) or Decimal(0)
