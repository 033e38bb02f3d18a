"""Sticky notes and groups: saved in the definition beside the nodes, checked and bounded,
moved in place like nodes, and never part of a run."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from apikit import create_workflow, example, sign_up

from flowloom.exceptions import ValidationFailed
from flowloom.graph import parse_definition
from flowloom.graph.definition import MAX_ANNOTATIONS


def _note(note_id: str, **more: Any) -> dict[str, Any]:
    return {
        "id": note_id,
        "type": "note",
        "position": {"x": -300, "y": 0},
        "width": 260,
        "height": 140,
        "data": {"text": "Greets whoever is named.\nEdit the template.", "color": "yellow"},
        **more,
    }


def _with(annotations: list[dict[str, Any]]) -> dict[str, Any]:
    return {**example("hello_template"), "annotations": annotations}


async def test_notes_and_groups_round_trip_and_never_run(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    group = {
        "id": "group_1",
        "type": "group",
        "position": {"x": -40, "y": -60},
        "width": 700,
        "height": 300,
        "data": {"label": "Greeting", "color": "blue"},
    }
    workflow = await create_workflow(client, account, _with([group, _note("note_1")]))
    assert workflow["valid"] is True

    read = (await client.get(f"/api/v1/workflows/{workflow['id']}", headers=account.bearer)).json()
    assert read["definition"]["annotations"] == [group, _note("note_1")]

    run = await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=account.bearer
    )
    assert run.json()["status"] == "COMPLETED", run.text
    assert {n["node_id"] for n in run.json()["nodes"]} == {
        n["id"] for n in example("hello_template")["nodes"]
    }

    moved = await client.patch(
        f"/api/v1/workflows/{workflow['id']}/positions",
        json={"positions": {"note_1": {"x": 10, "y": 20}}},
        headers=account.bearer,
    )
    assert moved.status_code == 200, moved.text
    read = (await client.get(f"/api/v1/workflows/{workflow['id']}", headers=account.bearer)).json()
    assert read["definition"]["annotations"][1]["position"] == {"x": 10, "y": 20}
    assert read["version"] == 1


async def test_bad_annotations_are_named(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    cases: list[tuple[dict[str, Any], str]] = [
        (_note("n", width=5), "annotations.0.width"),
        (_note("n", type="sticker"), "annotations.0.type"),
        (_note("n", data={"text": "x" * 10_001}), "annotations.0.data.text"),
        (_note("n", data={"color": "#ff0000"}), "annotations.0.data.color"),
        (_note("n", script="alert(1)"), "annotations.0.script"),
    ]
    for annotation, field in cases:
        # Saved as a draft that names its problem; it cannot run until fixed.
        response = await client.post(
            "/api/v1/workflows",
            json={"name": "bad", "definition": _with([annotation])},
            headers=account.bearer,
        )
        assert response.status_code == 201, response.text
        assert response.json()["valid"] is False
        assert field in {p.get("field") for p in response.json()["problems"]}, response.text
        run = await client.post(
            f"/api/v1/workflows/{response.json()['id']}/runs", json={}, headers=account.bearer
        )
        assert run.status_code == 422, run.text


async def test_an_annotation_id_taken_by_a_node_is_a_problem(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    node_id = example("hello_template")["nodes"][0]["id"]
    checked = await client.post(
        "/api/v1/workflows/validate",
        json={"definition": _with([_note(node_id), _note("twice"), _note("twice")])},
        headers=account.bearer,
    )
    assert checked.status_code == 200, checked.text
    fields = [p["field"] for p in checked.json()["problems"]]
    assert fields == ["annotations.0.id", "annotations.2.id"]


def test_the_number_of_annotations_is_bounded() -> None:
    many = [_note(f"n{i}") for i in range(MAX_ANNOTATIONS + 1)]
    with pytest.raises(ValidationFailed) as refused:
        parse_definition(_with(many))
    assert refused.value.problems[0].field == "annotations"
