"""Prefixed, time-ordered ids in the TypeID style: ``run_01jd4y9q6xf3k8r2m5t7v9w0ab``.

The suffix is a UUIDv7 written in 26 characters of Crockford's base32, lower case. Because the
alphabet sorts in ASCII order and the suffix has a fixed length, ids of one kind sort by creation
time as plain strings, so "newest first" is a keyset walk on the primary key. Within one process,
ids made in the same millisecond still sort in the order they were made (a monotonic counter
fills the random bits, as ULID's monotonic mode does).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Final, NewType

__all__ = [
    "PREFIXES",
    "AgentId",
    "ApiKeyId",
    "ArtifactId",
    "NodeExecutionId",
    "RunId",
    "UserId",
    "WorkflowId",
    "id_floor",
    "id_timestamp_ms",
    "idempotency_key",
    "idempotency_keys",
    "new_id",
    "new_ids",
    "parse_id",
]

UserId = NewType("UserId", str)
ApiKeyId = NewType("ApiKeyId", str)
WorkflowId = NewType("WorkflowId", str)
RunId = NewType("RunId", str)
NodeExecutionId = NewType("NodeExecutionId", str)
ArtifactId = NewType("ArtifactId", str)
AgentId = NewType("AgentId", str)

#: Every kind of id flowloom makes, by table. A prefix is 1-8 lower-case letters.
PREFIXES: Final = {
    "users": "usr",
    "user_identities": "ident",
    "user_settings": "uset",
    "api_keys": "key",
    "workflows": "wf",
    "workflow_versions": "wfv",
    "workflow_runs": "run",
    "node_executions": "nex",
    "artifacts": "art",
    "workflow_triggers": "trg",
    "integrations": "intg",
    "credentials": "cred",
    "oauth_tokens": "oauth",
    "ai_models": "aim",
    "ai_generation_history": "gen",
    "agents": "agnt",
    "threads": "thrd",
    "messages": "msg",
    "packages": "pkg",
    "user_subscriptions": "sub",
    "usage": "use",
    "validation_logs": "vlog",
    "debug_sessions": "dbg",
    "workflow_memory": "mem",
    "node_templates": "ntpl",
    "system_settings": "sset",
    "audit_log": "aud",
    "sessions": "sess",
}

_ALPHABET: Final = "0123456789abcdefghjkmnpqrstvwxyz"
_DECODE: Final = {c: i for i, c in enumerate(_ALPHABET)}
_SUFFIX_LEN: Final = 26
_RAND_BITS: Final = 74  # 128 - 48 (ms timestamp) - 4 (version) - 2 (variant)

_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def _next_parts() -> tuple[int, int]:
    global _last_ms, _last_rand
    now_ms = time.time_ns() // 1_000_000
    with _lock:
        if now_ms <= _last_ms:
            # Same (or an earlier, if the clock stepped back) millisecond: count up from the last
            # value so ids stay strictly increasing in this process.
            now_ms = _last_ms
            rand = _last_rand + 1
            if rand >> _RAND_BITS:
                now_ms += 1
                rand = int.from_bytes(os.urandom(10)) >> (80 - _RAND_BITS + 1)
        else:
            # Leave the top bit clear so that many increments fit before a carry.
            rand = int.from_bytes(os.urandom(10)) >> (80 - _RAND_BITS + 1)
        _last_ms, _last_rand = now_ms, rand
    return now_ms, rand


def _uuid7_int() -> int:
    ms, rand = _next_parts()
    rand_a = rand >> 62  # 12 bits
    rand_b = rand & ((1 << 62) - 1)
    return (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b


_PAIRS: Final = tuple(high + low for high in _ALPHABET for low in _ALPHABET)
"""Every two-digit string, by its 10-bit value: an id is 13 lookups, not 26 (every row's id)."""
_PAIR_SHIFTS: Final = tuple(range(_SUFFIX_LEN * 5 - 10, -1, -10))
_LOW_62: Final = (1 << 62) - 1
_HEAD_SHIFTS: Final = _PAIR_SHIFTS[:-1]
"""The pairs of an id but its last (the low ten bits of its value)."""


def _encode(value: int) -> str:
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


def new_id(prefix: str) -> str:
    """A new id such as ``run_01jd4y9q6xf3k8r2m5t7v9w0ab``; later calls sort after earlier ones."""
    return f"{prefix}_{_encode(_uuid7_int())}"


def new_ids(prefix: str, count: int) -> list[str]:
    """``count`` new ids of one kind, in the order they were made: what ``count`` calls of
    ``new_id`` return, with one clock read and one lock for all (a run's node rows: a tenth of
    starting a 100,000-node run was making their ids one by one)."""
    global _last_ms, _last_rand
    if count < 0:
        raise ValueError(f"cannot make {count} ids")
    if count == 0:
        return []
    now_ms = time.time_ns() // 1_000_000
    with _lock:
        if now_ms <= _last_ms:
            now_ms, first = _last_ms, _last_rand + 1
        else:
            first = int.from_bytes(os.urandom(10)) >> (80 - _RAND_BITS + 1)
        last = first + count - 1
        carries = bool(last >> _RAND_BITS)
        if not carries:
            _last_ms, _last_rand = now_ms, last
    if carries:
        # The counter would overflow into the next millisecond: as new_id does, one by one.
        return [new_id(prefix) for _ in range(count)]
    made: list[str] = []
    rand = first
    while rand <= last:
        value = (
            (now_ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & _LOW_62)
        )
        # Up to 1024 consecutive ids share all but their last two characters (the value's low
        # ten bits, which are the counter's): those are encoded once, then one pair an id.
        head = prefix + "_" + "".join([_PAIRS[(value >> shift) & 1023] for shift in _HEAD_SHIFTS])
        low = value & 1023
        stop = low + min(1024 - low, last - rand + 1)
        made += [head + pair for pair in _PAIRS[low:stop]]
        rand += stop - low
    return made


def parse_id(value: str, *, prefix: str | None = None) -> uuid.UUID:
    """The UUID inside an id. Raises ValueError naming what is wrong with a malformed id."""
    head, sep, suffix = value.rpartition("_")
    if not sep or not head:
        raise ValueError(f"id {value!r} has no prefix")
    if prefix is not None and head != prefix:
        raise ValueError(f"id {value!r} should start with {prefix!r}_")
    if len(suffix) != _SUFFIX_LEN or suffix[0] > "7":
        raise ValueError(f"id {value!r} should end in {_SUFFIX_LEN} base32 characters")
    number = 0
    for char in suffix:
        digit = _DECODE.get(char)
        if digit is None:
            raise ValueError(f"id {value!r} holds {char!r}, which is not base32")
        number = (number << 5) | digit
    return uuid.UUID(int=number)


def id_timestamp_ms(value: str) -> int:
    """The creation time of an id, in milliseconds since the epoch."""
    return parse_id(value).int >> 80


def id_floor(prefix: str, timestamp_ms: int) -> str:
    """The smallest id of a kind made at ``timestamp_ms``: a keyset bound for time ranges."""
    return f"{prefix}_{_encode(timestamp_ms << 80)}"


def idempotency_key(run_id: str, node_id: str) -> str:
    """The key a node passes to services it calls, so that an effect happens once.

    One key per node execution of one run, the same for every attempt: a retry after an error,
    a resume after a crash and a move to another worker all send the key the first attempt
    sent, so a service that deduplicates on it applies the effect once. A node that
    legitimately runs several times (once per item of a ``workflow.call`` over a list) does so
    in sub-runs, each with its own run id and so its own keys.
    """
    return f"{run_id}:{node_id}"


def idempotency_keys(run_id: str, node_ids: Iterable[str]) -> list[str]:
    """``idempotency_key`` of each of ``node_ids`` in ``run_id`` (a run's node rows)."""
    head = f"{run_id}:"
    return [head + node_id for node_id in node_ids]
