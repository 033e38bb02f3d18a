"""Attribute docstrings as field descriptions, read when a JSON Schema is made, not at import.

A model whose config is ``ConfigDict(json_schema_extra=describe_fields)`` documents a field with
a string right under it, and its JSON Schema (the node config form, the OpenAPI document) shows
that string as the field's description, as pydantic's ``use_attribute_docstrings`` would::

    class Config(BaseModel):
        model_config = ConfigDict(json_schema_extra=describe_fields)

        url: str
        \"\"\"The address to fetch.\"\"\"

``use_attribute_docstrings`` reads each model's source as the class is made: for the node
configs and schemas loaded at start-up that was some 55 ms of a server's start, for
descriptions that only a JSON Schema shows. Here a module's source is parsed once, the first
time a schema of one of its models is made. A ``Field(description=...)`` keeps its own text;
a field re-declared in a subclass takes the subclass's docstring (or none), as pydantic's does.
"""

from __future__ import annotations

import ast
import inspect
import sys
from functools import cache
from typing import Any

from pydantic import BaseModel

__all__ = ["describe_fields"]


def describe_fields(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    """Add each documented field's docstring to ``schema`` (``cls``'s JSON Schema) as its
    ``description``: a pydantic ``json_schema_extra`` callable."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return
    for name, field in cls.model_fields.items():
        if field.description is not None:
            continue
        key = field.alias if field.alias in properties else name
        prop = properties.get(key)
        doc = _docstring(cls, name)
        if isinstance(prop, dict) and doc is not None:
            _describe(prop, doc)


def _describe(prop: dict[str, Any], doc: str) -> None:
    """Set ``prop``'s description where pydantic puts one: before the field's title. (Pydantic
    sorts a schema's keys afterwards, but not those of a field named ``default``.)"""
    if "title" not in prop:
        prop["description"] = doc
        return
    entries = list(prop.items())
    prop.clear()
    for key, value in entries:
        if key == "title":
            prop["description"] = doc
        prop[key] = value


def _docstring(cls: type[BaseModel], name: str) -> str | None:
    """The docstring under ``name`` in the nearest class of ``cls``'s that declares it."""
    for owner in cls.__mro__:
        if name in inspect.get_annotations(owner):
            return _class_docstrings(owner.__module__).get(owner.__qualname__, {}).get(name)
    return None


@cache
def _class_docstrings(module_name: str) -> dict[str, dict[str, str]]:
    """Each class of the module by qualified name, with its attributes' docstrings."""
    module = sys.modules.get(module_name)
    try:
        source = inspect.getsource(module) if module is not None else ""
    except (OSError, TypeError):  # no source shipped: no descriptions
        return {}
    found: dict[str, dict[str, str]] = {}
    _collect(ast.parse(source).body, "", found)
    return found


def _collect(body: list[ast.stmt], prefix: str, found: dict[str, dict[str, str]]) -> None:
    for node in body:
        if isinstance(node, ast.ClassDef):
            qualname = f"{prefix}{node.name}"
            found[qualname] = _attribute_docstrings(node)
            _collect(node.body, f"{qualname}.", found)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _collect(node.body, f"{prefix}{node.name}.<locals>.", found)


def _attribute_docstrings(node: ast.ClassDef) -> dict[str, str]:
    """``name: type`` statements of the class body directly followed by a string."""
    docs: dict[str, str] = {}
    for stmt, after in zip(node.body, node.body[1:], strict=False):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[stmt.target.id] = inspect.cleandoc(after.value.value)
    return docs
