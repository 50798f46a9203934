"""REST: images attached to a post-mortem — upload, list, download, delete.

The upload is read from the request stream by a small multipart/form-data reader, not spooled by a
form parser: it keeps at most `MAX_BYTES` bytes of the image in memory, never writes a temporary
file, refuses a declared Content-Length that cannot fit before reading anything, and stops reading a
body that outgrows the limit. The rules themselves (size, content, count) are in `postmortem.report.images`.

A second upload of the same bytes to the same report answers 200 with the image already stored
(idempotent retries), instead of 201 with a new one.

Over 300 lines on purpose: the streaming multipart reader (`read_upload`, about half the module)
serves only the upload route here, and its limits (`MAX_BODY`, `MAX_PART_HEADERS`) are that
route's contract, so they are read and changed together with it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Header, HTTPException, Request, Response
from pydantic import BaseModel

from postmortem.api.deps import EditableReport, StoreDep, VisibleReport
from postmortem.api.errors import error, invalid
from postmortem.report import images
from postmortem.store.images import StoredImage, TooManyImages

router = APIRouter(prefix="/api/postmortems/{postmortem_id}/images", tags=["images"])

FIELD = "file"
# Room for the multipart framing and small extra fields around the image; a body beyond
# MAX_BYTES + OVERHEAD cannot carry an image within the limit.
OVERHEAD = 64 * 1024
MAX_BODY = images.MAX_BYTES + OVERHEAD
MAX_PART_HEADERS = 8 * 1024


class Image(BaseModel):
    id: str
    media_type: str
    size: int
    sha256: str
    filename: str
    created_at: datetime
    url: str


class ImageList(BaseModel):
    items: list[Image]


def _url(postmortem_id: str, image_id: str) -> str:
    return f"/api/postmortems/{quote(postmortem_id, safe='')}/images/{image_id}"


def _out(image: StoredImage) -> Image:
    return Image(
        id=image.id,
        media_type=image.media_type,
        size=image.size,
        sha256=image.sha256,
        filename=image.filename,
        created_at=image.created_at,
        url=_url(image.postmortem_id, image.id),
    )


# The multipart/form-data reader --------------------------------------------------------------


@dataclass
class Upload:
    data: bytes
    filename: str | None
    content_type: str | None


def _malformed(reason: str) -> images.ImageRejected:
    return images.ImageRejected(400, f"malformed multipart/form-data body: {reason}")


def _missing() -> images.ImageRejected:
    return images.ImageRejected(
        422, f"no '{FIELD}' field: send the image as multipart/form-data in a field named '{FIELD}'"
    )


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary from the request's Content-Type, or 422 when it is not multipart/form-data."""
    message = Message()
    message["content-type"] = content_type or ""
    if not content_type or message.get_content_type() != "multipart/form-data":
        raise images.ImageRejected(
            422,
            f"expected a multipart/form-data body with the image in a field named '{FIELD}', "
            f"not {content_type or 'a body without Content-Type'}",
        )
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 70:
        raise _malformed("the Content-Type has no valid boundary parameter")
    try:
        return boundary.encode("ascii")
    except UnicodeEncodeError:
        raise _malformed("the boundary is not ASCII") from None


# Browsers (HTML's form encoding) and httpx escape these three in a plain `filename="..."`.
_HTML_ESCAPES = re.compile(r"%(22|0D|0A)", re.IGNORECASE)
_HTML_UNESCAPED = {"%22": '"', "%0D": "\r", "%0A": "\n"}


def _part_headers(block: bytes) -> tuple[str | None, str | None, str | None]:
    """(field name, file name, content type) of one part's header block."""
    message = Message()
    for line in block.decode("utf-8", "replace").split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon:
            raise _malformed(f"a part header line has no colon: {line[:80]!r}")
        message[name.strip()] = value.strip()
    disposition = message.get("content-disposition")
    if disposition is None or message.get_content_disposition() != "form-data":
        raise _malformed("a part has no 'Content-Disposition: form-data' header")
    field_name = message.get_param("name", header="content-disposition")
    filename = message.get_filename()
    if filename is not None and isinstance(message.get_param("filename", header="content-disposition"), str):
        filename = _HTML_ESCAPES.sub(lambda match: _HTML_UNESCAPED[match.group(0).upper()], filename)
    content_type = message.get("content-type")
    return (field_name if isinstance(field_name, str) else None, filename, content_type)


