"""Ports: the typed inputs and outputs of a node, and which port types may be wired together.

The set of port types is small and closed on purpose: the canvas colours handles by type, the
validator checks every edge against it, and the CLI coerces ``--input`` text to it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

__all__ = [
    "NO_DEFAULT",
    "Port",
    "PortType",
    "compatible",
    "json_type_name",
    "value_matches",
]


class PortType(StrEnum):
    """The type of the values a port carries."""

    ANY = "any"
    """Anything JSON can hold, plus image references."""
    STRING = "string"
    NUMBER = "number"
    """An integer or a float (never a boolean)."""
    INTEGER = "integer"
    BOOLEAN = "boolean"
    OBJECT = "object"
    """A JSON object (a ``dict`` with string keys)."""
    LIST = "list"
    IMAGE = "image"
    """A blob reference: ``{"sha256", "content_type", "width", "height", "size"}``."""


class _NoDefault(enum.Enum):
    NO_DEFAULT = enum.auto()

    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Final = _NoDefault.NO_DEFAULT
"""Marks a port without a default value (``None`` is a legitimate default)."""


@dataclass(frozen=True, slots=True)
class Port:
    """One named input or output of a node.

    An input port takes its value from an edge, else from a literal of the same name in the
    node's config, else from ``default``. ``is_list`` input ports accept several edges and
    receive their values as a list, in edge order; ``type`` is then the type of one item.
    """

    name: str
    type: PortType = PortType.ANY
    required: bool = True
    is_list: bool = False
    default: Any = NO_DEFAULT
    description: str = ""

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT

    def to_json(self) -> dict[str, Any]:
        """The port as the node-type schema publishes it (``default`` only when there is one)."""
        data: dict[str, Any] = {
            "name": self.name,
            "type": self.type.value,
            "required": self.required,
            "is_list": self.is_list,
            "description": self.description,
        }
        if self.has_default:
            data["default"] = self.default
        return data


# Widening conversions that lose nothing: every integer is a number, every image is an object.
_WIDENS: Final = frozenset({(PortType.INTEGER, PortType.NUMBER), (PortType.IMAGE, PortType.OBJECT)})


def compatible(source: PortType, target: PortType) -> bool:
    """Whether an output of type ``source`` may feed an input of type ``target``.

    ``any`` is compatible both ways (the value is checked when it arrives); otherwise the types
    must be equal or ``source`` must widen to ``target`` (integer -> number, image -> object).
    """
    if source is PortType.ANY or target is PortType.ANY or source is target:
        return True
    return (source, target) in _WIDENS


def value_matches(port_type: PortType, value: Any) -> bool:
    """Whether ``value`` is a value of ``port_type`` (``bool`` is never a number)."""
    match port_type:
        case PortType.ANY:
            return True
        case PortType.STRING:
            return isinstance(value, str)
        case PortType.NUMBER:
            return isinstance(value, int | float) and not isinstance(value, bool)
        case PortType.INTEGER:
            return isinstance(value, int) and not isinstance(value, bool)
        case PortType.BOOLEAN:
            return isinstance(value, bool)
        case PortType.OBJECT:
            return isinstance(value, dict)
        case PortType.LIST:
            return isinstance(value, list)
        case PortType.IMAGE:
            return isinstance(value, dict) and isinstance(value.get("sha256"), str)
    return False  # pragma: no cover - the match above is exhaustive


def json_type_name(value: Any) -> str:
    """The JSON name of a value's type, for messages: ``string``, ``number``, ``object``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
