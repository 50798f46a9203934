"""Tiny real images, built byte by byte (no Pillow, no binary files in the repository).

Each builder makes a file that an ordinary decoder opens (checked with Pillow when they were written):
a 1x1 PNG, GIF, baseline JPEG and lossless WebP. `pad` grows a file legitimately, with an ancillary
chunk (PNG), comment segments (JPEG) or a comment extension (GIF), to hit an exact size.
"""

from __future__ import annotations

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png(*, width: int = 1, height: int = 1, size: int | None = None) -> bytes:
    """An RGBA PNG of opaque red pixels; with `size`, a tEXt chunk pads it to exactly that many bytes."""
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
    rows = b"".join(b"\x00" + b"\xff\x00\x00\xff" * width for _ in range(height))
    body = _png_chunk(b"IDAT", zlib.compress(rows)) + _png_chunk(b"IEND", b"")
    plain = PNG_SIGNATURE + header + body
    if size is None:
        return plain
    keyword = b"Comment\x00"
    text = size - len(plain) - 12
    if text < len(keyword):
        raise ValueError(f"a padded PNG is at least {len(plain) + 12 + len(keyword)} bytes")
    padding = _png_chunk(b"tEXt", keyword + b"x" * (text - len(keyword)))
    return PNG_SIGNATURE + header + padding + body


# The classic 1x1 transparent GIF (43 bytes).
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def gif() -> bytes:
    return GIF


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg(*, comment: int = 0) -> bytes:
    """A 1x1 grey baseline JPEG; with `comment`, that many bytes of comment text (COM segments) before the frame."""
    comments = b""
    while comment > 0:
        take = min(comment, 65533)
        comments += _segment(0xFE, b"c" * take)
        comment -= take
    one_code = bytes([1] + [0] * 15)  # a single Huffman code of length 1
    return (
        b"\xff\xd8"
        + _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
        + comments
        + _segment(0xDB, b"\x00" + bytes([1] * 64))  # quantisation table 0, all ones
        + _segment(0xC0, b"\x08\x00\x01\x00\x01\x01\x01\x11\x00")  # SOF0: 8 bit, 1x1, one component
        + _segment(0xC4, b"\x00" + one_code + b"\x00")  # DC table 0: category 0
        + _segment(0xC4, b"\x10" + one_code + b"\x00")  # AC table 0: end of block
        + _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")  # SOS
        + b"\x3f"  # DC 0, EOB, padding ones
        + b"\xff\xd9"
    )


class _Bits:
    """LSB-first bit writer, as VP8L reads its bit stream."""

    def __init__(self) -> None:
        self.value = 0
        self.count = 0

    def put(self, value: int, bits: int) -> None:
        self.value |= value << self.count
        self.count += bits

    def bytes(self) -> bytes:
        return self.value.to_bytes((self.count + 7) // 8, "little")


def webp() -> bytes:
    """A 1x1 lossless (VP8L) WebP: five single-symbol prefix codes, so the pixel takes no bits at all."""
    bits = _Bits()
    bits.put(0, 14)  # width - 1
    bits.put(0, 14)  # height - 1
    bits.put(1, 1)  # alpha is used
    bits.put(0, 3)  # version
    bits.put(0, 1)  # no transform
    bits.put(0, 1)  # no colour cache
    bits.put(0, 1)  # no meta prefix codes
    for symbol in (0, 0xFF, 0, 0xFF, 0):  # green, red, blue, alpha, distance
        bits.put(1, 1)  # simple code
        bits.put(0, 1)  # one symbol
        bits.put(1, 1)  # an 8-bit symbol
        bits.put(symbol, 8)
    payload = b"\x2f" + bits.bytes()
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) % 2 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk
