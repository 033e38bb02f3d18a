"""``POST /api/v1/blobs``: an image upload, on SQLite and PostgreSQL. 201 with what the bytes
are (read from them, not from the client); 415 for what is not an image, 413 for a file over
``max_upload_bytes`` or an image over the pixel bound (a decompression bomb, refused from its
header); 422 for a damaged image or an unstorable file name. The blob is its uploader's only:
another user's read is the 404 of a hash stored nowhere, and a run of the uploader's can load it.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import pytest
from apikit import Account, create_workflow, make_settings, sign_up
from PIL import Image
from sqlalchemy import func, select

from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.tables import Artifact

ClientFactory = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]
UPLOAD_LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("data"), max_upload_bytes=UPLOAD_LIMIT)


def png(size: tuple[int, int] = (40, 30), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, "red" if mode == "RGB" else 0).save(out, format="PNG")
    return out.getvalue()


async def upload(
    client: httpx.AsyncClient, account: Account, data: bytes, name: str = "photo.png"
) -> httpx.Response:
    files = {"file": (name, data, "application/octet-stream")}
    return await client.post("/api/v1/blobs", files=files, headers=account.bearer)


async def test_an_image_is_stored_for_its_owner_only(
    new_client: ClientFactory, db: Database
) -> None:
    async with new_client() as alice_client, new_client() as bob_client:
        alice = await sign_up(alice_client, "alice")
        bob = await sign_up(bob_client, "bob")
        data = png()

        made = await upload(alice_client, alice, data, name="../../etc/holiday photo.png")
        assert made.status_code == 201, made.text
        blob = made.json()
        assert blob == {
            "sha256": hashlib.sha256(data).hexdigest(),
            "content_type": "image/png",
            "size": len(data),
            "width": 40,
            "height": 30,
            "filename": "holiday photo.png",
        }
        again = await upload(alice_client, alice, data)
        assert again.status_code == 201
        assert again.json()["sha256"] == blob["sha256"]
        async with db.read() as session:
            rows = await session.scalar(
                select(func.count())
                .select_from(Artifact)
                .where(Artifact.user_id == alice.user_id, Artifact.sha256 == blob["sha256"])
            )
        assert rows == 1  # the same bytes again are the same blob

        served = await alice_client.get(f"/api/v1/blobs/{blob['sha256']}", headers=alice.bearer)
        assert served.status_code == 200
        assert served.content == data
        assert served.headers["content-type"] == "image/png"
        theirs = await bob_client.get(f"/api/v1/blobs/{blob['sha256']}", headers=bob.bearer)
        assert theirs.status_code == 404

        # A run of Alice's loads it by hash; Bob's cannot.
        definition = {
            "schema_version": 1,
            "nodes": [
                {
                    "id": "load",
                    "type": "image.load",
                    "position": {"x": 0, "y": 0},
                    "data": {"config": {"sha256": blob["sha256"]}},
                }
            ],
        }
        for client, account, expected in (
            (alice_client, alice, "COMPLETED"),
            (bob_client, bob, "FAILED"),
        ):
            workflow = await create_workflow(client, account, definition)
            ran = await client.post(
                f"/api/v1/workflows/{workflow['id']}/runs?wait=true",
                json={},
                headers=account.bearer,
            )
            assert ran.json()["status"] == expected, ran.text


async def test_what_is_not_an_acceptable_image_is_refused(client: httpx.AsyncClient) -> None:
    account = await sign_up(client, "carol")

    text = await upload(client, account, b"just some text, not an image", name="notes.txt")
    assert text.status_code == 415, text.text
    assert text.json()["detail"] == "file: the data is not an image in a known format"

    damaged = png()[:60]
    broken = await upload(client, account, damaged)
    assert broken.status_code == 422, broken.text
    assert broken.json()["errors"][0]["field"] == "file"

    big = await upload(client, account, b"\x89PNG" + b"\0" * UPLOAD_LIMIT)
    assert big.status_code == 413, big.text

    bomb = png((10_000, 10_000), mode="1")  # 100 million pixels in a few kilobytes
    assert len(bomb) < UPLOAD_LIMIT
    refused = await upload(client, account, bomb)
    assert refused.status_code == 413, refused.text
    assert "pixels" in refused.json()["detail"]

    empty = await upload(client, account, b"")
    assert empty.status_code == 422

    missing = await client.post("/api/v1/blobs", headers=account.bearer, files={"other": b"x"})
    assert missing.status_code == 422

    async with httpx.AsyncClient(transport=client._transport, base_url=client.base_url) as anon:
        nobody = await anon.post("/api/v1/blobs", files={"file": ("a.png", png())})
    assert nobody.status_code == 401


async def test_an_unstorable_file_name_is_refused(client: httpx.AsyncClient) -> None:
    account = await sign_up(client, "dave")
    # Sent raw: a client library would escape the NUL.
    body = (
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a\x00b.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + png() + b"\r\n--b0undary--\r\n"
    )
    headers = {**account.bearer, "Content-Type": "multipart/form-data; boundary=b0undary"}
    named = await client.post("/api/v1/blobs", content=body, headers=headers)
    assert named.status_code == 422, named.text
    assert named.json()["errors"][0]["field"] == "filename"


def test_the_upload_limit_is_a_setting(tmp_path: Path) -> None:
    assert Settings.model_fields["max_upload_bytes"].default == 20 * 1024 * 1024
    assert make_settings(tmp_path, max_upload_bytes=2048).max_upload_bytes == 2048