@dataclass
class _Parser:
    """Incremental multipart parser: feed it chunks; it keeps only the `file` part, up to the limit."""

    boundary: bytes
    buffer: bytearray = field(default_factory=bytearray)
    state: str = "preamble"
    current: str | None = None  # "file" while in the image part, "other" in any other part
    data: bytearray = field(default_factory=bytearray)
    filename: str | None = None
    content_type: str | None = None
    found: bool = False
    part_size: int = 0  # bytes of the image part seen, kept or not
    overflowed: bool = False
    done: bool = False

    def feed(self, chunk: bytes) -> None:
        self.buffer += chunk
        while not self.done and self._step():
            pass

    def _step(self) -> bool:
        """Advance one state; False when more input is needed."""
        delimiter = b"--" + self.boundary
        if self.state == "preamble":
            index = self.buffer.find(delimiter)
            if index < 0:
                if len(self.buffer) > OVERHEAD:
                    raise _malformed("no boundary line found")
                return False
            del self.buffer[: index + len(delimiter)]
            self.state = "after-delimiter"
            return True
        if self.state == "after-delimiter":
            if len(self.buffer) < 2:
                return False
            if self.buffer[:2] == b"--":
                self.done = True
                return False
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                if len(self.buffer) > 256:
                    raise _malformed("a boundary line does not end")
                return False
            if self.buffer[:line_end].strip(b" \t"):
                raise _malformed("unexpected text after a boundary")
            del self.buffer[: line_end + 2]
            self.state = "headers"
            return True
        if self.state == "headers":
            if self.buffer[:2] == b"\r\n":
                raise _malformed("a part has no headers")
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_PART_HEADERS:
                    raise _malformed(f"a part's headers are longer than {MAX_PART_HEADERS} bytes")
                return False
            self._start_part(bytes(self.buffer[:end]))
            del self.buffer[: end + 4]
            self.state = "body"
            return True
        if self.state == "body":
            needle = b"\r\n" + delimiter
            index = self.buffer.find(needle)
            if index >= 0:
                self._emit(self.buffer[:index])
                del self.buffer[: index + len(needle)]
                self._end_part()
                self.state = "after-delimiter"
                return True
            safe = len(self.buffer) - len(needle) + 1  # a delimiter may begin in the last bytes
            if safe > 0:
                self._emit(self.buffer[:safe])
                del self.buffer[:safe]
            return False
        raise AssertionError(self.state)

    def _start_part(self, block: bytes) -> None:
        name, filename, content_type = _part_headers(block)
        if name == FIELD:
            if self.found:
                raise images.ImageRejected(422, f"more than one '{FIELD}' field: upload one image per request")
            self.found = True
            self.current = "file"
            self.filename, self.content_type = filename, content_type
        else:
            self.current = "other"

    def _emit(self, piece: bytearray) -> None:
        if self.current != "file" or not piece:
            return
        self.part_size += len(piece)
        if self.part_size > images.MAX_BYTES:  # from here on only count, to name the size in the refusal
            self.overflowed = True
            self.data = bytearray()
        else:
            self.data += piece

    def _end_part(self) -> None:
        if self.current == "file" and self.overflowed:
            raise images.too_large(self.part_size)  # the whole image went by: its exact size is known
        self.current = None


async def read_upload(
    chunks: AsyncIterator[bytes], content_type: str | None, content_length: str | None = None
) -> Upload:
    """The `file` field of a multipart/form-data body, read with bounded memory.

    Raises ImageRejected: 413 for an image over the limit (with its exact size when the body around it
    was small enough to read to its end), 422 for a missing or repeated field or a body that is not
    multipart/form-data, 400 for a broken body.
    """
    parser = _Parser(boundary_of(content_type))
    declared = (content_length or "").strip()
    # isascii: "²".isdigit() is true, yet int("²") fails; past 18 digits int() may refuse, and it is too large anyway
    if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > MAX_BODY):
        raise images.ImageRejected(413, f"upload is {declared} bytes; an image may be at most {images.LIMIT_TEXT}")
    received = 0
    async for chunk in chunks:
        parser.feed(chunk[: MAX_BODY - received])
        received += len(chunk)
        if parser.done:
            break
        if received > MAX_BODY:  # stop reading: no image within the limit can be in this body
            if parser.overflowed:
                raise images.too_large(parser.part_size, exact=False)
            raise images.ImageRejected(
                413,
                f"request body is more than {MAX_BODY} bytes: send only the image, at most "
                f"{images.LIMIT_TEXT}, in the '{FIELD}' field",
            )
    if not parser.done:
        if parser.overflowed:
            raise images.too_large(parser.part_size, exact=False)
        raise _malformed("the body ends before its closing boundary")
    if not parser.found:
        raise _missing()
    return Upload(bytes(parser.data), parser.filename, parser.content_type)


