"""Attribute docstrings reach JSON Schemas as field descriptions, as pydantic's
``use_attribute_docstrings`` put them, without reading any source while the classes are made."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from flowloom.field_docs import describe_fields


class Documented(BaseModel):
    model_config = ConfigDict(json_schema_extra=describe_fields)

    url: str
    """The address
    to fetch."""

    retries: int = 0
    timeout_s: float = Field(default=5.0, description="Said by Field.")
    """Not used: Field's description wins."""

    default: Any = None
    """A field named default."""

    tag: str = Field(default="", alias="label")
    """Shown under its alias."""


class Narrower(Documented):
    url: str = "https://example.test"

    retries: int = 1
    """Tries after the first."""


class Nested(BaseModel):
    model_config = ConfigDict(json_schema_extra=describe_fields)

    inner: Documented
    """A documented model inside."""


def _descriptions(schema: dict[str, Any]) -> dict[str, str | None]:
    return {name: prop.get("description") for name, prop in schema["properties"].items()}


def test_a_docstring_becomes_the_fields_description_and_field_keeps_its_own() -> None:
    assert _descriptions(Documented.model_json_schema()) == {
        "url": "The address\nto fetch.",
        "retries": None,
        "timeout_s": "Said by Field.",
        "default": "A field named default.",
        "label": "Shown under its alias.",
    }


def test_a_field_declared_again_in_a_subclass_takes_the_subclass_docstring_or_none() -> None:
    described = _descriptions(Narrower.model_json_schema())

    assert described["url"] is None
    assert described["retries"] == "Tries after the first."
    assert described["default"] == "A field named default."


def test_the_descriptions_match_pydantics_own_attribute_docstrings() -> None:
    """The same classes made with ``use_attribute_docstrings`` give the same schema, key order
    included (pydantic leaves a field named ``default`` unsorted)."""
    ours = json.dumps(globals()["Nested"].model_json_schema())

    class Documented(BaseModel):
        model_config = ConfigDict(use_attribute_docstrings=True)

        url: str
        """The address
        to fetch."""

        retries: int = 0
        timeout_s: float = Field(default=5.0, description="Said by Field.")
        """Not used: Field's description wins."""

        default: Any = None
        """A field named default."""

        tag: str = Field(default="", alias="label")
        """Shown under its alias."""

    class Nested(BaseModel):
        model_config = ConfigDict(use_attribute_docstrings=True)

        inner: Documented
        """A documented model inside."""

    assert ours == json.dumps(Nested.model_json_schema())


def test_models_made_inside_a_function_are_found() -> None:
    class Local(BaseModel):
        model_config = ConfigDict(json_schema_extra=describe_fields)

        size: int = 1
        """How many."""

    assert _descriptions(Local.model_json_schema()) == {"size": "How many."}


def test_a_model_without_source_has_no_descriptions() -> None:
    code = (
        "import json\n"
        "from pydantic import BaseModel, ConfigDict\n"
        "from flowloom.field_docs import describe_fields\n"
        "class Config(BaseModel):\n"
        "    model_config = ConfigDict(json_schema_extra=describe_fields)\n"
        "    size: int = 1\n"
        "    '''How many.'''\n"
        "print(json.dumps(Config.model_json_schema()['properties']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert json.loads(result.stdout) == {"size": {"default": 1, "title": "Size", "type": "integer"}}
