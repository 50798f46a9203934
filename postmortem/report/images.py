"""Images attached to a post-mortem: what is accepted, decided by the bytes alone.

An upload is accepted when its content is a JPEG, PNG, WebP or GIF image of at most `MAX_BYTES`, and
the report has fewer than `MAX_IMAGES`. The file name and the declared Content-Type are never trusted:
they only make the error message clearer when they lie.

Beyond the signature, the image's header is checked (PNG: an intact IHDR chunk; JPEG: a frame header
before the first scan; GIF: the logical screen descriptor; WebP: a VP8/VP8L/VP8X chunk that fits in the
RIFF size), so a bare signature, a truncated header or text that happens to start with "GIF89a" is
refused. The pixel data is not decoded (that would need an image library): an image damaged after
its header is stored as sent, and the browser shows what it can. The bytes are always served back
with their detected type, `nosniff` and a CSP that allows nothing, so a crafted file cannot run.
"""

from __future__ import annotations

import hashlib
import re
import struct
import unicodedata
import zlib
from urllib.parse import quote

MAX_BYTES = 4 * 1024 * 1024
MAX_IMAGES = 100
LIMIT_TEXT = f"{MAX_BYTES} (4 MB)"

JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
GIF = "image/gif"
MEDIA_TYPES = (JPEG, PNG, WEBP, GIF)
EXTENSIONS = {JPEG: ".jpg", PNG: ".png", WEBP: ".webp", GIF: ".gif"}
_NAMES = {JPEG: "JPEG", PNG: "PNG", WEBP: "WebP", GIF: "GIF"}
_EXTENSION_TYPES = {".jpg": JPEG, ".jpeg": JPEG, ".jpe": JPEG, ".png": PNG, ".webp": WEBP, ".gif": GIF}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Formats people try to upload, named in the refusal so the fix is obvious.
_OTHER_FORMATS: tuple[tuple[int, bytes, str], ...] = (
    (0, b"%PDF-", "a PDF document"),
    (0, b"II*\x00", "a TIFF image"),
    (0, b"MM\x00*", "a TIFF image"),
    (0, b"BM", "a BMP image"),
    (0, b"PK\x03\x04", "a ZIP archive (or an office document)"),
    (0, b"\x00\x00\x01\x00", "an ICO icon"),
    (4, b"ftypheic", "a HEIC image"),
    (4, b"ftypheix", "a HEIC image"),
    (4, b"ftypmif1", "a HEIF image"),
    (4, b"ftypavif", "an AVIF image"),
)


