"""Image sizes read from header bytes built here by hand, one format at a time."""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable

import pytest

from policyroute.costs.image_size import base64_image_size, data_url_image_size, image_size


def png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">II", width, height) + bytes([8, 6, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + bytes(4)


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + bytes(6)


def segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def jpeg(width: int, height: int, *, marker: int = 0xC0, exif: int = 0) -> bytes:
    """A JPEG header: APP0, an APP1 of ``exif`` bytes, a quantisation and a Huffman table
    (DHT sits in the SOF range and must be skipped), then the frame."""
    frame = bytes([8]) + struct.pack(">HH", height, width) + bytes([3]) + bytes(9)
    return (
        b"\xff\xd8"
        + segment(0xE0, b"JFIF\x00" + bytes(9))
        + segment(0xE1, b"Exif\x00\x00" + bytes(exif))
        + segment(0xDB, bytes(65))
        + segment(0xC4, bytes(30))
        + b"\xff"  # a fill byte before the frame marker
        + segment(marker, frame)
        + segment(0xDA, bytes(10))
    )


def riff(chunk: bytes, body: bytes) -> bytes:
    payload = b"WEBP" + chunk + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


def webp_lossy(width: int, height: int) -> bytes:
    # Frame tag (key frame), start code, 14-bit sizes with a display scale in the top bits.
    body = b"\x30\x01\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", width | 0x4000, height)
    return riff(b"VP8 ", body + bytes(8))


def webp_lossless(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    return riff(b"VP8L", b"\x2f" + struct.pack("<I", bits) + bytes(8))


def webp_extended(width: int, height: int) -> bytes:
    sizes = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return riff(b"VP8X", b"\x10" + bytes(3) + sizes + bytes(8))


FORMATS = [png, gif, jpeg, webp_lossy, webp_lossless, webp_extended]


@pytest.mark.parametrize("build", FORMATS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("size", [(1, 1), (640, 480), (333, 2049), (4000, 3000)])
def test_each_format_reads_its_width_and_height(
    build: Callable[[int, int], bytes], size: tuple[int, int]
) -> None:
    data = build(*size)
    assert image_size(data) == size
    encoded = base64.b64encode(data).decode()
    assert base64_image_size(encoded) == size
    assert data_url_image_size("data:image/x;base64," + encoded) == size


@pytest.mark.parametrize("marker", [0xC1, 0xC2, 0xC3, 0xC5, 0xC7, 0xC9, 0xCB, 0xCD, 0xCF])
def test_every_jpeg_frame_kind_is_read(marker: int) -> None:
    assert image_size(jpeg(1024, 768, marker=marker)) == (1024, 768)


def test_a_jpeg_frame_behind_a_large_exif_block_is_reached_by_offset() -> None:
    data = jpeg(3000, 2000, exif=60_000)
    encoded = base64.b64encode(data + bytes(200_000)).decode()
    assert base64_image_size(encoded) == (3000, 2000)


@pytest.mark.parametrize("shift", [0, 1, 2])
def test_every_byte_alignment_of_base64_reads_the_same(shift: int) -> None:
    # The JPEG frame lands at each of the three positions within a base64 group.
    data = jpeg(800, 600, exif=shift)
    assert base64_image_size(base64.b64encode(data).decode()) == (800, 600)


def test_line_wrapped_base64_is_read_after_taking_out_its_breaks() -> None:
    data = jpeg(1920, 1080, exif=500)
    wrapped = base64.encodebytes(data).decode()  # 76 characters a line
    assert "\n" in wrapped
    assert base64_image_size(wrapped) == (1920, 1080)


def test_missing_padding_at_the_end_is_tolerated() -> None:
    encoded = base64.b64encode(gif(7, 9)).decode().rstrip("=")
    assert base64_image_size(encoded) == (7, 9)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        b"\x89PNG\r\n\x1a\n" + bytes(4),  # cut before IHDR
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"tEXt" + bytes(13),
        gif(0, 10),  # a zero side says nothing
        jpeg(640, 0),  # height given later by a DNL marker
        b"\xff\xd8" + segment(0xE0, bytes(4)) + segment(0xDA, bytes(4)),  # scan, no frame
        b"\xff\xd8\xff\xe0\x00",  # cut inside a segment length
        b"\xff\xd8" + b"\xff\xe0\x00\x01",  # a segment length below its own two bytes
        riff(b"VP8 ", bytes(20)),  # no start code
        riff(b"VP8L", b"\x00" + bytes(12)),  # no signature byte
        riff(b"ALPH", bytes(20)),
        b"RIFF\x00\x00\x00\x00WAVEfmt ",
        b"\x00\x00\x00\x18ftypheic" + bytes(16),  # HEIC: not read, charged the ceiling
    ],
)
def test_unreadable_headers_read_as_none(data: bytes) -> None:
    assert image_size(data) is None
    assert base64_image_size(base64.b64encode(data).decode()) is None


def test_a_jpeg_of_endless_segments_stops() -> None:
    data = b"\xff\xd8" + segment(0xE2, b"") * 2000 + segment(0xC0, bytes(9))
    assert image_size(data) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a.png",
        "data:image/png,rawbytes",  # not base64
        "data:image/png;base64",  # no comma
        "data:image/png;base64,!!!!" + "A" * 40,  # outside the alphabet
        "data:image/png;base64,",
    ],
)
def test_urls_that_are_not_readable_base64_read_as_none(url: str) -> None:
    assert data_url_image_size(url) is None
