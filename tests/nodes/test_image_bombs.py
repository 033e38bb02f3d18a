"""Image decoding is bounded and off the event loop.

Decompression bombs (a small file that claims a huge picture) are refused from the header,
whatever size they claim, with Pillow's own warning turned into the refusal; formats Pillow
would hand to an outside program (EPS runs Ghostscript) are not opened at all; a resize cannot
make a bomb of its own; and the decoding work (base64 and Pillow) never runs on the loop.
"""

from __future__ import annotations

import base64
import io
import random
import struct
import threading
import warnings
import zlib
from typing import Any

import pytest
from PIL import Image

from flowloom.exceptions import NodeFailed
from flowloom.nodes import images
from flowloom.testing import InMemoryBlobStore, make_context, run_node


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels and holds none."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def as_base64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def small_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 20), (10, 20, 30)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (8_000, 8_000),  # over the bound: Pillow warns (made an error here)
        (20_000, 20_000),  # over twice the bound: Pillow raises its own error
        (60_000, 60_000),
    ],
)
async def test_a_decompression_bomb_is_refused_cleanly(width: int, height: int) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        with pytest.raises(NodeFailed, match=f"over {images.MAX_PIXELS} pixels"):
            await run_node("image.load", {"base64": as_base64(png_header(width, height))})

    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


async def test_pillow_itself_refuses_past_the_bound_not_only_flowloom() -> None:
    images._open(small_png())  # configures Pillow as image nodes use it

    assert Image.MAX_IMAGE_PIXELS == images.MAX_PIXELS
    with pytest.raises(Image.DecompressionBombWarning):
        Image.open(io.BytesIO(png_header(8_000, 8_000)))


async def test_formats_that_run_outside_programs_are_not_opened() -> None:
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n%%EOF\n"

    with pytest.raises(NodeFailed, match="not an image in a known format"):
        await run_node("image.load", {"base64": as_base64(eps)})


async def test_a_resize_cannot_make_a_bomb() -> None:
    blobs = InMemoryBlobStore()
    ctx = make_context(blobs=blobs)
    loaded = await run_node("image.load", {"base64": as_base64(small_png())}, ctx=ctx)

    with pytest.raises(NodeFailed, match="resized image would be 10000x10000, over"):
        await run_node(
            "image.resize",
            {"width": 10_000, "height": 10_000, "keep_aspect": False},
            {"image": loaded.outputs["image"]},
            ctx=ctx,
        )


def noise_png() -> bytes:
    """A PNG whose base64 is too long to be decoded when the config is validated."""
    out = io.BytesIO()
    Image.frombytes("RGB", (400, 400), random.Random(7).randbytes(400 * 400 * 3)).save(
        out, format="PNG"
    )
    return out.getvalue()


async def test_decoding_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    loop_thread = threading.current_thread()
    seen: dict[str, list[threading.Thread]] = {"base64": [], "pillow": []}

    def spy(name: str, real: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            seen[name].append(threading.current_thread())
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(images, "decode_base64", spy("base64", images.decode_base64))
    monkeypatch.setattr(images, "_open", spy("pillow", images._open))
    blobs = InMemoryBlobStore()
    ctx = make_context(blobs=blobs)
    data = noise_png()
    assert len(as_base64(data)) > images._CHECK_BASE64_MAX

    loaded = await run_node("image.load", {"base64": as_base64(data)}, ctx=ctx)
    sha256 = loaded.outputs["image"]["sha256"]
    await run_node("image.load", {"sha256": sha256}, ctx=ctx)
    steps: list[tuple[str, dict[str, Any]]] = [
        ("image.crop", {"width": 50}),
        ("image.resize", {"width": 10}),
        ("image.convert", {"format": "jpeg"}),
    ]
    for node, config in steps:
        await run_node(node, config, {"image": loaded.outputs["image"]}, ctx=ctx)

    assert len(seen["base64"]) == 1
    assert len(seen["pillow"]) >= 5
    assert loop_thread not in seen["base64"] + seen["pillow"]


async def test_long_malformed_base64_fails_the_node_when_it_runs() -> None:
    text = "A" * (images._CHECK_BASE64_MAX + 2)  # not a multiple of 4: not base64

    with pytest.raises(NodeFailed, match="not valid base64"):
        await run_node("image.load", {"base64": text})
