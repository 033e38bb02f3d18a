"""Model names are checked where they come in: real names pass, names that would break or
redirect a provider's URL are refused naming the field."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from flowloom.nodes import default_registry
from flowloom.providers.model_names import ModelName

REAL = [
    "gpt-4o-2024-08-06",
    "ft:gpt-4o-mini:acme::abc123",
    "claude-3-5-sonnet@20240620",
    "models/gemini-2.0-flash",
    "llama3.1:8b",
    "hf.co/org/model:Q4_K_M",
]
BROKEN = ["a\x19b", "gpt 4o", "../files", "models/../x", "x?key=1", "x#y", "x%2F", "-x", "a//b"]


class Holder(BaseModel):
    model: ModelName


@pytest.mark.parametrize("name", REAL)
def test_real_model_names_pass(name: str) -> None:
    assert Holder(model=name).model == name


@pytest.mark.parametrize("name", BROKEN)
def test_names_that_would_break_a_url_are_refused(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Holder(model=name)
    assert caught.value.errors()[0]["loc"] == ("model",)


@pytest.mark.parametrize("node_type", ["ai.llm", "ai.agent"])
def test_model_nodes_refuse_such_a_name_naming_the_field(node_type: str) -> None:
    node = default_registry().get(node_type)
    with pytest.raises(ValidationError) as caught:
        node.parse_config({"model": "gemini\x19pro", "user_message": "hi"})
    assert [error["loc"] for error in caught.value.errors()] == [("model",)]
