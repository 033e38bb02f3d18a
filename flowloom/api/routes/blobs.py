"""Blobs: the bytes behind an image (or any blob) output, for the UI's thumbnails and for
downloads. Owner-scoped through the artifact rows: a blob answers only to a user one of whose
runs produced (or uploaded) it. Any other hash, whether the bytes exist for someone else or
nowhere, gets the same 404 (same message, same path through the code: one indexed query that
finds no row), so the answer tells nobody whether some content is stored. The engine gives a
user artifact rows only for blobs that user's own nodes stored (see
``flowloom.engine.context``), so naming someone else's hash in a workflow does not open it."""

import asyncio
from typing import Annotated, Final

from fastapi import APIRouter, File, Response, UploadFile, status
from sqlalchemy import select

from flowloom.api.deps import DatabaseDep, EngineDep, SettingsDep, WorkflowReader, WorkflowWriter
from flowloom.api.errors import RequestTooLarge, UnsupportedMediaType
from flowloom.api.schemas.blobs import BlobPublic
from flowloom.exceptions import InputError, NotFound
from flowloom.ids import new_id
from flowloom.nodes.images import ImageTooLarge, NotAnImage, describe_image
from flowloom.storable import find_unstorable
from flowloom.storage.blobs import check_sha256
from flowloom.storage.tables import Artifact

__all__ = ["UPLOAD_FORM_BYTES", "router"]

router = APIRouter(tags=["blobs"])

UPLOAD_FORM_BYTES: Final = 16 * 1024
"""What an upload's body may hold beyond the file: the multipart boundaries and headers."""
_FILENAME_CHARS: Final = 255


@router.post(
    "/blobs",
    status_code=status.HTTP_201_CREATED,
    responses={413: {"description": "over max_upload_bytes, or too many pixels"}, 415: {}},
)
async def upload_blob(
    file: Annotated[UploadFile, File(description="an image: PNG, JPEG, GIF, WebP, BMP or TIFF")],
    caller: WorkflowWriter,
    db: DatabaseDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> BlobPublic:
    """Store an image for the caller: 201 with its hash, type, size and dimensions.

    Only images are taken (415 otherwise), decoded far enough to be sure (a damaged one: 422),
    within ``max_upload_bytes`` and the pixel bound of every image node (413: decompression
    bombs are refused from their header, before a pixel is decoded). Uploading the same bytes
    again answers the same blob. Like every blob, it answers only to its owner.
    """
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise RequestTooLarge(settings.max_upload_bytes)
    if not data:
        raise InputError("the file is empty", field="file")
    filename = _filename(file.filename)
    try:
        content_type, width, height = await asyncio.to_thread(describe_image, data)
    except NotAnImage as exc:
        raise UnsupportedMediaType(f"file: {exc}") from None
    except ImageTooLarge as exc:
        raise RequestTooLarge(None, f"file: {exc}") from None
    except ValueError as exc:  # damaged
        raise InputError(str(exc), field="file") from None
    sha256 = await engine.blobs.put(data)
    async with db.write() as session:
        known = await session.scalar(
            select(Artifact.id)
            .where(
                Artifact.user_id == caller.user_id,
                Artifact.sha256 == sha256,
                Artifact.run_id.is_(None),
            )
            .limit(1)
        )
        if known is None:
            session.add(
                Artifact(
                    id=new_id("art"),
                    user_id=caller.user_id,
                    sha256=sha256,
                    content_type=content_type,
                    size=len(data),
                    width=width,
                    height=height,
                    filename=filename,
                )
            )
    return BlobPublic(
        sha256=sha256,
        content_type=content_type,
        size=len(data),
        width=width,
        height=height,
        filename=filename,
    )


def _filename(raw: str | None) -> str | None:
    """The client's file name, as a plain name: no path, no control characters, bounded; None
    when nothing usable is left. Unstorable text (a lone surrogate, NUL) is refused with 422."""
    if not raw:
        return None
    if (found := find_unstorable(raw, "filename")) is not None:
        raise InputError(found.reason, field="filename")
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '"')
    return name[:_FILENAME_CHARS] or None


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
