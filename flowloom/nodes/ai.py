"""AI nodes: ``ai.llm`` calls a chat model once.

The node reaches providers only through ``ctx.providers`` and records what each call used
through ``ctx.usage``; it never imports an SDK or storage, so it runs against fakes in tests.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from flowloom.exceptions import NotFound
from flowloom.nodes._provider_call import provider_call, record_usage
from flowloom.nodes.base import (
    Category,
    Node,
    NodeConfig,
    NodeResult,
    Port,
    PortType,
    RunContext,
)
from flowloom.nodes.text import sandbox
from flowloom.providers.model_names import ModelName

if TYPE_CHECKING:
    from flowloom.providers import ChatProvider, ChatRequest, ChatResponse

__all__ = ["LlmCall", "LlmCallConfig"]

_IMAGES_PORT = "images"
_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})


class LlmCallConfig(NodeConfig):
    provider: Literal["openai", "gemini", "anthropic"] = "openai"
    """Who runs the model: ``openai`` (or the OpenAI-compatible server the instance is set up
    for), ``gemini`` or ``anthropic``."""
    model: ModelName = Field(default="", json_schema_extra={"x-model-kind": "chat"})
    """The model's name at the provider, e.g. ``gpt-4o-mini``, ``gemini-2.0-flash``."""
    system_prompt: str = ""
    """Instructions given to the model before the conversation (sent as written)."""
    user_message: str = ""
    """The message to the model: a Jinja2 template over the variables, rendered in a sandbox."""
    variables: list[str] = Field(default_factory=list)
    """The template's variables; each becomes an input port of the same name."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    """Randomness, 0 to 2; empty leaves the provider's default."""
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    """Longest answer, in tokens; empty leaves the provider's default."""
    response_schema: dict[str, Any] | None = None
    """A JSON Schema: the model answers JSON of this shape, on the ``json`` output."""
    credential: str | None = Field(default=None, min_length=1, max_length=200)
    """The name of one of your stored credentials holding the API key; empty uses the
    instance's key."""

    @field_validator("variables")
    @classmethod
    def _check_variables(cls, names: list[str]) -> list[str]:
        reserved = {*cls.model_fields, _IMAGES_PORT}
        for name in names:
            if not name.isidentifier():
                raise ValueError(f"variable {name!r} is not a valid name (letters, digits, _)")
            if name in reserved:
                raise ValueError(
                    f"variable {name!r} clashes with the setting or input of that name"
                )
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"variables declared twice: {', '.join(duplicates)}")
        return names

    @field_validator("response_schema")
    @classmethod
    def _check_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is None:
            return None
        import jsonschema

        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.exceptions.SchemaError as exc:
            raise ValueError(f"response_schema is not a valid JSON Schema: {exc.message}") from None
        return schema

    @model_validator(mode="after")
    def _check_template(self) -> LlmCallConfig:
        undeclared = sorted(_template_variables(self.user_message) - set(self.variables))
        if undeclared:
            names = ", ".join(repr(name) for name in undeclared)
            raise ValueError(f"user_message uses {names}, not declared in variables")
        return self


@functools.lru_cache(maxsize=256)
def _template_variables(source: str) -> frozenset[str]:
    """The variables a template reads; cached because parsing costs ~1 ms per config check."""
    from jinja2 import TemplateSyntaxError, meta

    env = sandbox()
    try:
        parsed = env.parse(source)
    except TemplateSyntaxError as exc:
        raise ValueError(
            f"user_message: template syntax error on line {exc.lineno}: {exc.message}"
        ) from None
    return frozenset(meta.find_undeclared_variables(parsed) - set(env.globals))