# Routes -------------------------------------------------------------------------------------

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FIELD],
                    "properties": {
                        FIELD: {
                            "type": "string",
                            "format": "binary",
                            "description": "a JPEG, PNG, WebP or GIF image of at most 4 MB",
                        }
                    },
                }
            }
        },
    }
}


def _rejected(exc: images.ImageRejected) -> HTTPException:
    return HTTPException(exc.status, exc.message)


@router.post(
    "",
    response_model=Image,
    status_code=201,
    openapi_extra=_UPLOAD_BODY,
    responses={
        200: {"model": Image, "description": "these bytes were already attached: the stored image"},
        400: error("a malformed multipart/form-data body, or JSON that is not UTF-8 or nests too deep"),
        409: error(f"the report already has {images.MAX_IMAGES} images"),
        413: error("the image is over 4 MB"),
        415: error("the content is not a JPEG, PNG, WebP or GIF image, or the body is neither multipart nor JSON"),
        422: invalid("no 'file' field, or a body that is not multipart/form-data"),
    },
)
async def upload_image(pm: EditableReport, request: Request, response: Response, store: StoreDep) -> Image:
    """Attach an image; checked by its content, never by its name or declared type. The report is
    resolved (404 when unknown or hidden) before a byte of the upload is read."""
    postmortem_id = pm.id
    stored_images = store.images
    try:
        upload = await read_upload(
            request.stream(), request.headers.get("content-type"), request.headers.get("content-length")
        )
        existing = await stored_images.find(postmortem_id, images.sha256(upload.data))
        if existing is None:
            media_type = images.check(
                upload.data, upload.filename, upload.content_type, await stored_images.count(postmortem_id)
            )
            filename = images.display_name(upload.filename, media_type)
            try:
                stored, created = await stored_images.add(
                    postmortem_id, upload.data, media_type, filename, datetime.now(UTC), max_images=images.MAX_IMAGES
                )
            except TooManyImages as exc:  # another upload took the last place meanwhile
                raise images.too_many(exc.count) from None
        else:
            stored, created = existing, False
    except images.ImageRejected as exc:
        raise _rejected(exc) from None
    response.status_code = 201 if created else 200
    response.headers["Location"] = _url(postmortem_id, stored.id)
    return _out(stored)


@router.get("", response_model=ImageList)
async def list_images(pm: VisibleReport, store: StoreDep) -> ImageList:
    return ImageList(items=[_out(image) for image in await store.images.list(pm.id)])


@router.get(
    "/{image_id}",
    response_class=Response,
    responses={
        200: {
            "content": {media_type: {} for media_type in images.MEDIA_TYPES},
            "description": "the image bytes, with the type detected at upload",
        },
        304: {"description": "If-None-Match names this image: the copy the client has is current"},
    },
)
async def download_image(
    pm: VisibleReport,
    image_id: str,
    store: StoreDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    found = await store.images.get(pm.id, image_id)
    if found is None:
        raise HTTPException(404, f"post-mortem {pm.id!r} has no image {image_id!r}")
    image, data = found
    tag = f'"{image.sha256}"'
    headers = {
        "ETag": tag,
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'",
        "Content-Disposition": images.content_disposition(image.filename, image.media_type),
    }
    if if_none_match and (
        if_none_match.strip() == "*" or tag in [value.strip().removeprefix("W/") for value in if_none_match.split(",")]
    ):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=image.media_type, headers=headers)


@router.delete("/{image_id}", status_code=204)
async def delete_image(pm: EditableReport, image_id: str, store: StoreDep) -> Response:
    if not await store.images.delete(pm.id, image_id):
        raise HTTPException(404, f"post-mortem {pm.id!r} has no image {image_id!r}")
    return Response(status_code=204)
