"""Agents: the model <-> tools loop, shared by the ``ai.agent`` node and by threads.

:mod:`flowloom.agents.loop` and :mod:`flowloom.agents.tools` import neither storage nor the
API, so nodes use them; :mod:`flowloom.agents.threads` (conversations stored in the database)
is for the API only and is not imported here.
"""

from flowloom.agents.loop import (
    LoopOptions,
    LoopOutcome,
    Recorder,
    StepFailed,
    Totals,
    run_agent_loop,
)
from flowloom.agents.tools import (
    AgentTool,
    HttpTool,
    McpTools,
    Toolbox,
    ToolOutcome,
    WorkflowTool,
    open_toolbox,
)

__all__ = [
    "AgentTool",
    "HttpTool",
    "LoopOptions",
    "LoopOutcome",
    "McpTools",
    "Recorder",
    "StepFailed",
    "ToolOutcome",
    "Toolbox",
    "Totals",
    "WorkflowTool",
    "open_toolbox",
    "run_agent_loop",
]
