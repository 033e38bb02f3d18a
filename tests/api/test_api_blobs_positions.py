"""Image outputs served to their owner (thumbnails in the UI) and nobody else; node positions
saved in place as they are dragged, without a new version."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
from apikit import create_workflow, example, sign_up

ClientFactory = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]


async def test_an_image_output_is_served_to_its_owner_only(new_client: ClientFactory) -> None:
    async with new_client() as alice_client, new_client() as bob_client:
        alice = await sign_up(alice_client, "alice")
        bob = await sign_up(bob_client, "bob")
        workflow = await create_workflow(alice_client, alice, example("image_crop"))
        run = await alice_client.post(
            f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=alice.bearer
        )
        image = run.json()["outputs"]["resize"]["image"]

        served = await alice_client.get(f"/api/v1/blobs/{image['sha256']}", headers=alice.bearer)
        assert served.status_code == 200
        assert served.headers["content-type"] == "image/png"
        assert served.content.startswith(b"\x89PNG")
        assert len(served.content) == image["size"]
        assert "immutable" in served.headers["cache-control"]

        stranger = await bob_client.get(f"/api/v1/blobs/{image['sha256']}", headers=bob.bearer)
        assert stranger.status_code == 404
        malformed = await alice_client.get("/api/v1/blobs/../../etc/passwd", headers=alice.bearer)
        assert malformed.status_code in (404, 422)
        not_hex = await alice_client.get("/api/v1/blobs/" + "z" * 64, headers=alice.bearer)
        assert not_hex.status_code == 422


async def test_positions_are_saved_in_place_without_a_new_version(
    client: httpx.AsyncClient,
) -> None:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, example("hello_template"))

    moved = await client.patch(
        f"/api/v1/workflows/{workflow['id']}/positions",
        json={"positions": {"greet": {"x": 512.5, "y": -40}}},
        headers=account.bearer,
    )

    assert moved.status_code == 200, moved.text
    assert moved.json() == {"version": 1}
    read = (await client.get(f"/api/v1/workflows/{workflow['id']}", headers=account.bearer)).json()
    assert read["version"] == 1
    greet = next(n for n in read["definition"]["nodes"] if n["id"] == "greet")
    assert greet["position"] == {"x": 512.5, "y": -40}
    saved = await client.get(
        f"/api/v1/workflows/{workflow['id']}/versions/1", headers=account.bearer
    )
    node = next(n for n in saved.json()["definition"]["nodes"] if n["id"] == "greet")
    assert node["position"] == {"x": 512.5, "y": -40}, "the version row moved with it"

    unknown = await client.patch(
        f"/api/v1/workflows/{workflow['id']}/positions",
        json={"positions": {"greet": {"x": 1, "y": 1}, "ghost": {"x": 0, "y": 0}}},
        headers=account.bearer,
    )
    assert unknown.status_code == 422
    assert "ghost" in unknown.json()["detail"]
    after = (await client.get(f"/api/v1/workflows/{workflow['id']}", headers=account.bearer)).json()
    greet = next(n for n in after["definition"]["nodes"] if n["id"] == "greet")
    assert greet["position"] == {"x": 512.5, "y": -40}, "a refused move changes nothing"
    stale = await client.patch(
        f"/api/v1/workflows/{workflow['id']}/positions",
        json={"positions": {"greet": {"x": 0, "y": 0}}, "expected_version": 2},
        headers=account.bearer,
    )
    assert stale.status_code == 409, "the canvas shows a version that is not the current one"
    not_finite = await client.patch(
        f"/api/v1/workflows/{workflow['id']}/positions",
        content=b'{"positions": {"greet": {"x": 1e999, "y": 0}}}',
        headers={**account.bearer, "content-type": "application/json"},
    )
    assert not_finite.status_code == 422
