"""Image nodes: load, crop, resize, convert. Pillow does the work.

Images travel between nodes as references, never as bytes in JSON: an image value is
``{"sha256", "content_type", "width", "height", "size"}`` (the engine may add ``artifact_id``
when it records the output), and the bytes live in the context's blob store. Pillow is
imported inside the work functions, which run in a worker thread so a large image does not
stall other nodes; start-up never pays for it.

Decompression bombs are refused before a pixel is decoded: only the formats below are opened
(never EPS, which runs Ghostscript, or the exotic ones), the pixel count is checked from the
header, and Pillow's own bomb check is set to the same bound with its warning made an error.
Everything that decodes (base64 included) runs off the event loop. A node reads only blobs its
run's owner may read (the engine scopes ``ctx.blobs``); an unknown hash and another owner's
hash fail alike.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from flowloom.exceptions import NotFound
from flowloom.heavy_imports import ensure_imported
from flowloom.nodes._net import fetch
from flowloom.nodes.base import Category, Node, NodeConfig, NodeResult, Port, PortType, RunContext

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = [
    "ImageConvert",
    "ImageConvertConfig",
    "ImageCrop",
    "ImageCropConfig",
    "ImageLoad",
    "ImageLoadConfig",
    "ImageResize",
    "ImageResizeConfig",
    "ImageTooLarge",
    "NotAnImage",
    "describe_image",
    "store_image",
]

MAX_PIXELS: Final = 50_000_000
"""Refuse images with more pixels than this (about 7000 x 7000): decoding them costs too much."""
MAX_SIDE: Final = 10_000
_CHECK_BASE64_MAX: Final = 256 * 1024
"""Base64 config text up to this long is decoded when the config is validated (on the loop)."""

_CONTENT_TYPES: Final = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
_SAVE_FORMATS: Final = frozenset(_CONTENT_TYPES)


class ImageError(ValueError):
    """The bytes are not an image Pillow can use, or the image is too large."""


class NotAnImage(ImageError):
    """The bytes are in no image format Pillow is allowed to read."""


class ImageTooLarge(ImageError):
    """The image has more than MAX_PIXELS pixels (a decompression bomb, or just too big)."""


def _pillow() -> None:
    """Pillow's decompression-bomb bound set to ours, and its DecompressionBombWarning made an
    error, for the whole process (no image anywhere should be decoded past the bound).

    Warning filters are global, so this cannot be scoped to one call; it is (re)installed on
    every call because code that restores the filters (``warnings.catch_warnings``) may have
    dropped it since. Cheap: a look through a short list. The first call imports Pillow (on the
    worker thread that calls it: the warm-up leaves Pillow out), through the lock every lazy
    import of a heavy module takes.
    """
    ensure_imported("PIL.Image")
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    if ("error", None, Image.DecompressionBombWarning, None, 0) not in warnings.filters:
        warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


def _open(data: bytes) -> Image:
    """The image in ``data``, decoded; ImageError when it is not one, is damaged, or has more
    than MAX_PIXELS pixels (refused from the header, before decoding). Blocks: call it in a
    worker thread."""
    from PIL import Image, UnidentifiedImageError

    _pillow()
    try:
        image = Image.open(io.BytesIO(data), formats=sorted(_CONTENT_TYPES))
    except UnidentifiedImageError:
        raise NotAnImage("the data is not an image in a known format") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"the image is over {MAX_PIXELS} pixels: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"the image is damaged: {exc}") from None
    # Opening reads only the header; refuse huge images before decoding a single pixel.
    if image.width * image.height > MAX_PIXELS:
        raise ImageTooLarge(f"the image is {image.width}x{image.height}, over {MAX_PIXELS} pixels")
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"the image is over {MAX_PIXELS} pixels: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"the image is damaged: {exc}") from None
    return image


def _describe(data: bytes) -> tuple[str, int, int]:
    image = _open(data)
    return image.format or "", image.width, image.height


def describe_image(data: bytes) -> tuple[str, int, int]:
    """The content type, width and height of the image in ``data``, decoded to be sure;
    NotAnImage, ImageTooLarge or ImageError (damaged) otherwise. Blocks: call it in a thread."""
    image_format, width, height = _describe(data)
    return _CONTENT_TYPES.get(image_format, "application/octet-stream"), width, height


def _encode(image: Image, image_format: str, quality: int = 95) -> bytes:
    if image_format not in _SAVE_FORMATS:
        image_format = "PNG"
    if image_format == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
        # JPEG has no alpha channel or palette.
        image = image.convert("RGB")
    out = io.BytesIO()
    options: dict[str, Any] = {}
    if image_format in ("JPEG", "WEBP"):
        options["quality"] = quality
    image.save(out, format=image_format, **options)
    return out.getvalue()


async def store_image(ctx: RunContext, data: bytes) -> dict[str, Any]:
    """Store image bytes in the blob store and return the image value describing them."""
    try:
        image_format, width, height = await asyncio.to_thread(_describe, data)
    except ImageError as exc:
        raise ctx.fail(str(exc)) from None
    sha256 = await ctx.blobs.put(data)
    return {
        "sha256": sha256,
        "content_type": _CONTENT_TYPES.get(image_format, "application/octet-stream"),
        "width": width,
        "height": height,
        "size": len(data),
    }


async def _read_image(ctx: RunContext, value: Any) -> bytes:
    if not isinstance(value, dict) or not isinstance(value.get("sha256"), str):
        raise ctx.fail("the input is not an image value (an object with a sha256)")
    try:
        return await ctx.blobs.read(value["sha256"])
    except NotFound:
        raise ctx.fail(f"image {value['sha256']} is not in the blob store") from None


async def _transform(
    ctx: RunContext, value: Any, work: Callable[[Image], tuple[Image, str]]
) -> NodeResult:
    """Read the input image, apply ``work`` in a thread, store and output the result."""
    data = await _read_image(ctx, value)

    def run() -> bytes:
        image = _open(data)
        result, image_format = work(image)
        return _encode(result, image_format)

    try:
        out = await asyncio.to_thread(run)
    except ImageError as exc:
        raise ctx.fail(str(exc)) from None
    return NodeResult({"image": await store_image(ctx, out)})


_IMAGE_IN: Final = Port("image", PortType.IMAGE)
_IMAGE_OUT: Final = Port("image", PortType.IMAGE)


class ImageLoadConfig(NodeConfig):
    url: str | None = None
    """An http or https URL to fetch the image from."""
    base64: str | None = None
    """The image bytes in base64, optionally as a ``data:image/...;base64,`` URL."""
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    """An uploaded image already in the blob store."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str | None) -> str | None:
        if url is not None and not url.lower().startswith(("http://", "https://")):
            raise ValueError("the URL must start with http:// or https://")
        return url

    @field_validator("base64")
    @classmethod
    def _check_base64(cls, text: str | None) -> str | None:
        # Configs are validated on the event loop: only short data is decoded here to catch
        # typos early; longer data is decoded (and checked) when the node runs, in a thread.
        if text is not None and len(text) <= _CHECK_BASE64_MAX:
            decode_base64(text)
        return text

    @model_validator(mode="after")
    def _exactly_one(self) -> ImageLoadConfig:
        given = [name for name in ("url", "base64", "sha256") if getattr(self, name)]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(f"give exactly one of url, base64 or sha256 (found: {found})")
        return self


