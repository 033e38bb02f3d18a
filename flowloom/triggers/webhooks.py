"""What a webhook does when called: its options, and how a request becomes run inputs.

A webhook's ``config`` holds ``respond``: ``"run"`` (answer 202 with the run's id at once, the
default) or ``"output"`` (wait for the run to finish, up to ``timeout_s``, and answer with its
outputs). The request's JSON body, an object, is the run's inputs, exactly as
``POST /workflows/{id}/runs`` takes ``inputs``: each key feeds the ``trigger.manual`` field of
that name. An empty body is no inputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Literal

from flowloom.exceptions import InputError

__all__ = [
    "DEFAULT_OUTPUT_TIMEOUT_S",
    "MAX_OUTPUT_TIMEOUT_S",
    "TOKEN_HEADER",
    "TOKEN_QUERY",
    "Respond",
    "WebhookOptions",
    "inputs_from_body",
]

TOKEN_HEADER: Final = "X-Flowloom-Token"
"""The header that carries a webhook's token (or the ``token`` query parameter)."""
TOKEN_QUERY: Final = "token"

Respond = Literal["run", "output"]

DEFAULT_OUTPUT_TIMEOUT_S: Final = 30.0
MAX_OUTPUT_TIMEOUT_S: Final = 300.0


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    """How a webhook answers; stored in the trigger's ``config``."""

    respond: Respond = "run"
    timeout_s: float = DEFAULT_OUTPUT_TIMEOUT_S
    """With ``respond="output"``: the longest wait for the run; past it the answer is 202."""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> WebhookOptions:
        """The options stored in ``config``; anything unreadable falls back to the default."""
        respond: Respond = "output" if config.get("respond") == "output" else "run"
        timeout = config.get("timeout_s")
        if isinstance(timeout, int | float) and 0 < timeout <= MAX_OUTPUT_TIMEOUT_S:
            return cls(respond, float(timeout))
        return cls(respond)

    def to_config(self) -> dict[str, Any]:
        return {"respond": self.respond, "timeout_s": self.timeout_s}


def inputs_from_body(body: bytes, *, max_bytes: int) -> dict[str, Any]:
    """The run inputs a request body stands for: a JSON object, or nothing for an empty body.

    InputError naming ``body`` for anything else (malformed JSON, JSON nested deeper than the
    parser goes, a list, a number), and ``inputs`` for a body over ``max_bytes``. Over the API
    the body has already passed ``flowloom.api.input_guard`` (no unstorable text, no nesting
    past its depth limit), so it is parsed here once, with nothing checked twice on this hot
    path.
    """
    if len(body) > max_bytes:
        raise InputError(
            f"run inputs may be at most {max_bytes} bytes as JSON; this body is {len(body)}",
            field="inputs",
        )
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise InputError("the body is not valid JSON", field="body") from None
    if not isinstance(value, dict):
        raise InputError(
            "the body must be a JSON object: its keys are the run's inputs", field="body"
        )
    return value
