"""Blobs are scoped to their owner, in nodes and in the API, on SQLite and PostgreSQL.

Content-addressed storage is shared underneath, but a user reaches only blobs one of their own
runs produced. Naming another user's hash (in ``image.load``, or in any output that looks like
a blob reference) neither reads the bytes nor makes them the namer's; and the answer for
"someone else's" is exactly the answer for "exists nowhere", so nobody learns whether some
content is stored.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
from apikit import Account, create_workflow, example, sign_up
from PIL import Image
from sqlalchemy import select

from flowloom.storage.database import Database
from flowloom.storage.tables import Artifact

ClientFactory = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]

UNKNOWN = hashlib.sha256(b"content nobody ever stored").hexdigest()


def node(node_id: str, kind: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": kind,
        "position": {"x": 0, "y": 0},
        "data": {"label": node_id, "config": config},
    }


def load_by_hash(sha256: str) -> dict[str, Any]:
    return {"schema_version": 1, "nodes": [node("load", "image.load", {"sha256": sha256})]}


def forged_reference(sha256: str) -> dict[str, Any]:
    """A trigger whose output merely names a hash, shaped like an image value."""
    reference = {"sha256": sha256, "content_type": "image/png", "size": 10}
    field = {"name": "img", "type": "object", "default": reference}
    return {"schema_version": 1, "nodes": [node("start", "trigger.manual", {"fields": [field]})]}


async def run(client: httpx.AsyncClient, account: Account, definition: dict[str, Any]) -> Any:
    workflow = await create_workflow(client, account, definition)
    response = await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=account.bearer
    )
    assert response.status_code == 200, response.text
    return response.json()


def node_error(result: Any, node_id: str) -> str:
    found = {n["node_id"]: n for n in result["nodes"]}[node_id]
    assert found["status"] == "FAILED", found
    return str(found["error"]["message"])


async def alice_image(client: httpx.AsyncClient, alice: Account) -> dict[str, Any]:
    result = await run(client, alice, example("image_crop"))
    assert result["status"] == "COMPLETED", result
    image: dict[str, Any] = result["outputs"]["resize"]["image"]
    return image


async def test_image_load_cannot_read_another_users_blob(
    new_client: ClientFactory, db: Database
) -> None:
    async with new_client() as alice_client, new_client() as bob_client:
        alice = await sign_up(alice_client, "alice")
        bob = await sign_up(bob_client, "bob")
        image = await alice_image(alice_client, alice)

        # Alice loads her own image by its hash.
        own = await run(alice_client, alice, load_by_hash(image["sha256"]))
        assert own["status"] == "COMPLETED", own

        # Bob cannot: the failure is word for word that of a hash stored nowhere.
        theirs = await run(bob_client, bob, load_by_hash(image["sha256"]))
        nowhere = await run(bob_client, bob, load_by_hash(UNKNOWN))
        assert theirs["status"] == nowhere["status"] == "FAILED"
        assert node_error(theirs, "load").replace(image["sha256"], "<hash>") == node_error(
            nowhere, "load"
        ).replace(UNKNOWN, "<hash>")

        # ...and it gave Bob no artifact row, so the API does not serve him the bytes.
        async with db.read() as session:
            bobs = list(
                await session.scalars(
                    select(Artifact.sha256).where(Artifact.user_id == bob.user_id)
                )
            )
        assert image["sha256"] not in bobs
        served = await bob_client.get(f"/api/v1/blobs/{image['sha256']}", headers=bob.bearer)
        assert served.status_code == 404


async def test_an_output_naming_another_users_hash_gives_no_access(
    new_client: ClientFactory, db: Database
) -> None:
    async with new_client() as alice_client, new_client() as bob_client:
        alice = await sign_up(alice_client, "alice")
        bob = await sign_up(bob_client, "bob")
        image = await alice_image(alice_client, alice)

        forged = await run(bob_client, bob, forged_reference(image["sha256"]))

        assert forged["status"] == "COMPLETED", forged
        async with db.read() as session:
            rows = list(
                await session.scalars(
                    select(Artifact).where(
                        Artifact.user_id == bob.user_id, Artifact.sha256 == image["sha256"]
                    )
                )
            )
        assert rows == []
        served = await bob_client.get(f"/api/v1/blobs/{image['sha256']}", headers=bob.bearer)
        assert served.status_code == 404


async def test_not_yours_and_does_not_exist_answer_alike(new_client: ClientFactory) -> None:
    async with new_client() as alice_client, new_client() as bob_client:
        alice = await sign_up(alice_client, "alice")
        bob = await sign_up(bob_client, "bob")
        image = await alice_image(alice_client, alice)

        theirs = await bob_client.get(f"/api/v1/blobs/{image['sha256']}", headers=bob.bearer)
        nowhere = await bob_client.get(f"/api/v1/blobs/{UNKNOWN}", headers=bob.bearer)

        assert theirs.status_code == nowhere.status_code == 404
        assert theirs.headers["content-type"] == nowhere.headers["content-type"]

        def shape(response: httpx.Response, sha256: str) -> dict[str, Any]:
            body: dict[str, Any] = response.json()
            return {k: str(v).replace(sha256, "<hash>") for k, v in body.items()}

        assert shape(theirs, image["sha256"]) == shape(nowhere, UNKNOWN)


async def test_the_same_bytes_loaded_by_each_user_are_each_users_own(
    new_client: ClientFactory,
) -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, format="PNG")
    data = base64.b64encode(out.getvalue()).decode()
    definition = {"schema_version": 1, "nodes": [node("load", "image.load", {"base64": data})]}
    async with new_client() as alice_client, new_client() as bob_client:
        alice = await sign_up(alice_client, "alice")
        bob = await sign_up(bob_client, "bob")

        first = await run(alice_client, alice, definition)
        second = await run(bob_client, bob, definition)

        sha256 = first["outputs"]["load"]["image"]["sha256"]
        assert second["outputs"]["load"]["image"]["sha256"] == sha256
        for client, account in ((alice_client, alice), (bob_client, bob)):
            served = await client.get(f"/api/v1/blobs/{sha256}", headers=account.bearer)
            assert served.status_code == 200
            assert served.content == out.getvalue()
