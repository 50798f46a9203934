"""Image rules by content: sniffing, header checks, limits, safe names, and the bounded multipart reader."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator

import httpx
import pytest

from postmortem.api.images import MAX_BODY, Upload, read_upload
from postmortem.report import images
from postmortem.report.images import MAX_BYTES, MAX_IMAGES, ImageRejected, check, sniff
from tests.image_samples import PNG_SIGNATURE, gif, jpeg, png, webp

SAMPLES = {"image/png": png(), "image/gif": gif(), "image/jpeg": jpeg(), "image/webp": webp()}


def rejected(data: bytes, name: str | None = None, declared: str | None = None, count: int = 0) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        check(data, name, declared, count)
    return caught.value


@pytest.mark.parametrize("media_type", sorted(SAMPLES))
def test_each_format_is_recognised_by_its_bytes(media_type: str) -> None:
    data = SAMPLES[media_type]
    assert sniff(data) == media_type
    assert images.header_problem(media_type, data) is None
    # The declared name and type say otherwise; only the content decides.
    assert check(data, "holiday.txt", "text/plain", 0) == media_type


def test_larger_real_images_pass_too() -> None:
    assert check(png(width=640, height=480), None, None, 0) == "image/png"
    assert check(jpeg(comment=200_000), None, None, 0) == "image/jpeg"  # a long walk over COM segments


def test_anything_else_is_refused_and_the_message_says_what_it_is() -> None:
    assert sniff(b"Hello, world") is None and sniff(b"") is None
    text = rejected(b"Hello, world\n", "notes.png", "image/png")
    assert text.status == 415
    assert text.message.startswith(
        "not a JPEG, PNG, WebP or GIF image (by its content): 'notes.png', sent as "
        "image/png starts with the bytes 48 65 6C 6C 6F 2C 20 77"
    )
    assert "its name or declared type says PNG, but only the content counts" in text.message
    assert "is a PDF document" in rejected(b"%PDF-1.7\n...", "report.pdf").message
    svg = rejected(b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>', "x.svg")
    assert svg.status == 415 and "SVG" in svg.message
    assert "is a HEIC image" in rejected(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00").message
    assert "is a BMP image" in rejected(b"BM" + bytes(60)).message
    empty = rejected(b"", "empty.png")
    assert empty.status == 422 and "'file' field is empty" in empty.message


def test_a_signature_alone_or_a_truncated_header_is_refused() -> None:
    signature_only = rejected(PNG_SIGNATURE, "x.png", "image/png")
    assert (
        signature_only.status == 415 and "starts like a PNG but the file ends inside its IHDR" in signature_only.message
    )
    assert "only the content counts" not in signature_only.message  # the name did not lie here
    good = png()
    damaged = good[:20] + bytes([good[20] ^ 0xFF]) + good[21:]
    assert "CRC mismatch" in rejected(damaged).message
    no_ihdr = PNG_SIGNATURE + struct.pack(">I", 13) + b"tEXt" + bytes(17)
    assert "not followed by an IHDR" in rejected(no_ihdr).message

    assert "truncated" in rejected(b"\xff\xd8\xff").message
    assert "truncated" in rejected(jpeg()[:40]).message  # cut inside the quantisation table
    sos_first = b"\xff\xd8\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00\x3f\xff\xd9"
    assert "no frame header before its image data" in rejected(sos_first).message

    assert "truncated" in rejected(b"GIF89a\x01\x00").message
    assert "truncated" in rejected(b"GIF89a hello").message  # text that starts like a GIF

    data = webp()
    assert "truncated" in rejected(data[:-4]).message  # the RIFF size no longer fits
    odd_chunk = data[:12] + b"ALPH" + data[16:]
    assert "not VP8, VP8L or VP8X" in rejected(odd_chunk).message
    assert "truncated" in rejected(b"RIFF\x04\x00\x00\x00WEBP").message


def test_the_size_limit_is_exact() -> None:
    assert len(png(size=MAX_BYTES)) == MAX_BYTES == 4 * 1024 * 1024
    assert check(png(size=MAX_BYTES), "big.png", "image/png", 0) == "image/png"
    over = rejected(png(size=MAX_BYTES + 1))
    assert (over.status, over.message) == (413, "image is 4194305 bytes; the limit is 4194304 (4 MB)")
    assert (
        images.too_large(MAX_BYTES + 1, exact=False).message
        == "image is at least 4194305 bytes; the limit is 4194304 (4 MB)"
    )


def test_the_count_limit() -> None:
    assert check(png(), None, None, MAX_IMAGES - 1) == "image/png"
    full = rejected(png(), count=MAX_IMAGES)
    assert full.status == 409 and full.message.startswith("this post-mortem already has 100 images, the limit")
    # Size and content are reported before the count: the first rule broken is the one named.
    assert rejected(b"text", count=MAX_IMAGES).status == 415


def test_display_names_are_safe() -> None:
    assert images.display_name("C:\\Users\\ana\\Desktop\\graph.png", "image/png") == "graph.png"
    assert images.display_name("../../etc/passwd", None) == "passwd"
    assert images.display_name("evil\u202egnp.exe", "image/png") == "evilgnp.exe"  # no bidi override
    assert images.display_name("line\r\nbreak\x00.png", None) == "line break.png"
    assert images.display_name("", "image/webp") == "image.webp"
    assert images.display_name(None, "image/jpeg") == "image.jpg"
    assert images.display_name("...", "image/gif") == "image.gif"
    long = images.display_name("x" * 400 + ".jpeg", "image/jpeg")
    assert len(long) == 255 and long.endswith(".jpeg")
    assert images.display_name("Störung 📈.png", None) == "Störung 📈.png"


def test_downloads_carry_the_extension_of_the_content() -> None:
    assert images.download_name("graph.gif", "image/png") == "graph.png"
    assert images.download_name("graph.PNG", "image/png") == "graph.PNG"
    assert images.download_name("notes", "image/jpeg") == "notes.jpg"
    assert images.download_name("v1.2 final", "image/webp") == "v1.2 final.webp"
    header = images.content_disposition('Störung "1".gif', "image/png")
    assert header == "inline; filename=\"St_rung _1_.png\"; filename*=UTF-8''St%C3%B6rung%20%221%22.png"


# The multipart reader -------------------------------------------------------------------------


def multipart(files: dict | None = None, data: dict | None = None) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://test/", files=files, data=data)
    return request.read(), request.headers["content-type"]


async def chunked(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def read(body: bytes, content_type: str | None, size: int = 65536) -> Upload:
    return await read_upload(chunked(body, size), content_type, str(len(body)))


async def refused(body: bytes, content_type: str | None, size: int = 65536) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        await read(body, content_type, size)
    return caught.value


async def test_the_reader_finds_the_file_among_other_fields_whatever_the_chunking() -> None:
    image = png(width=3, height=2)
    body, content_type = multipart(
        files={"file": ('my "chart".png', image, "image/png")},
        data={"before": "x" * 100, "caption": "the\r\n--not a boundary"},
    )
    for size in range(1, 200):
        upload = await read(body, content_type, size)
        assert upload == Upload(image, 'my "chart".png', "image/png")


async def test_the_reader_takes_utf8_and_rfc5987_names() -> None:
    image = gif()
    raw = (
        (
            '--b0undary\r\nContent-Disposition: form-data; name="file"; filename="Störung.gif"\r\n'
            "Content-Type: image/gif\r\n\r\n"
        ).encode()
        + image
        + b"\r\n--b0undary--\r\n"
    )
    assert (await read(raw, "multipart/form-data; boundary=b0undary")).filename == "Störung.gif"
    encoded = (
        b"preamble\r\n--b0undary\r\nContent-Disposition: form-data; name=file; "
        b"filename*=UTF-8''gr%C3%A4fik.gif\r\n\r\n" + image + b"\r\n--b0undary--"
    )
    upload = await read(encoded, 'multipart/form-data; boundary="b0undary"')
    assert (upload.data, upload.filename, upload.content_type) == (image, "gräfik.gif", None)


async def test_the_reader_refuses_what_it_cannot_use() -> None:
    body, content_type = multipart(files={"picture": ("a.png", png(), "image/png")}, data={"caption": "x"})
    missing = await refused(body, content_type)
    assert missing.status == 422 and "no 'file' field" in missing.message
    not_multipart = await refused(b'{"file": "x"}', "application/json")
    assert not_multipart.status == 422 and "multipart/form-data" in not_multipart.message
    assert (await refused(b"", None)).status == 422
    no_boundary = await refused(body, "multipart/form-data")
    assert no_boundary.status == 400 and "boundary" in no_boundary.message
    twice, twice_type = multipart(
        files=[
            ("file", ("a.png", png(), "image/png")),  # type: ignore[arg-type]
            ("file", ("b.gif", gif(), "image/gif")),
        ]
    )
    assert "more than one 'file' field" in (await refused(twice, twice_type)).message
    cut = await refused(body[:-10], content_type)
    assert cut.status == 400 and "ends before its closing boundary" in cut.message


async def test_an_oversized_image_is_measured_when_the_body_is_small_enough_to_finish() -> None:
    body, content_type = multipart(files={"file": ("big.png", png(size=MAX_BYTES + 1), "image/png")})
    over = await refused(body, content_type, size=1 << 20)
    assert (over.status, over.message) == (413, "image is 4194305 bytes; the limit is 4194304 (4 MB)")
    exact, exact_type = multipart(files={"file": ("limit.png", png(size=MAX_BYTES), "image/png")})
    assert len((await read(exact, exact_type, size=1 << 20)).data) == MAX_BYTES


async def test_a_huge_upload_is_never_read_whole() -> None:
    chunks_read = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal chunks_read
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="huge.png"\r\n\r\n' + png()
        for _ in range(1024):  # 1 GiB if anyone read it all
            chunks_read += 1
            yield bytes(1 << 20)

    content_type = "multipart/form-data; boundary=b"
    with pytest.raises(ImageRejected) as declared:
        await read_upload(endless(), content_type, str(1 << 30))
    assert declared.value.status == 413 and chunks_read == 0  # refused on its Content-Length alone
    assert declared.value.message == f"upload is {1 << 30} bytes; an image may be at most 4194304 (4 MB)"

    with pytest.raises(ImageRejected) as streamed:  # no Content-Length (chunked): stops at the cap
        await read_upload(endless(), content_type)
    assert streamed.value.status == 413 and chunks_read <= MAX_BODY // (1 << 20) + 1
    assert streamed.value.message.startswith("image is at least ")
    assert streamed.value.message.endswith("; the limit is 4194304 (4 MB)")
