"""Blobs: an uploaded file as the API answers it."""

from __future__ import annotations

from flowloom.api.schemas.common import ApiModel


class BlobPublic(ApiModel):
    """An uploaded image: refer to it by ``sha256`` (``image.load``'s config, a run input)."""

    sha256: str
    content_type: str
    """What the bytes are (read from them, not from what the client said)."""
    size: int
    width: int
    height: int
    filename: str | None
