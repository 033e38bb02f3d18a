"""The tools an agent may call, as ``ai.agent``'s config and stored agents hold them.

A public contract with no behaviour: :mod:`flowloom.agents.tools` turns these shapes into the
tools a model sees. They live in the node layer, apart from ``ai.agent`` itself, so that the
agent loop can read them without importing the node that runs it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from flowloom.field_docs import describe_fields
from flowloom.nodes.mcp import McpInlineServer

__all__ = ["AgentTool", "HttpTool", "McpTools", "WorkflowTool"]

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EMPTY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


class _ToolBase(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=describe_fields)


class McpTools(_ToolBase):
    """The tools of one MCP server."""

    kind: Literal["mcp"]
    server: McpInlineServer | str
    """The id of one of your MCP integrations, or a server written inline (as in mcp.tool)."""
    tools: list[str] = Field(default_factory=list)
    """Only these of the server's tools; all of them when empty."""
    prefix: str = Field(default="", max_length=20, pattern=r"^[A-Za-z0-9_-]*$")
    """Put before each tool's name as the model sees it (to tell two servers apart)."""
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    """How long one tool call may take."""


class HttpTool(_ToolBase):
    """One HTTP request the model may make: the URL is a template over the arguments; POST,
    PUT and PATCH send the arguments as the JSON body."""

    kind: Literal["http"]
    name: str = Field(pattern=_TOOL_NAME.pattern)
    description: str = ""
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: str = Field(min_length=1)
    """``https://api.example.com/weather?city={{ city }}``: each argument is a variable."""
    headers: dict[str, str] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=lambda: dict(_EMPTY_OBJECT))
    """A JSON Schema of the arguments object the model fills in."""
    timeout_s: float = Field(default=30.0, gt=0, le=300)


class WorkflowTool(_ToolBase):
    """Another of your workflows, run as a sub-run with the arguments as its inputs; the tool's
    result is the sub-run's outputs."""

    kind: Literal["workflow"]
    name: str = Field(pattern=_TOOL_NAME.pattern)
    description: str = ""
    workflow_id: str = Field(min_length=1, json_schema_extra={"x-refers-to": "workflow"})
    version: int | None = Field(default=None, ge=1)
    parameters: dict[str, Any] = Field(default_factory=lambda: dict(_EMPTY_OBJECT))
    """A JSON Schema of the inputs the model fills in."""


AgentTool = Annotated[McpTools | HttpTool | WorkflowTool, Field(discriminator="kind")]
