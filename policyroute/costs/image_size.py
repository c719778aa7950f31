"""An image's width and height, read from its header bytes without decoding the image.

Providers bill an image by its pixel size, and the budget guard must know it without fetching
anything. For a base64 image only the few bytes a header needs are decoded (base64 can be read
at any byte offset: byte ``k`` sits in the four characters from ``4 * (k // 3)``), so a
megabyte image costs a few small decodes. Formats read:

- PNG: the ``IHDR`` chunk, which the format requires first;
- GIF: the logical screen size (87a and 89a);
- JPEG: the first start-of-frame marker (``SOF0`` to ``SOF15``, not ``DHT``, ``JPG``,
  ``DAC``), reached by skipping segments by their length;
- WebP: ``VP8`` (lossy) frame header, ``VP8L`` (lossless) header, ``VP8X`` (extended) canvas.

Anything else, or a header that does not hold together, reads as ``None``: the caller then
charges the most the provider bills for any image.

Example:
    >>> png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000002800000016808060000")
    >>> image_size(png)
    (640, 360)
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

__all__ = ["Reader", "base64_image_size", "data_url_image_size", "image_size", "read_size"]

Reader = Callable[[int, int], bytes]
"""``read(offset, n)``: up to ``n`` bytes from ``offset`` (fewer at the end)."""

_PNG = b"\x89PNG\r\n\x1a\n"
# JPEG markers that carry no length: TEM, RST0-7, SOI, EOI.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})
# 0xC4 (DHT), 0xC8 (JPG) and 0xCC (DAC) sit in the SOF range without being frames.
_NOT_FRAMES = frozenset({0xC4, 0xC8, 0xCC})
_MAX_SEGMENTS = 512  # a real file reaches its frame in a handful; this bounds a crafted one


def _png(read: Reader) -> tuple[int, int] | None:
    head = read(8, 16)
    if len(head) < 16 or head[4:8] != b"IHDR":
        return None
    return int.from_bytes(head[8:12], "big"), int.from_bytes(head[12:16], "big")


def _gif(read: Reader) -> tuple[int, int] | None:
    head = read(6, 4)
    if len(head) < 4:
        return None
    return int.from_bytes(head[0:2], "little"), int.from_bytes(head[2:4], "little")


def _jpeg(read: Reader) -> tuple[int, int] | None:
    offset = 2
    for _ in range(_MAX_SEGMENTS):
        head = read(offset, 2)
        if len(head) < 2 or head[0] != 0xFF:
            return None
        marker = head[1]
        if marker == 0xFF:  # fill byte before a marker
            offset += 1
            continue
        if marker in _STANDALONE:
            offset += 2
            continue
        if marker == 0xDA:  # start of scan before any frame: not a file we can read
            return None
        if 0xC0 <= marker <= 0xCF and marker not in _NOT_FRAMES:
            frame = read(offset + 4, 5)  # precision, height, width
            if len(frame) < 5:
                return None
            return int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big")
        length = read(offset + 2, 2)
        if len(length) < 2 or int.from_bytes(length, "big") < 2:
            return None
        offset += 2 + int.from_bytes(length, "big")
    return None


def _webp(read: Reader) -> tuple[int, int] | None:
    head = read(12, 18)
    if len(head) < 18:
        return None
    chunk, body = head[0:4], head[8:18]
    if chunk == b"VP8 ":
        # A key frame's tag (3 bytes), then the start code, then 14-bit sizes (the top two
        # bits are a display scale, not pixels).
        if body[3:6] != b"\x9d\x01\x2a":
            return None
        w = int.from_bytes(body[6:8], "little") & 0x3FFF
        h = int.from_bytes(body[8:10], "little") & 0x3FFF
        return w, h
    if chunk == b"VP8L":
        if body[0] != 0x2F:
            return None
        bits = int.from_bytes(body[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        w = int.from_bytes(body[4:7], "little") + 1
        h = int.from_bytes(body[7:10], "little") + 1
        return w, h
    return None


def read_size(read: Reader) -> tuple[int, int] | None:
    """The ``(width, height)`` of the image ``read`` gives bytes of, ``None`` if unreadable."""
    magic = read(0, 12)
    if magic[:8] == _PNG:
        size = _png(read)
    elif magic[:6] in (b"GIF87a", b"GIF89a"):
        size = _gif(read)
    elif magic[:3] == b"\xff\xd8\xff":
        size = _jpeg(read)
    elif magic[:4] == b"RIFF" and magic[8:12] == b"WEBP":
        size = _webp(read)
    else:
        return None
    if size is None or size[0] <= 0 or size[1] <= 0:
        return None  # a zero height (JPEG's DNL) says nothing of the size
    return size


def image_size(data: bytes) -> tuple[int, int] | None:
    """The ``(width, height)`` in an image's header bytes, ``None`` if unreadable.

    Example:
        >>> image_size(b"GIF89a\\x20\\x03\\x58\\x02" + bytes(4))
        (800, 600)
    """
    return read_size(lambda offset, n: data[offset : offset + n])


def base64_image_size(data: str) -> tuple[int, int] | None:
    """The ``(width, height)`` of a base64 image, decoding only the header bytes it reads.

    Base64 broken across lines is read after its whitespace is taken out; characters outside
    the base64 alphabet make it unreadable (``None``) rather than misread.

    Example:
        >>> base64_image_size(base64.b64encode(b"GIF87a\\x01\\x00\\x02\\x00" + bytes(8)).decode())
        (1, 2)
    """
    if " " in data or "\n" in data or "\r" in data or "\t" in data:
        data = "".join(data.split())
    size = len(data)

    def read(offset: int, n: int) -> bytes:
        start = offset // 3 * 4
        stop = min(size, -(-(offset + n) // 3) * 4)
        if start >= stop:
            return b""
        chunk = data[start:stop]
        if stop == size:
            chunk += "=" * (-len(chunk) % 4)  # tolerate missing padding at the end
        decoded = base64.b64decode(chunk, validate=True)
        skip = offset - start // 4 * 3
        return decoded[skip : skip + n]

    try:
        return read_size(read)
    except (binascii.Error, ValueError):
        return None


def data_url_image_size(url: str) -> tuple[int, int] | None:
    """The ``(width, height)`` of the image in a base64 ``data:`` URL, ``None`` if the URL is
    not one or its header is unreadable.

    Example:
        >>> gif = base64.b64encode(b"GIF89a\\x10\\x00\\x08\\x00" + bytes(8)).decode()
        >>> data_url_image_size("data:image/gif;base64," + gif)
        (16, 8)
    """
    if not url.startswith("data:"):
        return None
    meta, comma, payload = url.partition(",")
    if not comma or not meta.endswith(";base64"):
        return None
    return base64_image_size(payload)
