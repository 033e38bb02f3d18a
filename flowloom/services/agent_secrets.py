"""How an agent's tool secrets look from outside: hidden in answers, kept when sent back hidden.

The values themselves rest sealed in the vault (:mod:`flowloom.storage.repos.agents`). Every
answer shows each secret value (HTTP tool headers, an inline MCP server's env and headers) as
``********``; a client that sends ``********`` back in a change means "keep the stored value".
"""

from __future__ import annotations

import copy
from typing import Any

from flowloom.exceptions import InputError
from flowloom.nodes.agent import AgentTool
from flowloom.storage.repos.agents import HIDDEN, secret_maps

__all__ = ["public_tools", "resolve_hidden"]


def public_tools(tools: list[Any]) -> list[dict[str, Any]]:
    """``tools`` as an answer shows them: every secret value ``********``."""
    shown: list[dict[str, Any]] = []
    for tool in tools:
        copied: dict[str, Any] = copy.deepcopy(tool)
        for _where, values in secret_maps(copied):
            for name in values:
                values[name] = HIDDEN
        shown.append(copied)
    return shown


def _tool_key(tool: dict[str, Any], index: int) -> str:
    """Which stored tool a sent one stands for: HTTP tools by name, MCP servers by address."""
    if tool.get("kind") == "http":
        return f"http:{tool.get('name')}"
    server = tool.get("server")
    if isinstance(server, dict):
        return f"mcp:{server.get('transport')}:{server.get('command') or server.get('url')}"
    return f"{tool.get('kind')}:{index}"


def resolve_hidden(tools: list[AgentTool], stored: list[Any] | None = None) -> list[dict[str, Any]]:
    """The tools with their secret values, each ``********`` replaced by the value it stands
    for in ``stored`` (the current tools, secrets opened). InputError naming the field for a
    ``********`` that stands for nothing stored."""
    dumped = [tool.model_dump(mode="json", exclude_defaults=False) for tool in tools]
    previous = {
        _tool_key(tool, i): dict(secret_maps(tool))
        for i, tool in enumerate(stored or [])
        if isinstance(tool, dict)
    }
    for index, tool in enumerate(dumped):
        old = previous.get(_tool_key(tool, index), {})
        for where, values in secret_maps(tool):
            for name, value in values.items():
                if value != HIDDEN:
                    continue
                kept = old.get(where, {}).get(name)
                if kept is None:
                    raise InputError(
                        f"tools[{index}].{where}.{name}: {HIDDEN} stands for a stored value, "
                        "and there is none; send the value itself",
                        field=f"tools.{index}.{where}.{name}",
                    )
                values[name] = kept
    return dumped
