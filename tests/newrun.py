"""A ``NewRun`` for tests of the run start: every field at the value a plain run of a saved
workflow takes, but for those given."""

from __future__ import annotations

from typing import Any

import pytest

from flowloom.engine.ports import NewRun
from flowloom.graph import Scope
from flowloom.storage.enums import TriggerKind


def new_run(owner: str, workflow_id: str, **fields: Any) -> NewRun:
    given: dict[str, Any] = {
        "owner_id": owner,
        "workflow_id": workflow_id,
        "version": None,
        "scope": Scope.FULL,
        "target_node_id": None,
        "inputs": {},
        "trigger_kind": TriggerKind.MANUAL,
        "trigger_data": {},
        "idempotency_key": None,
        "timeout_s": None,
        "breakpoints": None,
        "use_cache": True,
        "parent_run_id": None,
        "parent_node_id": None,
        "api_key_id": None,
        "max_depth": 5,
    }
    return NewRun(**{**given, **fields})


def separate_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Each look-up statement the run store builds apart from its start (on PostgreSQL,
    ``pg_run_lookups_sql``) from now on: empty while a start is one statement."""
    from flowloom.engine.sql import run_store

    built: list[str | None] = []
    separate = run_store.pg_run_lookups_sql

    def counted(carried: str | None = None) -> str:
        built.append(carried)
        return separate(carried)

    monkeypatch.setattr(run_store, "pg_run_lookups_sql", counted)
    return built