def decode_base64(text: str) -> bytes:
    """The bytes of base64 text or of a ``data:...;base64,`` URL; ValueError if malformed."""
    payload = text.strip()
    if payload.startswith("data:"):
        header, sep, payload = payload.partition(",")
        if not sep or not header.endswith(";base64"):
            raise ValueError("a data URL must be of the form data:<type>;base64,<data>")
    try:
        data = base64.b64decode("".join(payload.split()), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not valid base64: {exc}") from None
    if not data:
        raise ValueError("the base64 data is empty")
    return data


class ImageLoad(Node[ImageLoadConfig]):
    """An image from a URL, from base64 data, or from the blob store, checked with Pillow."""

    type_name = "image.load"
    display_name = "Load image"
    icon = "image"
    category = Category.ACTION
    deterministic = False
    Config = ImageLoadConfig

    def is_deterministic(self, config: ImageLoadConfig) -> bool:
        # A URL may serve different bytes tomorrow; base64 and a sha256 cannot change.
        return config.url is None

    def outputs(self, config: ImageLoadConfig) -> list[Port]:
        return [_IMAGE_OUT]

    async def run(
        self, ctx: RunContext, config: ImageLoadConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        limit = ctx.settings.image_max_bytes
        if config.base64 is not None:
            # Surely too big (with room for a data: prefix and line breaks): refuse undecoded.
            if len(config.base64) * 3 // 4 > limit * 1.1 + 1024:
                raise ctx.fail(f"the base64 image is over the limit of {limit} bytes")
            # Megabytes of base64 take a while to decode: not on the event loop.
            try:
                data = await asyncio.to_thread(decode_base64, config.base64)
            except ValueError as exc:
                raise ctx.fail(f"base64: {exc}") from None
        elif config.sha256 is not None:
            data = await _read_image(ctx, {"sha256": config.sha256})
        else:
            assert config.url is not None
            fetched = await fetch(ctx, "GET", config.url)
            if fetched.status >= 400:
                raise ctx.fail(f"{fetched.url} answered {fetched.status}")
            data = fetched.content
        if len(data) > limit:
            raise ctx.fail(f"the image is {len(data)} bytes; the limit is {limit}")
        return NodeResult({"image": await store_image(ctx, data)})


class ImageCropConfig(NodeConfig):
    """The crop box in percent of the image, so one config fits every resolution (seed 001)."""

    x: float = Field(default=0, ge=0, lt=100)
    """Left edge, percent of the width from the left."""
    y: float = Field(default=0, ge=0, lt=100)
    """Top edge, percent of the height from the top."""
    width: float = Field(default=100, gt=0, le=100)
    """Percent of the image width."""
    height: float = Field(default=100, gt=0, le=100)
    """Percent of the image height."""

    @field_validator("width", "height")
    @classmethod
    def _inside(cls, size: float, info: ValidationInfo) -> float:
        start_name = "x" if info.field_name == "width" else "y"
        start = info.data.get(start_name)
        if start is not None and start + size > 100 + 1e-9:
            raise ValueError(
                f"{start_name} + {info.field_name} is {start + size:g}%, past the image edge"
            )
        return size


class ImageCrop(Node[ImageCropConfig]):
    """The part of the image inside a box given in percent (x, y, width, height)."""

    type_name = "image.crop"
    display_name = "Crop image"
    icon = "crop"
    category = Category.ACTION
    Config = ImageCropConfig

    def inputs(self, config: ImageCropConfig) -> list[Port]:
        return [_IMAGE_IN]

    def outputs(self, config: ImageCropConfig) -> list[Port]:
        return [_IMAGE_OUT]

    async def run(
        self, ctx: RunContext, config: ImageCropConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        def crop(image: Image) -> tuple[Image, str]:
            left, top, right, bottom = crop_box(image.width, image.height, config)
            return image.crop((left, top, right, bottom)), image.format or "PNG"

        return await _transform(ctx, inputs["image"], crop)


def crop_box(width_px: int, height_px: int, config: ImageCropConfig) -> tuple[int, int, int, int]:
    """The pixel box (left, top, right, bottom) of a percent crop; never empty."""
    left = min(round(width_px * config.x / 100), width_px - 1)
    top = min(round(height_px * config.y / 100), height_px - 1)
    right = max(round(width_px * (config.x + config.width) / 100), left + 1)
    bottom = max(round(height_px * (config.y + config.height) / 100), top + 1)
    return left, top, min(right, width_px), min(bottom, height_px)


class ImageResizeConfig(NodeConfig):
    width: int | None = Field(default=None, ge=1, le=MAX_SIDE)
    """Target width in pixels."""
    height: int | None = Field(default=None, ge=1, le=MAX_SIDE)
    """Target height in pixels."""
    keep_aspect: bool = True
    """Keep the proportions: fit inside width x height, or scale by the one side given."""

    @model_validator(mode="after")
    def _sides(self) -> ImageResizeConfig:
        if self.width is None and self.height is None:
            raise ValueError("give a width, a height, or both")
        if not self.keep_aspect and (self.width is None or self.height is None):
            raise ValueError("without keep_aspect, give both width and height")
        return self


def resized_size(width_px: int, height_px: int, config: ImageResizeConfig) -> tuple[int, int]:
    """The pixel size an image of ``width_px`` x ``height_px`` is resized to."""
    if not config.keep_aspect and config.width is not None and config.height is not None:
        return config.width, config.height
    scales = []
    if config.width is not None:
        scales.append(config.width / width_px)
    if config.height is not None:
        scales.append(config.height / height_px)
    scale = min(scales)
    return (
        min(max(1, round(width_px * scale)), MAX_SIDE),
        min(max(1, round(height_px * scale)), MAX_SIDE),
    )


class ImageResize(Node[ImageResizeConfig]):
    """The image scaled to a width and/or height in pixels (Lanczos resampling)."""

    type_name = "image.resize"
    display_name = "Resize image"
    icon = "resize"
    category = Category.ACTION
    Config = ImageResizeConfig

    def inputs(self, config: ImageResizeConfig) -> list[Port]:
        return [_IMAGE_IN]

    def outputs(self, config: ImageResizeConfig) -> list[Port]:
        return [_IMAGE_OUT]

    async def run(
        self, ctx: RunContext, config: ImageResizeConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        def resize(image: Image) -> tuple[Image, str]:
            from PIL.Image import Resampling

            size = resized_size(image.width, image.height, config)
            if size[0] * size[1] > MAX_PIXELS:
                # The result is decoded pixels too: bound it like any input.
                raise ImageError(
                    f"the resized image would be {size[0]}x{size[1]}, over {MAX_PIXELS} pixels"
                )
            return image.resize(size, Resampling.LANCZOS), image.format or "PNG"

        return await _transform(ctx, inputs["image"], resize)


class ImageConvertConfig(NodeConfig):
    format: Literal["png", "jpeg", "webp"] = "png"
    quality: int = Field(default=90, ge=1, le=100)
    """Quality for jpeg and webp (png is lossless)."""


class ImageConvert(Node[ImageConvertConfig]):
    """The image re-encoded as PNG, JPEG or WebP (JPEG drops transparency)."""

    type_name = "image.convert"
    display_name = "Convert image"
    icon = "convert"
    category = Category.ACTION
    Config = ImageConvertConfig

    def inputs(self, config: ImageConvertConfig) -> list[Port]:
        return [_IMAGE_IN]

    def outputs(self, config: ImageConvertConfig) -> list[Port]:
        return [_IMAGE_OUT]

    async def run(
        self, ctx: RunContext, config: ImageConvertConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        data = await _read_image(ctx, inputs["image"])
        target = config.format.upper()

        def convert() -> bytes:
            return _encode(_open(data), target, config.quality)

        try:
            out = await asyncio.to_thread(convert)
        except ImageError as exc:
            raise ctx.fail(str(exc)) from None
        return NodeResult({"image": await store_image(ctx, out)})
