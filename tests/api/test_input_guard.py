"""The guard's scans on their own: the depth count (brackets in strings are text; UTF-16 is
read as json.loads() reads it) and the JSON storability scan (what it parses, what it names)."""

from __future__ import annotations

import json

import pytest

from flowloom.api.input_guard import MAX_JSON_DEPTH, json_too_deep
from flowloom.storable import find_unstorable_json


def nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


@pytest.mark.parametrize(
    ("body", "too_deep"),
    [
        (nested(MAX_JSON_DEPTH), False),
        (nested(MAX_JSON_DEPTH + 1), True),
        (b'{"a":' * MAX_JSON_DEPTH + b"1" + b"}" * MAX_JSON_DEPTH, False),
        (b'{"a":' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1), True),
        # Many brackets, little depth: a long flat list of lists.
        (b"[" + b",".join([b"[1]"] * 10_000) + b"]", False),
        # Brackets inside strings, escaped quotes included, are not nesting.
        (json.dumps({"a": '["\\"' * 1000, "b": "[" * 1000}).encode(), False),
        (json.dumps([{"k": "[[["}]).encode(), False),
        # json.loads() reads UTF-16 too; so does the count.
        (nested(MAX_JSON_DEPTH + 1).decode().encode("utf-16-le"), True),
        (nested(MAX_JSON_DEPTH).decode().encode("utf-16-le"), False),
        # Thousands deep: counted without recursing.
        (nested(100_000), True),
    ],
)
def test_depth_is_counted_outside_strings_without_recursion(body: bytes, too_deep: bool) -> None:
    assert json_too_deep(body) is too_deep


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (b'{"a": "\\u0000"}', "a"),
        (b'{"a": ["x", {"b": "\\udfff"}]}', "a.1.b"),
        (b'{"a": "\\ud83d"}', "a"),  # a high surrogate with no low one after it
        (b'{"a": "\xed\xa0\x80"}', "a"),  # a surrogate spelled as bytes
        (b'{"a": NaN}', "a"),
        (b'{"a": [1, -Infinity]}', "a.1"),
        (b'{"a": 1e400}', "a"),
        (b'{"a": 1' + b"0" * 400 + b".5}", "a"),
        (b'{"a": 1' + b"0" * 250 + b"e99}", "a"),  # 1e349: long, and a 2-digit exponent
        ('{"a": "\\u0000"}'.encode("utf-16"), "a"),
    ],
)
def test_unstorable_json_is_named_by_field(text: bytes, field: str) -> None:
    found = find_unstorable_json(text)
    assert found is not None
    assert found.field == field


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": "caf\\u00e9", "b": "\\ud83d\\ude00", "c": "plain"}',  # escapes, all storable
        b'{"a": "NaN and Infinity are words", "b": 1e300, "c": 1' + b"0" * 400 + b"}",
        b'{"a": "\\\\u0000"}',  # an escaped backslash, then the text u0000
        b"not json at all \\u0000",  # for the route to refuse as malformed
        nested(5000),  # past what json.loads() parses: for the depth check to refuse
        b"",
    ],
)
def test_storable_or_unparsable_json_is_not_named(text: bytes) -> None:
    assert find_unstorable_json(text) is None
