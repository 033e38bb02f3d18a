"""Workflow definitions built in tests: one way to write an edge."""

from __future__ import annotations


def edge(source: str, source_port: str, target: str, target_port: str) -> dict[str, str]:
    """An edge of a workflow definition, its id named after its ends."""
    return {
        "id": f"{source}.{source_port}->{target}.{target_port}",
        "source": source,
        "sourceHandle": source_port,
        "target": target,
        "targetHandle": target_port,
    }
