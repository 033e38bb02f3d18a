"""``ai.image``: images made from a prompt (or from an input image and a prompt, an edit) by
OpenAI's image models or Gemini's, through their SDKs.

The prompt is a template over the node's variables, rendered in the sandbox like ``ai.llm``'s
message. The images go to the blob store as ``image.load``'s do, so crop, resize and convert
chain after it: ``image`` is the first, ``images`` all of them. Size, count and quality are
checked against what the chosen provider and model accept before anything is sent. The call is
a usage row of type ``image``, costed from the model table's token prices (the image models of
both providers report their tokens).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final, Literal

from pydantic import Field, field_validator, model_validator

from flowloom.graph.ports import Port, PortType
from flowloom.nodes._provider_call import provider_call, record_usage
from flowloom.nodes.ai import _read_images
from flowloom.nodes.base import Category, Node, NodeConfig, NodeResult, RunContext
from flowloom.nodes.images import store_image
from flowloom.nodes.mcp import check_variables, render_value
from flowloom.providers.model_names import ModelName

__all__ = ["ImageGenerate", "ImageGenerateConfig"]

OPENAI_SIZES: Final = {
    "gpt-image": frozenset({"1024x1024", "1536x1024", "1024x1536", "auto"}),
    "dall-e-3": frozenset({"1024x1024", "1792x1024", "1024x1792"}),
    "dall-e-2": frozenset({"256x256", "512x512", "1024x1024"}),
}
OPENAI_QUALITY: Final = {
    "gpt-image": frozenset({"low", "medium", "high", "auto"}),
    "dall-e-3": frozenset({"standard", "hd"}),
    "dall-e-2": frozenset({"standard"}),
}
MAX_COUNT: Final = {"gpt-image": 10, "dall-e-3": 1, "dall-e-2": 10, "gemini": 4}
_IMAGE_PORT: Final = "image"


def _family(provider: str, model: str) -> str:
    if provider == "gemini":
        return "gemini"
    for family in ("dall-e-3", "dall-e-2"):
        if model.startswith(family):
            return family
    return "gpt-image"


class ImageGenerateConfig(NodeConfig):
    provider: Literal["openai", "gemini"] = "openai"
    """Who makes the image: ``openai`` (gpt-image-1, dall-e-3, ...) or ``gemini``
    (gemini-2.5-flash-image, ...)."""
    model: ModelName = Field(default="gpt-image-1", json_schema_extra={"x-model-kind": "image"})
    """The image model's name at the provider."""
    prompt: str = Field(default="", min_length=0, max_length=32_000)
    """What to draw: a Jinja2 template over the variables, rendered in a sandbox."""
    variables: list[str] = Field(default_factory=list)
    """The prompt's variables; each becomes an input port of the same name."""
    size: str | None = None
    """``WIDTHxHEIGHT`` among the model's sizes (OpenAI only); empty: the model's default."""
    count: int = Field(default=1, ge=1, le=10)
    """How many images to make."""
    quality: str | None = None
    """OpenAI only: ``low``, ``medium``, ``high`` or ``auto`` (gpt-image), ``standard`` or
    ``hd`` (dall-e-3); empty: the model's default."""
    credential: str | None = Field(default=None, min_length=1, max_length=200)
    """The name of one of your stored credentials holding the API key; empty uses the
    instance's key."""

    @field_validator("variables")
    @classmethod
    def _check_variables(cls, names: list[str]) -> list[str]:
        return check_variables(names, {*cls.model_fields, _IMAGE_PORT})

    @model_validator(mode="after")
    def _check_options(self) -> ImageGenerateConfig:
        family = _family(self.provider, self.model)
        if self.count > MAX_COUNT[family]:
            raise ValueError(f"count: {self.model} makes at most {MAX_COUNT[family]} per call")
        if family == "gemini":
            if self.size is not None or self.quality is not None:
                raise ValueError("size and quality: gemini takes neither (say it in the prompt)")
            return self
        if self.size is not None and self.size not in OPENAI_SIZES[family]:
            allowed = ", ".join(sorted(OPENAI_SIZES[family]))
            raise ValueError(f"size: {self.model} makes {allowed}, not {self.size!r}")
        if self.quality is not None and self.quality not in OPENAI_QUALITY[family]:
            allowed = ", ".join(sorted(OPENAI_QUALITY[family]))
            raise ValueError(f"quality: {self.model} takes {allowed}, not {self.quality!r}")
        return self


