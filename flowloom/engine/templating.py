"""Templates in string config fields (DESIGN §2), rendered just before a node runs.

A string anywhere in a node's config fields (nested in lists and objects too) that contains
``{{`` is a Jinja2 template over the node's resolved inputs, rendered in the same sandbox as
``text.template`` (StrictUndefined: a name that is not an input is an error, never ""). Fields
a node renders itself (``Node.raw_template_fields``) and literals for input ports are left as
written. The rendered config is validated again by the node's config model, and the cache
signature is computed over it, so two runs that render to the same config share a result.

Which fields hold templates is decided once per workflow version (``templated_fields``), so
nodes without templates cost nothing per execution. The sandbox bounds every render in time,
size and memory (``flowloom.nodes._sandbox``); a template that can run long renders off the
event loop, and one that passes a limit fails the node with TemplateFailed naming the field.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from flowloom.nodes.base import Node

__all__ = ["TemplateFailed", "render_config", "templated_fields"]

_MARK = "{{"


class TemplateFailed(Exception):
    """A config template did not render, or rendered to a config the node refuses."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"config field {field!r}: {message}")


def templated_fields(node: Node[Any], raw: Mapping[str, Any]) -> frozenset[str]:
    """The config fields of ``raw`` that hold at least one template the engine must render."""
    fields = node.Config.model_fields
    return frozenset(
        name
        for name, value in raw.items()
        if name in fields and name not in node.raw_template_fields and _has_template(value)
    )


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return _MARK in value
    if isinstance(value, dict):
        return any(_has_template(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_template(item) for item in value)
    return False


async def render_config(
    node: Node[Any], raw: Mapping[str, Any], fields: frozenset[str], inputs: Mapping[str, Any]
) -> tuple[dict[str, Any], Any]:
    """The config with ``fields`` rendered over ``inputs``: as JSON, and parsed by the node.

    TemplateFailed names the field (``headers.Authorization``, ``items.2``) that failed.
    """
    rendered = dict(raw)
    for name in fields:
        rendered[name] = await _render(rendered[name], name, inputs)
    try:
        parsed = node.parse_config(rendered)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "config"
        raise TemplateFailed(where, f"rendered to a bad value: {first['msg']}") from None
    return rendered, parsed


async def _render(value: Any, path: str, inputs: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return await _render_text(value, path, inputs) if _MARK in value else value
    if isinstance(value, dict):
        return {key: await _render(item, f"{path}.{key}", inputs) for key, item in value.items()}
    if isinstance(value, list):
        return [await _render(item, f"{path}.{index}", inputs) for index, item in enumerate(value)]
    return value


async def _render_text(source: str, path: str, inputs: Mapping[str, Any]) -> str:
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError

    from flowloom.nodes._sandbox import TemplateLimitExceeded, render

    try:
        return await render(_compile(source), inputs)
    except TemplateLimitExceeded as exc:
        raise TemplateFailed(path, str(exc)) from None
    except SecurityError as exc:
        raise TemplateFailed(path, f"the sandbox forbids what the template did: {exc}") from None
    except TemplateError as exc:
        raise TemplateFailed(path, f"template error: {exc}") from None


@functools.lru_cache(maxsize=512)
def _compile(source: str) -> Any:
    # Compiling costs far more than rendering, and a graph renders the same field many times.
    from flowloom.nodes._sandbox import sandbox

    return sandbox().from_string(source)
