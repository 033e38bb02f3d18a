"""memory.read and memory.write through the context's memory store, with types and expiry."""

from __future__ import annotations

import pytest

from flowloom.exceptions import NodeFailed, ValidationFailed
from flowloom.testing import InMemoryMemoryStore, make_context, run_node


async def test_write_then_read_shares_the_workflow_memory() -> None:
    memory = InMemoryMemoryStore()
    ctx = make_context(memory=memory)

    written = await run_node("memory.write", {"key": "last"}, {"value": {"n": 1}}, ctx=ctx)
    read = await run_node("memory.read", {"key": "last"}, ctx=ctx)

    assert written.outputs == {"value": {"n": 1}}
    assert read.outputs == {"value": {"n": 1}, "found": True}
    item = await memory.get("last")
    assert item is not None
    assert item.value_type == "object"


async def test_reading_an_absent_key_gives_the_default() -> None:
    result = await run_node("memory.read", {"key": "nothing", "default": 0})

    assert result.outputs == {"value": 0, "found": False}


async def test_values_expire_after_their_ttl() -> None:
    now = [1000.0]
    ctx = make_context(memory=InMemoryMemoryStore(clock=lambda: now[0]))
    await run_node("memory.write", {"key": "token", "ttl_s": 60}, {"value": "abc"}, ctx=ctx)

    now[0] += 59
    before = await run_node("memory.read", {"key": "token"}, ctx=ctx)
    now[0] += 1
    after = await run_node("memory.read", {"key": "token"}, ctx=ctx)

    assert before.outputs["found"] is True
    assert after.outputs == {"value": None, "found": False}


async def test_write_refuses_a_value_of_the_wrong_declared_type() -> None:
    with pytest.raises(NodeFailed, match="takes number values, got string"):
        await run_node("memory.write", {"key": "n", "value_type": "number"}, {"value": "1"})


async def test_write_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(NodeFailed, match="JSON values only"):
        await run_node("memory.write", {"key": "n"}, {"value": object()})


@pytest.mark.parametrize(
    ("config", "field"), [({"key": ""}, "key"), ({"key": "k", "ttl_s": 0}, "ttl_s")]
)
async def test_bad_memory_config(config: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await run_node("memory.write", config, {"value": 1})

    assert [p.field for p in caught.value.problems] == [field]