class LlmCall(Node[LlmCallConfig]):
    """Ask a language model: a message rendered from the inputs, optional images, and an
    answer as text or, with a response schema, as JSON.

    Each call records its tokens and exact cost as usage. Not cached: a model may answer
    differently each time.
    """

    type_name = "ai.llm"
    display_name = "Ask a model"
    icon = "sparkles"
    category = Category.AI_AGENT
    deterministic = False
    dynamic_ports = True
    Config = LlmCallConfig

    def inputs(self, config: LlmCallConfig) -> list[Port]:
        ports = [Port(name, PortType.ANY) for name in config.variables]
        ports.append(
            Port(
                _IMAGES_PORT,
                PortType.IMAGE,
                required=False,
                is_list=True,
                default=[],
                description="Images for a multimodal model, from image nodes.",
            )
        )
        return ports

    def outputs(self, config: LlmCallConfig) -> list[Port]:
        ports = [Port("text", PortType.STRING)]
        if config.response_schema is not None:
            ports.append(Port("json", PortType.ANY))
        ports.append(
            Port(
                "usage",
                PortType.OBJECT,
                description="tokens_in, tokens_out, tokens_total, and cost as a decimal string",
            )
        )
        return ports

    async def run(
        self, ctx: RunContext, config: LlmCallConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        from flowloom.providers import (
            ChatMessage,
            ChatRequest,
            ImagePart,
            UsageEvent,
        )

        if ctx.providers is None:
            raise ctx.fail("no LLM providers are configured on this instance")
        message = await _render(ctx, config, inputs)
        images = [
            ImagePart(data, content_type)
            for data, content_type in await _read_images(ctx, inputs.get(_IMAGES_PORT))
        ]
        request = ChatRequest(
            model=config.model,
            messages=(ChatMessage("user", message, tuple(images)),),
            system_prompt=config.system_prompt or None,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            response_schema=config.response_schema,
            idempotency_key=ctx.idempotency_key,
        )
        with provider_call(ctx, config.credential):
            provider = await ctx.providers.resolve(
                config.provider, credential=config.credential, owner_id=ctx.owner_id
            )
            response = await _streamed(ctx, provider, request)
        # Recorded before the answer is checked against the schema: an answer that does not
        # match was made, and paid for, all the same.
        cost = await record_usage(
            ctx,
            UsageEvent(
                provider=config.provider,
                model=config.model,
                tokens_in=response.usage.tokens_in,
                tokens_out=response.usage.tokens_out,
                run_id=ctx.run_id,
                node_id=ctx.node_id,
                attempt=ctx.attempt,
                metadata={
                    "node_type": self.type_name,
                    "answered_by": response.model,
                    "finish_reason": response.finish_reason,
                    "credential": config.credential,
                    "images": len(images),
                },
            ),
        )
        outputs: dict[str, Any] = {
            "text": response.text,
            "usage": {
                "tokens_in": response.usage.tokens_in,
                "tokens_out": response.usage.tokens_out,
                "tokens_total": response.usage.tokens_total,
                # A decimal string: exact, and JSON has no decimal type.
                "cost": None if cost is None else str(cost),
            },
        }
        if config.response_schema is not None:
            from flowloom.providers.client import check_structured

            with provider_call(ctx, config.credential):
                outputs["json"] = check_structured(response, request).json
        return NodeResult(outputs)


async def _render(ctx: RunContext, config: LlmCallConfig, inputs: dict[str, Any]) -> str:
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError

    from flowloom.nodes._sandbox import render

    try:
        template = _compile(config.user_message)
        return await render(template, {k: v for k, v in inputs.items() if k in config.variables})
    except SecurityError as exc:
        raise ctx.fail(f"user_message did something the sandbox forbids: {exc}") from None
    except TemplateError as exc:
        raise ctx.fail(f"user_message template error: {exc}") from None


@functools.lru_cache(maxsize=256)
def _compile(source: str) -> Any:
    return sandbox().from_string(source)


async def _read_images(ctx: RunContext, value: Any) -> list[tuple[bytes, str]]:
    """The bytes and type of every image value in ``value`` (a list, possibly nested once)."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    flat: list[Any] = []
    for item in items:
        flat.extend(item if isinstance(item, list) else [item])
    images: list[tuple[bytes, str]] = []
    for item in flat:
        if not isinstance(item, dict) or not isinstance(item.get("sha256"), str):
            raise ctx.fail("images must be image values (objects with a sha256) from image nodes")
        content_type = str(item.get("content_type") or "")
        if content_type not in _IMAGE_TYPES:
            allowed = ", ".join(sorted(_IMAGE_TYPES))
            raise ctx.fail(
                f"image {item['sha256'][:12]} is {content_type or 'of unknown type'}; "
                f"models take {allowed} (convert it with image.convert)"
            )
        try:
            data = await ctx.blobs.read(item["sha256"])
        except NotFound:
            raise ctx.fail(f"image {item['sha256']} is not in the blob store") from None
        images.append((data, content_type))
    return images


async def _streamed(ctx: RunContext, provider: ChatProvider, request: ChatRequest) -> ChatResponse:
    """The answer to ``request``, streamed: each piece of text goes out as it comes
    (``ctx.progress("delta", ...)``, for the canvas and ``flowloom run``), and the whole is
    returned as ``chat`` would (see ``stream_answer``: usage counted once, a cut stream
    refused, and the engine retries the node as it would a failed call). A structured answer
    streams too, as the JSON text it is; it is parsed and checked once whole."""
    from flowloom.providers.streaming import stream_answer

    return await stream_answer(provider, request, text_progress(ctx))


def text_progress(ctx: RunContext) -> Callable[[str], None]:
    """Publishes each piece of a node's text as ``node.delta`` with its offset in the whole."""
    sent = 0

    def publish(text: str) -> None:
        nonlocal sent
        ctx.progress("delta", {"text": text, "offset": sent})
        sent += len(text)

    return publish
