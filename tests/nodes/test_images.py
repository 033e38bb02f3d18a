"""image.load, image.crop, image.resize, image.convert on real images made with Pillow."""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import zlib
from typing import Any

import pytest
from PIL import Image

from flowloom.exceptions import NodeFailed, ValidationFailed
from flowloom.nodes import default_registry
from flowloom.testing import InMemoryBlobStore, make_context, run_node


def png(width: int = 200, height: int = 100, mode: str = "RGB") -> bytes:
    """A test card: each quarter of the image has its own colour, so crops can be checked."""
    image = Image.new(mode, (width, height))
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    for quarter, colour in enumerate(colours):
        left = (quarter % 2) * width // 2
        top = (quarter // 2) * height // 2
        fill = (*colour, 255) if mode == "RGBA" else colour
        image.paste(fill, (left, top, left + width // 2, top + height // 2))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def load(blobs: InMemoryBlobStore, data: bytes) -> dict[str, Any]:
    config = {"base64": base64.b64encode(data).decode()}
    result = await run_node("image.load", config, ctx=make_context(blobs=blobs))
    return dict(result.outputs["image"])


def opened(blobs: InMemoryBlobStore, image: dict[str, Any]) -> Image.Image:
    return Image.open(io.BytesIO(blobs.blobs[image["sha256"]]))


async def test_load_stores_the_bytes_and_describes_them() -> None:
    blobs = InMemoryBlobStore()
    data = png(200, 100)

    image = await load(blobs, data)

    assert image == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "content_type": "image/png",
        "width": 200,
        "height": 100,
        "size": len(data),
    }
    assert blobs.blobs[image["sha256"]] == data


async def test_load_accepts_a_data_url_and_an_uploaded_blob() -> None:
    blobs = InMemoryBlobStore()
    data = png(20, 10)
    sha256 = await blobs.put(data)
    ctx = make_context(blobs=blobs)

    from_url = await run_node(
        "image.load",
        {"base64": "data:image/png;base64," + base64.b64encode(data).decode()},
        ctx=ctx,
    )
    from_blob = await run_node("image.load", {"sha256": sha256}, ctx=ctx)

    assert from_url.outputs == from_blob.outputs
    assert from_blob.outputs["image"]["width"] == 20


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "exactly one of url, base64 or sha256 (found: none)"),
        (
            {"url": "https://example.com/a.png", "base64": "aGk="},
            "exactly one of url, base64 or sha256 (found: url, base64)",
        ),
        ({"base64": "not base64!"}, "not valid base64"),
        ({"url": "ftp://example.com/a.png"}, "must start with http"),
    ],
)
async def test_load_config_problems(config: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await run_node("image.load", config)

    assert message in caught.value.problems[0].message


def test_only_loads_by_url_may_change_between_runs() -> None:
    node = default_registry().get("image.load")

    by_url = node.parse_config({"url": "https://example.com/a.png"})
    by_data = node.parse_config({"base64": "aGk="})

    assert (node.is_deterministic(by_url), node.is_deterministic(by_data)) == (False, True)


async def test_load_refuses_bytes_that_are_not_an_image() -> None:
    with pytest.raises(NodeFailed, match="not an image"):
        await run_node("image.load", {"base64": base64.b64encode(b"plain text").decode()})


async def test_crop_by_percent_gives_the_exact_pixel_box() -> None:
    blobs = InMemoryBlobStore()
    ctx = make_context(blobs=blobs)
    image = await load(blobs, png(200, 100))
    config = {"x": 10, "y": 10, "width": 50, "height": 50}

    result = await run_node("image.crop", config, {"image": image}, ctx=ctx)

    cropped = result.outputs["image"]
    assert (cropped["width"], cropped["height"]) == (100, 50)
    pixels = opened(blobs, cropped)
    assert pixels.size == (100, 50)
    # The box spans x 20..120 and y 10..60 of the source: red top-left, yellow bottom-right.
    assert pixels.getpixel((0, 0)) == (255, 0, 0)
    assert pixels.getpixel((99, 49)) == (255, 255, 0)
    assert cropped["content_type"] == "image/png"


async def test_the_same_crop_fits_every_resolution() -> None:
    blobs = InMemoryBlobStore()
    ctx = make_context(blobs=blobs)
    config = {"x": 10, "y": 10, "width": 50, "height": 50}
    sizes = []
    for width, height in [(200, 100), (1000, 500), (37, 23)]:
        image = await load(blobs, png(width, height))
        cropped = (await run_node("image.crop", config, {"image": image}, ctx=ctx)).outputs
        sizes.append((cropped["image"]["width"], cropped["image"]["height"]))

    assert sizes == [(100, 50), (500, 250), (18, 12)]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"x": 60, "width": 50}, "width"),
        ({"y": 90, "height": 20}, "height"),
        ({"x": -1}, "x"),
        ({"width": 0}, "width"),
        ({"height": 101}, "height"),
    ],
)
async def test_crop_box_must_lie_inside_the_image(config: dict[str, float], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await run_node("image.crop", config, {"image": {"sha256": "0" * 64}})

    assert [p.field for p in caught.value.problems] == [field]


@pytest.mark.parametrize(
    ("config", "size"),
    [
        ({"width": 100}, (100, 50)),
        ({"height": 25}, (50, 25)),
        ({"width": 100, "height": 100}, (100, 50)),
        ({"width": 30, "height": 70, "keep_aspect": False}, (30, 70)),
        ({"width": 400}, (400, 200)),
    ],
)
async def test_resize(config: dict[str, Any], size: tuple[int, int]) -> None:
    blobs = InMemoryBlobStore()
    image = await load(blobs, png(200, 100))

    result = await run_node("image.resize", config, {"image": image}, ctx=make_context(blobs=blobs))

    resized = result.outputs["image"]
    assert (resized["width"], resized["height"]) == size
    assert opened(blobs, resized).size == size


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "give a width, a height, or both"),
        ({"width": 10, "keep_aspect": False}, "give both width and height"),
        ({"width": 0}, "greater than or equal to 1"),
    ],
)
async def test_resize_config_problems(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await run_node("image.resize", config, {"image": {"sha256": "0" * 64}})

    assert message in caught.value.problems[0].message


@pytest.mark.parametrize(
    ("image_format", "content_type", "pillow_format"),
    [("jpeg", "image/jpeg", "JPEG"), ("webp", "image/webp", "WEBP"), ("png", "image/png", "PNG")],
)
async def test_convert_re_encodes_even_with_transparency(
    image_format: str, content_type: str, pillow_format: str
) -> None:
    blobs = InMemoryBlobStore()
    image = await load(blobs, png(64, 32, mode="RGBA"))

    result = await run_node(
        "image.convert", {"format": image_format}, {"image": image}, ctx=make_context(blobs=blobs)
    )

    converted = result.outputs["image"]
    assert converted["content_type"] == content_type
    assert (converted["width"], converted["height"]) == (64, 32)
    assert opened(blobs, converted).format == pillow_format


async def test_crop_keeps_the_format_of_a_jpeg() -> None:
    blobs = InMemoryBlobStore()
    ctx = make_context(blobs=blobs)
    image = await load(blobs, png(100, 100))
    jpeg = (await run_node("image.convert", {"format": "jpeg"}, {"image": image}, ctx=ctx)).outputs

    cropped = await run_node("image.crop", {"width": 50}, {"image": jpeg["image"]}, ctx=ctx)

    assert cropped.outputs["image"]["content_type"] == "image/jpeg"
    assert cropped.outputs["image"]["width"] == 50


async def test_an_image_missing_from_the_blob_store_fails_clearly() -> None:
    with pytest.raises(NodeFailed, match="not in the blob store"):
        await run_node("image.crop", {"width": 50}, {"image": {"sha256": "ab" * 32}})


async def test_an_input_that_is_not_an_image_value_fails_clearly() -> None:
    with pytest.raises(NodeFailed, match="not an image value"):
        await run_node("image.resize", {"width": 5}, {"image": "picture.png"})


async def test_oversized_images_are_refused_before_decoding() -> None:
    # A PNG header claiming 9000 x 9000 pixels and holding no pixel data: refused from the
    # header alone, so nothing is decoded (decoding would fail on the missing data instead).
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", 9000, 9000, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")

    with pytest.raises(NodeFailed, match="over 50000000 pixels"):
        await run_node("image.load", {"base64": base64.b64encode(data).decode()})
