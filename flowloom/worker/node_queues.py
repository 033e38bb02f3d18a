"""Which node types run on a Celery queue of their own (``settings.worker_node_queues``).

A route maps a node type (``image.resize``) or a pattern (``image.*``, matched with
``fnmatch``) to a queue name; the Celery queue is ``<worker_queue>.<name>``, so instances that
share a broker keep apart as they do for runs. An exact type wins over every pattern, and a
longer pattern over a shorter one; a route to ``""`` keeps its types on the driver.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase

__all__ = ["NodeRoutes", "queue_name"]


def queue_name(namespace: str, name: str) -> str:
    """The Celery queue of the routed queue ``name`` of the instance ``namespace``."""
    return f"{namespace}.{name}"


class NodeRoutes:
    """The routes of one instance; ``queue_for`` answers from a cache after the first ask."""

    def __init__(self, routes: Mapping[str, str], *, namespace: str) -> None:
        self.namespace = namespace
        self._exact = {
            pattern: name for pattern, name in routes.items() if not _is_pattern(pattern)
        }
        self._patterns = sorted(
            ((pattern, name) for pattern, name in routes.items() if _is_pattern(pattern)),
            key=lambda item: -len(item[0]),
        )
        self._found: dict[str, str | None] = {}

    def queue_for(self, node_type: str) -> str | None:
        """The Celery queue that runs ``node_type``, or None: the driver runs it itself."""
        try:
            return self._found[node_type]
        except KeyError:
            pass
        name = self._exact.get(node_type)
        if name is None:
            name = next(
                (name for pattern, name in self._patterns if fnmatchcase(node_type, pattern)), ""
            )
        found = queue_name(self.namespace, name) if name else None
        self._found[node_type] = found
        return found

    def queues(self) -> list[str]:
        """Every Celery queue a route names (what a worker consumes besides the runs')."""
        names = {*self._exact.values(), *(name for _, name in self._patterns)}
        return sorted(queue_name(self.namespace, name) for name in names if name)


def _is_pattern(text: str) -> bool:
    return any(char in text for char in "*?[")
