"""Blob outputs become artifact rows linked to their run and node, with the blob on disk."""

from __future__ import annotations

import json
from pathlib import Path

from enginekit import make_owner, node_rows, save_workflow
from sqlalchemy import select

from flowloom.engine import Engine
from flowloom.engine.artifacts import blob_references, distinct_references
from flowloom.engine.sql import SqlRunStore
from flowloom.example_workflows import example_dir
from flowloom.settings import Settings
from flowloom.storage.blobs import FileBlobStore
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus
from flowloom.storage.tables import Artifact


async def artifacts_of(db: Database, run_id: str) -> list[Artifact]:
    async with db.read() as session:
        return list(await session.scalars(select(Artifact).where(Artifact.run_id == run_id)))


async def test_the_image_crop_example_leaves_artifact_rows_whose_blobs_exist(
    db: Database, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    engine = Engine.from_settings(db, settings)
    try:
        owner = await make_owner(db)
        graph = json.loads((example_dir() / "image_crop.json").read_text())
        workflow_id = await save_workflow(db, owner, graph)
        result = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False)
    finally:
        await engine.close()

    assert result.status is RunStatus.COMPLETED
    rows = await node_rows(db, result.run_id)
    artifacts = await artifacts_of(db, result.run_id)
    by_node = {a.node_execution_id: a for a in artifacts}
    assert set(by_node) == {rows[n].id for n in ("load", "crop", "resize")}
    store = FileBlobStore(settings.blob_dir)
    for node_id in ("load", "crop", "resize"):
        image = rows[node_id].outputs["image"]
        artifact = by_node[rows[node_id].id]
        assert artifact.user_id == owner
        assert (artifact.sha256, artifact.content_type) == (image["sha256"], "image/png")
        assert (artifact.size, artifact.width, artifact.height) == (
            image["size"],
            image["width"],
            image["height"],
        )
        assert store.exists(artifact.sha256), "the blob is in the production blob folder"
        assert len(store.read(artifact.sha256)) == artifact.size
    assert (by_node[rows["resize"].id].width, by_node[rows["resize"].id].height) == (80, 60)


async def test_recording_the_same_outputs_again_adds_no_row(db: Database, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    engine = Engine.from_settings(db, settings)
    try:
        owner = await make_owner(db)
        graph = json.loads((example_dir() / "image_crop.json").read_text())
        workflow_id = await save_workflow(db, owner, graph)
        result = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False)
    finally:
        await engine.close()
    crop = (await node_rows(db, result.run_id))["crop"]

    added = await SqlRunStore(db).record_artifacts(
        owner_id=owner,
        run_id=result.run_id,
        node_execution_id=crop.id,
        references=distinct_references(crop.outputs),
        stored=(),
    )

    assert added == 0, "a re-run of the node execution does not duplicate its rows"
    assert len(await artifacts_of(db, result.run_id)) == 3


def test_blob_references_are_found_nested_and_nothing_else() -> None:
    sha = "a" * 64
    outputs = {
        "image": {"sha256": sha, "content_type": "image/png", "size": 3},
        "list": [{"deep": {"sha256": "b" * 64, "content_type": "application/pdf"}}],
        "not_a_hash": {"sha256": "xyz", "content_type": "image/png"},
        "no_type": {"sha256": "c" * 64},
        "text": "plain",
    }
    found = sorted(ref["sha256"] for ref in blob_references(outputs))
    assert found == [sha, "b" * 64]
