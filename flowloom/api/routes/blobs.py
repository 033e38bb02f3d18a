"""Blobs: the bytes behind an image (or any blob) output, for the UI's thumbnails and for
downloads. Owner-scoped through the artifact rows: a blob answers only to a user one of whose
runs produced (or uploaded) it. Any other hash, whether the bytes exist for someone else or
nowhere, gets the same 404 (same message, same path through the code: one indexed query that
finds no row), so the answer tells nobody whether some content is stored. The engine gives a
user artifact rows only for blobs that user's own nodes stored (see
``flowloom.engine.context``), so naming someone else's hash in a workflow does not open it."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import select

from flowloom.api.deps import DatabaseDep, EngineDep, WorkflowReader
from flowloom.exceptions import NotFound
from flowloom.storage.blobs import check_sha256
from flowloom.storage.tables import Artifact

__all__ = ["router"]

router = APIRouter(tags=["blobs"])


@router.get(
    "/blobs/{sha256}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def read_blob(
    sha256: str, caller: WorkflowReader, db: DatabaseDep, engine: EngineDep
) -> Response:
    """The blob's bytes with its content type; immutable, so cached for good."""
    check_sha256(sha256)
    async with db.read() as session:
        row = (
            await session.execute(
                select(Artifact.content_type, Artifact.filename)
                .where(Artifact.user_id == caller.user_id, Artifact.sha256 == sha256)
                .limit(1)
            )
        ).first()
    if row is None:
        raise NotFound("blob", sha256)
    data = await engine.blobs.read(sha256)  # NotFound when the bytes were pruned
    headers = {"Cache-Control": "private, max-age=31536000, immutable", "ETag": f'"{sha256}"'}
    if row.filename:
        headers["Content-Disposition"] = f'inline; filename="{row.filename}"'
    return Response(data, media_type=row.content_type, headers=headers)
