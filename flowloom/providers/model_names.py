"""What a model name may look like, checked wherever one comes in (node configs, agents,
generation requests), before any provider sees it.

Providers put the name in a JSON body or, for Gemini, in the URL path of the request
(``models/{name}:generateContent``). A name with control characters makes the HTTP client
refuse the URL; one with ``?``, ``#``, ``%`` or ``..`` would change which address is called
with the user's key. Real names use letters, digits and ``. _ : @ / + -`` only:
``gpt-4o-2024-08-06``, ``ft:gpt-4o-mini:acme::abc123``, ``claude-3-5-sonnet@20240620``,
``models/gemini-2.0-flash``, ``llama3.1:8b``, ``hf.co/org/model:Q4_K_M``.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import AfterValidator, Field

__all__ = ["MODEL_NAME_MAX_LENGTH", "ModelName", "check_model_name"]

MODEL_NAME_MAX_LENGTH: Final = 200
_SHAPE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+-]*")


def check_model_name(name: str) -> str:
    """``name`` unchanged; ValueError saying what is wrong when it is no model name."""
    if not _SHAPE.fullmatch(name):
        raise ValueError(
            "a model name starts with a letter or digit and holds only letters, digits"
            " and . _ : @ / + -"
        )
    if ".." in name or "//" in name:
        raise ValueError("a model name may not hold '..' or '//'")
    return name


ModelName = Annotated[
    str,
    Field(min_length=1, max_length=MODEL_NAME_MAX_LENGTH),
    AfterValidator(check_model_name),
]
"""A model name as every input that takes one accepts it (see the module)."""