class ImageGenerate(Node[ImageGenerateConfig]):
    """Images from a prompt, or an edit of an input image, by an image model."""

    type_name = "ai.image"
    display_name = "Generate image"
    icon = "sparkles"
    category = Category.AI_AGENT
    deterministic = False
    dynamic_ports = True
    Config = ImageGenerateConfig

    def inputs(self, config: ImageGenerateConfig) -> list[Port]:
        return [
            *(Port(name, PortType.ANY) for name in config.variables),
            Port(
                _IMAGE_PORT,
                PortType.IMAGE,
                required=False,
                default=None,
                description="an image to edit (optional)",
            ),
        ]

    def outputs(self, config: ImageGenerateConfig) -> list[Port]:
        return [
            Port("image", PortType.IMAGE, description="the first image"),
            Port("images", PortType.LIST, description="every image made"),
            Port("usage", PortType.OBJECT, description="tokens_in, tokens_out, images, cost"),
        ]

    async def run(
        self, ctx: RunContext, config: ImageGenerateConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        from flowloom.providers import ImagePart, ImageRequest

        if ctx.providers is None:
            raise ctx.fail("no AI providers are configured on this instance")
        scope = {name: inputs[name] for name in config.variables if name in inputs}
        prompt = str(await render_value(ctx, config.prompt, scope, "prompt")).strip()
        if not prompt:
            raise ctx.fail("prompt: say what to draw")
        given = await _read_images(ctx, inputs.get(_IMAGE_PORT))
        source = ImagePart(given[0][0], given[0][1]) if given else None
        if source is not None:
            _check_edit(ctx, config, source)
        request = ImageRequest(
            model=config.model,
            prompt=prompt,
            count=config.count,
            size=config.size,
            quality=config.quality,
            input_image=source,
        )
        with provider_call(ctx, config.credential):
            provider = await ctx.providers.resolve(
                config.provider, credential=config.credential, owner_id=ctx.owner_id
            )
            made = await provider.generate_images(request)
        cost = await _record(ctx, config, made, edited=source is not None)
        images = [await store_image(ctx, image.data) for image in made.images]
        return NodeResult(
            {
                "image": images[0],
                "images": images,
                "usage": {
                    "tokens_in": made.usage.tokens_in,
                    "tokens_out": made.usage.tokens_out,
                    "images": len(images),
                    "cost": None if cost is None else str(cost),
                },
            }
        )


EDIT_TYPES: Final = {
    "gpt-image": frozenset({"image/png", "image/jpeg", "image/webp"}),
    "dall-e-2": frozenset({"image/png"}),
    "dall-e-3": frozenset(),
    "gemini": frozenset({"image/png", "image/jpeg", "image/webp"}),
}
"""The image types each model family edits (DALL-E 3 edits none)."""


def _check_edit(ctx: RunContext, config: ImageGenerateConfig, source: Any) -> None:
    """Refuse, before anything is sent, an input image the model cannot edit."""
    accepted = EDIT_TYPES[_family(config.provider, config.model)]
    if not accepted:
        raise ctx.fail(f"image: {config.model} cannot edit an image (gpt-image-1 or dall-e-2 can)")
    if source.content_type not in accepted:
        allowed = ", ".join(sorted(accepted))
        raise ctx.fail(
            f"image: {config.model} edits {allowed}, not {source.content_type} "
            "(convert it with image.convert)"
        )


async def _record(
    ctx: RunContext, config: ImageGenerateConfig, made: Any, *, edited: bool
) -> Decimal | None:
    from flowloom.providers import UsageEvent

    event = UsageEvent(
        provider=config.provider,
        model=config.model,
        tokens_in=made.usage.tokens_in,
        tokens_out=made.usage.tokens_out,
        type="image",
        images=len(made.images),
        run_id=ctx.run_id,
        node_id=ctx.node_id,
        attempt=ctx.attempt,
        metadata={
            "node_type": "ai.image",
            "images": len(made.images),
            "size": config.size,
            "quality": config.quality,
            "edit": edited,
            "credential": config.credential,
        },
    )
    return await record_usage(ctx, event)
