"""Text nodes: a fixed value, a sandboxed template, joining and splitting."""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator, model_validator

from flowloom.nodes.base import (
    Category,
    Node,
    NodeConfig,
    NodeResult,
    Port,
    PortType,
    RunContext,
)

if TYPE_CHECKING:
    from flowloom.nodes._sandbox import BoundedSandbox

__all__ = [
    "TextJoin",
    "TextJoinConfig",
    "TextSplit",
    "TextSplitConfig",
    "TextTemplate",
    "TextTemplateConfig",
    "TextValue",
    "TextValueConfig",
    "sandbox",
]


def sandbox() -> BoundedSandbox:
    """The one Jinja2 environment every template renders in (``flowloom.nodes._sandbox``).

    Sandboxed, bounded in time and memory, StrictUndefined (a missing variable is an error
    naming it, never an empty string), and no autoescaping (the output is text, not HTML).
    Built on first use: importing Jinja2 costs start-up time.
    """
    from flowloom.nodes._sandbox import sandbox as bounded

    return bounded()


class TextValueConfig(NodeConfig):
    text: str = ""
    """The text this node outputs."""


class TextValue(Node[TextValueConfig]):
    """A fixed piece of text."""

    type_name = "text.value"
    display_name = "Text"
    icon = "text"
    category = Category.ACTION
    pure = True
    Config = TextValueConfig

    def outputs(self, config: TextValueConfig) -> list[Port]:
        return [Port("text", PortType.STRING)]

    async def run(
        self, ctx: RunContext, config: TextValueConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        return NodeResult({"text": config.text})


class TextTemplateConfig(NodeConfig):
    template: str = ""
    """Jinja2 template text, rendered in the sandbox; ``{{ name }}`` reads the input ``name``."""
    variables: list[str] = Field(default_factory=list)
    """The template's variables; each becomes an input port of the same name."""

    @field_validator("variables")
    @classmethod
    def _check_variables(cls, names: list[str]) -> list[str]:
        reserved = set(cls.model_fields)
        for name in names:
            if not name.isidentifier():
                raise ValueError(f"variable {name!r} is not a valid name (letters, digits, _)")
            if name in reserved:
                raise ValueError(f"variable {name!r} clashes with the setting of that name")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"variables declared twice: {', '.join(duplicates)}")
        return names

    @model_validator(mode="after")
    def _check_template(self) -> TextTemplateConfig:
        from jinja2 import TemplateSyntaxError, meta

        env = sandbox()
        try:
            parsed = env.parse(self.template)
        except TemplateSyntaxError as exc:
            raise ValueError(f"template syntax error on line {exc.lineno}: {exc.message}") from None
        used = meta.find_undeclared_variables(parsed) - set(env.globals)
        undeclared = sorted(used - set(self.variables))
        if undeclared:
            names = ", ".join(repr(name) for name in undeclared)
            raise ValueError(f"the template uses {names}, not declared in variables")
        return self


class TextTemplate(Node[TextTemplateConfig]):
    """Text from a Jinja2 template over the node's inputs, rendered in a sandbox."""

    type_name = "text.template"
    display_name = "Text template"
    icon = "template"
    category = Category.ACTION
    pure = True
    dynamic_ports = True
    Config = TextTemplateConfig
    # The template is this node's own work; the engine must not render it beforehand.
    raw_template_fields = frozenset({"template"})

    def inputs(self, config: TextTemplateConfig) -> list[Port]:
        return [Port(name, PortType.ANY) for name in config.variables]

    def outputs(self, config: TextTemplateConfig) -> list[Port]:
        return [Port("text", PortType.STRING)]

    async def run(
        self, ctx: RunContext, config: TextTemplateConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        from jinja2 import TemplateError
        from jinja2.exceptions import SecurityError

        from flowloom.nodes._sandbox import TemplateLimitExceeded, render

        try:
            template = _compile(config.template)
            # Only the inputs that arrived: StrictUndefined then names a missing one.
            variables = {k: v for k, v in inputs.items() if k in config.variables}
            text = await render(template, variables)
        except TemplateLimitExceeded as exc:
            raise ctx.fail(f"template: {exc}") from None
        except SecurityError as exc:
            raise ctx.fail(f"the template did something the sandbox forbids: {exc}") from None
        except TemplateError as exc:
            raise ctx.fail(f"template error: {exc}") from None
        return NodeResult({"text": text})


@functools.lru_cache(maxsize=256)
def _compile(source: str) -> Any:
    # Compiling is the costly part of rendering; a graph renders the same template many times.
    return sandbox().from_string(source)


class TextJoinConfig(NodeConfig):
    separator: str = ""
    """Put between items."""


class TextJoin(Node[TextJoinConfig]):
    """One text from several items, with a separator between them.

    ``items`` is a list port: each edge brings one item, in edge order, and an item that is a
    list brings its elements (so one edge carrying a list works too). Strings are taken as they
    are, other scalars as their text, objects as JSON; ``null`` items are skipped.
    """

    type_name = "text.join"
    display_name = "Join texts"
    icon = "join"
    category = Category.ACTION
    pure = True
    Config = TextJoinConfig

    def inputs(self, config: TextJoinConfig) -> list[Port]:
        return [Port("items", PortType.ANY, is_list=True)]

    def outputs(self, config: TextJoinConfig) -> list[Port]:
        return [Port("text", PortType.STRING)]

    async def run(
        self, ctx: RunContext, config: TextJoinConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        items = inputs["items"]
        if not isinstance(items, list):
            raise ctx.fail(f"items must arrive as a list, got {type(items).__name__}")
        flat: list[Any] = []
        for item in items:
            if isinstance(item, list):
                flat.extend(item)
            else:
                flat.append(item)
        text = config.separator.join(_as_text(item) for item in flat if item is not None)
        return NodeResult({"text": text})


def _as_text(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, dict | list):
        return json.dumps(item, ensure_ascii=False)
    return str(item)


class TextSplitConfig(NodeConfig):
    separator: str = "\n"
    """Split at each occurrence (``\\n``, the default: at each line break); empty splits at any
    run of whitespace."""
    strip: bool = True
    """Trim whitespace around each item."""
    drop_empty: bool = True
    """Leave out items that are empty (after trimming)."""
    max_items: int | None = Field(default=None, ge=1)
    """At most this many items; the last one holds the rest of the text."""


class TextSplit(Node[TextSplitConfig]):
    """A list of texts from one text, split at a separator."""

    type_name = "text.split"
    display_name = "Split text"
    icon = "scissors"
    category = Category.ACTION
    pure = True
    Config = TextSplitConfig

    def inputs(self, config: TextSplitConfig) -> list[Port]:
        return [Port("text", PortType.STRING)]

    def outputs(self, config: TextSplitConfig) -> list[Port]:
        return [Port("items", PortType.LIST)]

    async def run(
        self, ctx: RunContext, config: TextSplitConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        text = inputs["text"]
        if not isinstance(text, str):
            raise ctx.fail(f"text must be a string, got {type(text).__name__}")
        max_split = -1 if config.max_items is None else config.max_items - 1
        parts = text.split(config.separator or None, max_split)
        if config.strip:
            parts = [part.strip() for part in parts]
        if config.drop_empty:
            parts = [part for part in parts if part]
        return NodeResult({"items": parts})
