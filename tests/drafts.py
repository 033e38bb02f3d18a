"""Workflow drafts a model might answer when asked for a workflow (the generation tests): one
valid, one with a misspelt node type that validation names."""

from __future__ import annotations

from typing import Any

GOOD: dict[str, Any] = {
    "name": "Shout",
    "nodes": [
        {"id": "say", "type": "text.value", "data": {"config": {"text": "hi"}}},
        {
            "id": "loud",
            "type": "text.template",
            "data": {"config": {"template": "{{ t | upper }}", "variables": ["t"]}},
        },
    ],
    "edges": [
        {"id": "e1", "source": "say", "sourceHandle": "text", "target": "loud", "targetHandle": "t"}
    ],
}
BROKEN: dict[str, Any] = {
    **GOOD,
    "nodes": [GOOD["nodes"][0], {**GOOD["nodes"][1], "type": "text.tempalte"}],
}
