"""REST: images of a post-mortem — accepted by content, limited in size and count, served back safely."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest_asyncio
from starlette.routing import NoMatchFound

from postmortem.api import images as images_api
from postmortem.api.app import create_app
from postmortem.api.services import Services
from postmortem.app.gateway import TemporalGateway
from postmortem.app.settings import Settings
from postmortem.config import StoreSettings
from postmortem.incident.teams_file import parse_teams
from postmortem.report.images import MAX_BYTES, MAX_IMAGES
from postmortem.store.database import sessionmaker
from postmortem.store.images import ImageStore
from postmortem.store.store import Store
from postmortem.store.tokens import Role
from tests.api.conftest import TEAMS
from tests.factories import new_postmortem, pagerduty_event
from tests.image_samples import gif, jpeg, png, webp

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@dataclass
class ImagesApi:
    http: httpx.AsyncClient
    store: Store
    images: ImageStore
    tokens: dict[Role, str]

    def auth(self, role: Role = Role.EDITOR) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def seed(self, incident_id: str) -> str:
        pm, _ = await self.store.postmortems.create_if_absent(new_postmortem(pagerduty_event(incident_id).incident))
        return pm.id

    async def upload(
        self,
        pm_id: str,
        data: bytes,
        name: str = "image.bin",
        content_type: str = "image/png",
        role: Role = Role.EDITOR,
    ) -> httpx.Response:
        return await self.http.post(
            f"/api/postmortems/{pm_id}/images", files={"file": (name, data, content_type)}, headers=self.auth(role)
        )


@pytest_asyncio.fixture
async def api(sqlite_store: Store, tmp_path) -> AsyncIterator[ImagesApi]:
    """The real app on a real SQLite store, with `store.images` and the images router (wired here too
    when the application does not do it yet, exactly as Store and create_app do).

    Image routes never reach Temporal, so the gateway points nowhere (any use would answer 503).
    """
    if not isinstance(getattr(sqlite_store, "images", None), ImageStore):
        sqlite_store.images = ImageStore(sessionmaker(sqlite_store.engine))
    gateway = TemporalGateway("127.0.0.1:1", "default", "images-tests")
    app = create_app(
        Services(
            settings=Settings(store=StoreSettings(data_dir=tmp_path)),
            store=sqlite_store,
            temporal=gateway,
            teams=parse_teams(TEAMS),
        )
    )
    try:
        app.url_path_for("upload_image", postmortem_id="x")
    except NoMatchFound:
        app.include_router(images_api.router)
    tokens = {role: (await sqlite_store.tokens.create(role.value, role, NOW))[1] for role in Role}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield ImagesApi(
            http=http,
            store=sqlite_store,
            images=sqlite_store.images,
            tokens=tokens,
        )


async def test_each_format_is_accepted_by_its_content(api: ImagesApi) -> None:
    pm_id = await api.seed("PIMG1")
    samples = [
        ("chart.png", png(), "image/png"),
        ("dot.gif", gif(), "image/gif"),
        ("photo.jpeg", jpeg(), "image/jpeg"),
        ("shot.webp", webp(), "image/webp"),
    ]
    ids = []
    for name, data, media_type in samples:
        response = await api.upload(pm_id, data, name, "application/octet-stream")
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["media_type"], body["size"], body["filename"]) == (media_type, len(data), name)
        assert body["sha256"] == hashlib.sha256(data).hexdigest()
        assert body["url"] == f"/api/postmortems/{pm_id}/images/{body['id']}" == response.headers["Location"]
        assert datetime.fromisoformat(body["created_at"]).tzinfo is not None
        ids.append(body["id"])
    listed = await api.http.get(f"/api/postmortems/{pm_id}/images", headers=api.auth(Role.VIEWER))
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == ids
    assert [item["media_type"] for item in listed.json()["items"]] == [media for _, _, media in samples]


async def test_four_megabytes_exactly_and_not_one_byte_more(api: ImagesApi) -> None:
    pm_id = await api.seed("PIMG2")
    exact = png(size=MAX_BYTES)  # a real PNG grown by a tEXt chunk
    accepted = await api.upload(pm_id, exact, "limit.png")
    assert accepted.status_code == 201 and accepted.json()["size"] == MAX_BYTES == 4 * 1024 * 1024
    downloaded = await api.http.get(accepted.json()["url"], headers=api.auth(Role.VIEWER))
    assert downloaded.content == exact

    over = await api.upload(pm_id, png(size=MAX_BYTES + 1), "over.png")
    assert over.status_code == 413
    assert over.json() == {"detail": "image is 4194305 bytes; the limit is 4194304 (4 MB)"}
    assert await api.images.count(pm_id) == 1


async def test_a_huge_declared_upload_is_refused_before_it_is_read(api: ImagesApi) -> None:
    pm_id = await api.seed("PIMG3")
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1024):
            sent += 1
            yield bytes(1 << 20)

    response = await api.http.post(
        f"/api/postmortems/{pm_id}/images",
        content=body(),
        headers={**api.auth(), "Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(1 << 30)},
    )
    assert response.status_code == 413 and "an image may be at most 4194304 (4 MB)" in response.json()["detail"]
    assert sent <= 1  # the transport may hand over one chunk before the app answers; never the gigabyte


async def test_the_content_decides_not_the_name_or_declared_type(api: ImagesApi) -> None:
    pm_id = await api.seed("PIMG4")
    disguised = await api.upload(pm_id, png(), "graph.gif", "image/gif")
    assert disguised.status_code == 201
    assert (disguised.json()["media_type"], disguised.json()["filename"]) == ("image/png", "graph.gif")
    served = await api.http.get(disguised.json()["url"], headers=api.auth(Role.VIEWER))
    assert served.headers["content-type"] == "image/png"
    assert 'filename="graph.png"' in served.headers["content-disposition"]

    text = await api.upload(pm_id, b"just some notes, not a picture\n", "notes.png", "image/png")
    assert text.status_code == 415
    detail = text.json()["detail"]
    assert detail.startswith("not a JPEG, PNG, WebP or GIF image (by its content): 'notes.png', sent as image/png")
    assert "only the content counts" in detail
    signature_only = await api.upload(pm_id, b"\x89PNG\r\n\x1a\n", "x.png")
    assert signature_only.status_code == 415 and "IHDR" in signature_only.json()["detail"]
    svg = await api.upload(
        pm_id, b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "x.svg", "image/svg+xml"
    )
    assert svg.status_code == 415 and "SVG" in svg.json()["detail"]
    assert await api.images.count(pm_id) == 1


async def test_at_most_one_hundred_images_per_report(api: ImagesApi) -> None:
    pm_id = await api.seed("PIMG5")
    for width in range(1, MAX_IMAGES):  # 99 stored directly, the 100th through the API
        await api.images.add(pm_id, png(width=width), "image/png", f"{width}.png", NOW, max_images=MAX_IMAGES)
    hundredth = await api.upload(pm_id, png(width=MAX_IMAGES), "100.png")
    assert hundredth.status_code == 201

    refused = await api.upload(pm_id, gif(), "101.gif")
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith("this post-mortem already has 100 images, the limit")
    retry = await api.upload(pm_id, png(width=MAX_IMAGES), "100.png")  # bytes it already holds: not a new one
    assert retry.status_code == 200 and retry.json()["id"] == hundredth.json()["id"]

    deleted = await api.http.delete(hundredth.json()["url"], headers=api.auth())
    assert deleted.status_code == 204
    assert (await api.upload(pm_id, gif(), "101.gif")).status_code == 201
    assert await api.images.count(pm_id) == MAX_IMAGES


async def test_roles(api: ImagesApi) -> None:
    pm_id = await api.seed("PIMG6")
    url = f"/api/postmortems/{pm_id}/images"
    denied = await api.upload(pm_id, png(), role=Role.VIEWER)
    assert denied.status_code == 403 and "editor" in denied.json()["detail"]
    unauthenticated = await api.http.post(url, files={"file": ("a.png", png(), "image/png")})
    assert unauthenticated.status_code == 401 and "Authorization" in unauthenticated.json()["detail"]
    assert (await api.http.get(url)).status_code == 401

    stored = (await api.upload(pm_id, png())).json()
    assert (await api.http.get(url, headers=api.auth(Role.VIEWER))).status_code == 200
    assert (await api.http.get(stored["url"], headers=api.auth(Role.VIEWER))).status_code == 200
    refused_delete = await api.http.delete(stored["url"], headers=api.auth(Role.VIEWER))
    assert refused_delete.status_code == 403 and "editor" in refused_delete.json()["detail"]


async def test_download_is_the_same_bytes_served_safely(api: ImagesApi) -> None:
    pm_id = await api.seed("PIMG7")
    data = webp()
    stored = (await api.upload(pm_id, data, 'Störung "final".webp', "image/webp")).json()
    response = await api.http.get(stored["url"], headers=api.auth(Role.VIEWER))
    assert response.status_code == 200 and response.content == data
    assert response.headers["content-type"] == "image/webp"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "default-src 'none'"
    assert response.headers["content-disposition"] == (
        "inline; filename=\"St_rung _final_.webp\"; filename*=UTF-8''St%C3%B6rung%20%22final%22.webp"
    )
    assert response.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    cached = await api.http.get(
        stored["url"], headers={**api.auth(Role.VIEWER), "If-None-Match": response.headers["etag"]}
    )
    assert cached.status_code == 304 and cached.content == b""


async def test_a_second_upload_of_the_same_bytes_returns_the_stored_image(api: ImagesApi) -> None:
    pm_id = await api.seed("PIMG8")
    first = await api.upload(pm_id, jpeg(), "a.jpg")
    again = await api.upload(pm_id, jpeg(), "b.jpg")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json() and again.headers["Location"] == first.json()["url"]
    assert await api.images.count(pm_id) == 1
    other_id = await api.seed("PIMG8B")
    elsewhere = await api.upload(other_id, jpeg(), "a.jpg")
    assert elsewhere.status_code == 201 and elsewhere.json()["id"] != first.json()["id"]


async def test_delete(api: ImagesApi) -> None:
    pm_id = await api.seed("PIMG9")
    keep = (await api.upload(pm_id, gif())).json()
    gone = (await api.upload(pm_id, png())).json()
    assert (await api.http.delete(gone["url"], headers=api.auth())).status_code == 204
    assert (await api.http.get(gone["url"], headers=api.auth())).status_code == 404
    again = await api.http.delete(gone["url"], headers=api.auth())
    assert again.status_code == 404 and gone["id"] in again.json()["detail"]
    listed = await api.http.get(f"/api/postmortems/{pm_id}/images", headers=api.auth())
    assert [item["id"] for item in listed.json()["items"]] == [keep["id"]]


async def test_unknown_report_or_image(api: ImagesApi) -> None:
    url = "/api/postmortems/pagerduty-NOPE/images"
    for response in (
        await api.upload("pagerduty-NOPE", png()),
        await api.http.get(url, headers=api.auth()),
        await api.http.get(f"{url}/abc", headers=api.auth()),
        await api.http.delete(f"{url}/abc", headers=api.auth()),
    ):
        assert response.status_code == 404 and "pagerduty-NOPE" in response.json()["detail"]
    pm_id = await api.seed("PIMG10")
    missing = await api.http.get(f"/api/postmortems/{pm_id}/images/abc", headers=api.auth())
    assert missing.status_code == 404 and missing.json() == {"detail": f"post-mortem {pm_id!r} has no image 'abc'"}


async def test_missing_or_empty_field(api: ImagesApi) -> None:
    pm_id = await api.seed("PIMG11")
    url = f"/api/postmortems/{pm_id}/images"
    wrong_field = await api.http.post(url, files={"image": ("a.png", png(), "image/png")}, headers=api.auth())
    assert wrong_field.status_code == 422 and "no 'file' field" in wrong_field.json()["detail"]
    no_body = await api.http.post(url, headers=api.auth())
    assert no_body.status_code == 422 and "multipart/form-data" in no_body.json()["detail"]
    as_json = await api.http.post(url, json={"file": "aGVsbG8="}, headers=api.auth())
    assert as_json.status_code == 422 and "application/json" in as_json.json()["detail"]
    empty = await api.upload(pm_id, b"", "")
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    assert await api.images.count(pm_id) == 0


async def test_the_openapi_document_describes_the_upload(api: ImagesApi) -> None:
    spec = (await api.http.get("/openapi.json")).json()
    upload = spec["paths"]["/api/postmortems/{postmortem_id}/images"]["post"]
    schema = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["file"] and schema["properties"]["file"]["format"] == "binary"
    assert {"201", "200", "409", "413", "415", "422"} <= set(upload["responses"])