class ImageRejected(Exception):
    """An upload that breaks a rule: `status` is the HTTP status, `message` says which rule and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def too_large(size: int, *, exact: bool = True) -> ImageRejected:
    """`exact=False` when reading stopped before the end of the image: it is at least `size` bytes."""
    amount = f"{size} bytes" if exact else f"at least {size} bytes"
    return ImageRejected(413, f"image is {amount}; the limit is {LIMIT_TEXT}")


def too_many(count: int) -> ImageRejected:
    return ImageRejected(
        409, f"this post-mortem already has {count} images, the limit ({MAX_IMAGES}); delete one to add another"
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sniff(data: bytes) -> str | None:
    """The media type that the first bytes announce (magic numbers only), or None."""
    if data[:3] == b"\xff\xd8\xff":
        return JPEG
    if data[:8] == PNG_SIGNATURE:
        return PNG
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return None


def header_problem(media_type: str, data: bytes) -> str | None:
    """Why the header behind the signature is not a usable image header, or None when it is."""
    if media_type == PNG:
        return _png_problem(data)
    if media_type == JPEG:
        return _jpeg_problem(data)
    if media_type == GIF:
        return None if len(data) >= 13 else "the file ends inside its header (truncated)"
    if media_type == WEBP:
        return _webp_problem(data)
    raise ValueError(f"not an accepted media type: {media_type}")


def _png_problem(data: bytes) -> str | None:
    if len(data) < 33:
        return "the file ends inside its IHDR header (truncated)"
    if data[8:16] != b"\x00\x00\x00\x0dIHDR":
        return "the signature is not followed by an IHDR header chunk"
    if struct.unpack(">I", data[29:33])[0] != zlib.crc32(data[12:29]):
        return "its IHDR header chunk is damaged (CRC mismatch)"
    width, height = struct.unpack(">II", data[16:24])
    if not width or not height:
        return f"its IHDR header says it is {width}x{height} pixels"
    return None


_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_problem(data: bytes) -> str | None:
    """Walk the marker segments up to the frame header (SOFn), which must come before any scan."""
    position = 2
    while True:
        if position >= len(data):
            return "the file ends before its frame header (truncated)"
        if data[position] != 0xFF:
            return f"no marker at byte {position} where one must be (damaged)"
        while position < len(data) and data[position] == 0xFF:  # fill bytes
            position += 1
        if position >= len(data):
            return "the file ends before its frame header (truncated)"
        marker = data[position]
        position += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # segments without a length
            continue
        if marker in (0xD9, 0xDA):
            return "it has no frame header before its image data"
        if position + 2 > len(data):
            return "the file ends inside a marker segment (truncated)"
        length = struct.unpack(">H", data[position : position + 2])[0]
        if length < 2 or position + length > len(data):
            return "the file ends inside a marker segment (truncated)"
        if marker in _SOF_MARKERS:
            if length < 8:
                return "its frame header is too short"
            width, components = struct.unpack(">H", data[position + 5 : position + 7])[0], data[position + 7]
            if not width or not components:
                return "its frame header says it has no width or no colour components"
            return None
        position += length


def _webp_problem(data: bytes) -> str | None:
    if len(data) < 20:
        return "the file ends inside its header (truncated)"
    riff_size = struct.unpack("<I", data[4:8])[0]
    if riff_size + 8 > len(data):
        return f"its RIFF header announces {riff_size + 8} bytes but the file has {len(data)} (truncated)"
    kind = data[12:16]
    chunk_size = struct.unpack("<I", data[16:20])[0]
    if kind == b"VP8 ":
        if len(data) < 30 or data[23:26] != b"\x9d\x01\x2a":
            return "its VP8 chunk has no key frame header"
        if not (struct.unpack("<H", data[26:28])[0] & 0x3FFF and struct.unpack("<H", data[28:30])[0] & 0x3FFF):
            return "its VP8 header says it has no pixels"
        return None
    if kind == b"VP8L":
        return None if len(data) >= 25 and data[20] == 0x2F else "its VP8L chunk has no lossless header"
    if kind == b"VP8X":
        return None if chunk_size >= 10 and len(data) >= 30 else "its VP8X header chunk is too short"
    return f"its first chunk is {kind!r}, not VP8, VP8L or VP8X"


def _declared(declared_name: str | None, declared_type: str | None) -> str:
    parts = []
    if declared_name:
        parts.append(f"{display_name(declared_name, None)!r}")
    if declared_type:
        parts.append(f"sent as {declared_type}")
    return ", ".join(parts) if parts else "the upload"


def _claimed_type(declared_name: str | None, declared_type: str | None) -> str | None:
    """The image type the name or declared Content-Type claim, for a clearer refusal."""
    if declared_type and declared_type.split(";")[0].strip().lower() in MEDIA_TYPES:
        return declared_type.split(";")[0].strip().lower()
    if declared_name:
        for extension, media_type in _EXTENSION_TYPES.items():
            if declared_name.lower().endswith(extension):
                return media_type
    return None


def _not_an_image(data: bytes, declared_name: str | None, declared_type: str | None, reason: str) -> ImageRejected:
    what = _declared(declared_name, declared_type)
    claimed = _claimed_type(declared_name, declared_type)
    lie = (
        f"; its name or declared type says {_NAMES[claimed]}, but only the content counts"
        if claimed and sniff(data) != claimed
        else ""
    )
    return ImageRejected(415, f"not a JPEG, PNG, WebP or GIF image (by its content): {what} {reason}{lie}")


def _looks_like(data: bytes) -> str:
    for offset, magic, name in _OTHER_FORMATS:
        if data[offset : offset + len(magic)] == magic:
            return f"is {name}"
    head = data[:256].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) or b"<svg" in head:
        return "is SVG/XML (SVG is refused: it can carry scripts)"
    shown = " ".join(f"{byte:02X}" for byte in data[:8])
    return f"starts with the bytes {shown}"


def check_content(data: bytes, declared_name: str | None = None, declared_type: str | None = None) -> str:
    """The detected media type of an upload within the size limit, or ImageRejected (413, 415, 422)."""
    if len(data) > MAX_BYTES:
        raise too_large(len(data))
    if not data:
        raise ImageRejected(422, "the 'file' field is empty: choose an image to upload")
    media_type = sniff(data)
    if media_type is None:
        raise _not_an_image(data, declared_name, declared_type, _looks_like(data))
    problem = header_problem(media_type, data)
    if problem:
        raise _not_an_image(data, declared_name, declared_type, f"starts like a {_NAMES[media_type]} but {problem}")
    return media_type


def check(data: bytes, declared_name: str | None, declared_type: str | None, existing_count: int) -> str:
    """All the rules in order — size (413), content (415; 422 when empty), count (409) — and the media type.

    `existing_count` is how many images the report already has; a re-upload of an image it already
    holds is answered before this check (idempotent), so it never counts against the limit.
    """
    media_type = check_content(data, declared_name, declared_type)
    if existing_count >= MAX_IMAGES:
        raise too_many(existing_count)
    return media_type


_SPACES = re.compile(r"\s+")
_INVISIBLE = frozenset({"Cc", "Cf", "Cs"})  # controls, format characters (bidi overrides, zero widths), surrogates


def display_name(declared_name: str | None, media_type: str | None) -> str:
    """The original file name made safe to show: no folders, no control or bidi characters, at most 255.

    Only for display: the stored name never decides anything. Empty names become `image` + extension.
    """
    name = unicodedata.normalize("NFC", declared_name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = _SPACES.sub(
        " ",
        "".join(
            " " if ch in "\t\r\n" else ch for ch in name if ch in "\t\r\n" or unicodedata.category(ch) not in _INVISIBLE
        ),
    )
    name = name.strip().lstrip(".").strip()
    if not name:
        name = "image" + (EXTENSIONS[media_type] if media_type else "")
    if len(name) > 255:
        stem, dot, extension = name.rpartition(".")
        extension = dot + extension if dot and len(extension) <= 10 else ""
        name = name[: 255 - len(extension)] + extension
    return name


def download_name(filename: str, media_type: str) -> str:
    """The stored name with the extension of the detected type (a PNG sent as x.gif downloads as x.png)."""
    stem, dot, extension = filename.rpartition(".")
    if dot and stem and _EXTENSION_TYPES.get("." + extension.lower()) == media_type:
        return filename
    base = stem if dot and stem and ("." + extension.lower()) in _EXTENSION_TYPES else filename
    return base + EXTENSIONS[media_type]


def content_disposition(filename: str, media_type: str) -> str:
    """`inline` with an ASCII-only fallback name and the UTF-8 name (RFC 6266 / RFC 5987)."""
    name = download_name(filename, media_type)
    fallback = re.sub(r"[^A-Za-z0-9._()+ -]", "_", name) or "image" + EXTENSIONS[media_type]
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
