"""A two-node workflow the trigger tests share: a manual trigger's ``name`` -> a greeting."""

from __future__ import annotations

from typing import Any

GREETING: dict[str, Any] = {
    "schema_version": 1,
    "nodes": [
        {
            "id": "in",
            "type": "trigger.manual",
            "data": {"config": {"fields": [{"name": "name", "type": "string"}]}},
        },
        {
            "id": "greet",
            "type": "text.template",
            "data": {"config": {"template": "hello {{ name }}", "variables": ["name"]}},
        },
    ],
    "edges": [
        {
            "id": "e1",
            "source": "in",
            "sourceHandle": "name",
            "target": "greet",
            "targetHandle": "name",
        }
    ],
}
