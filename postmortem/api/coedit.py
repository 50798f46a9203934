"""Live co-editing (#14): `/api/postmortems/{id}/doc`, a WebSocket speaking the y-websocket protocol.

One room per open report and process holds its pycrdt document. A writer's update is applied,
sent at once to the room's other sockets and appended to the store's update table; every process
with the report open polls that table for the rows others appended (REST edits, other replicas), so
the table is both the persistence and the fan-out. The stored title and sections follow the document
through the store's normal write path a moment after the last keystroke (`save_seconds`), and a
change of the text made elsewhere (PATCH, a redraft) is merged in as a diff from the last agreed
state. Who may write is the lifecycle's `can_edit`, checked again every second: a socket that loses
the right is told (message 100) and its updates are dropped from then on; one that may no longer see
the report is closed (4404).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pycrdt import (
    Decoder,
    Doc,
    Encoder,
    YMessageType,
    YSyncMessageType,
    create_sync_message,
    create_update_message,
    handle_sync_message,
    merge_updates,
    read_message,
)

from postmortem.api.services import Services
from postmortem.models import Postmortem, Section
from postmortem.report import live_document
from postmortem.review.lifecycle import can_edit
from postmortem.review.visibility import Reader, may_see
from postmortem.store.documents import DocumentWrite, StoredUpdate
from postmortem.store.errors import NotFound, VersionConflict
from postmortem.store.postmortems import PostmortemChanges
from postmortem.store.store import Store
from postmortem.store.tokens import Role, TokenInfo
from postmortem.web.session import PageError, caller

log = logging.getLogger(__name__)
router = APIRouter(tags=["co-editing"])

ACCESS_MESSAGE = 100  # ours: {"write": bool, "reason": str}, so the page can show its read-only banner
REFUSED = 4403
GONE = 4404
ACCESS_SECONDS = 1.0  # how often a room re-reads the report's status and who may write
LOOKBACK = 200  # rows re-read behind the last seen id: PostgreSQL may commit ids out of order


class Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason[:120]  # a close frame's reason is at most 123 bytes


@dataclass(eq=False)
class Connection:
    socket: WebSocket
    token: TokenInfo
    writable: bool
    awareness: dict[int, int] = field(default_factory=dict)  # the browser's awareness ids and clocks
    last_awareness: bytes | None = None
    outbox: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)

    def send(self, message: bytes) -> None:
        self.outbox.put_nowait(message)


def access_message(writable: bool, reason: str) -> bytes:
    encoder = Encoder()
    encoder.write_var_uint(ACCESS_MESSAGE)
    encoder.write_var_string(json.dumps({"write": writable, "reason": reason}))
    return encoder.to_bytes()


def _awareness_clients(payload: bytes) -> dict[int, int]:
    """The client ids and clocks an awareness update names (y-protocols' encoding)."""
    decoder = Decoder(payload)
    seen: dict[int, int] = {}
    for _ in range(decoder.read_var_uint()):
        client, clock = decoder.read_var_uint(), decoder.read_var_uint()
        decoder.read_var_string()
        seen[client] = clock
    return seen


def _awareness_gone(clients: dict[int, int]) -> bytes:
    encoder = Encoder()
    encoder.write_var_uint(len(clients))
    for client, clock in clients.items():
        encoder.write_var_uint(client)
        encoder.write_var_uint(clock + 1)
        encoder.write_var_string("null")
    return _message(YMessageType.AWARENESS, encoder.to_bytes())


def _message(kind: int, payload: bytes) -> bytes:
    encoder = Encoder()
    encoder.write_var_uint(kind)
    body = encoder.to_bytes()
    length = Encoder()
    length.write_var_uint(len(payload))
    return body + length.to_bytes() + payload


def who_may_write(pm: Postmortem, token: TokenInfo, is_reviewer: bool) -> tuple[bool, str]:
    if can_edit(pm.status, token.role.value, is_reviewer=is_reviewer):
        return True, ""
    return False, f"read-only: a {pm.status.value} report is not editable by {token.name} ({token.role.value})"


def _texts(pm: Postmortem) -> tuple[str, dict[str, str]]:
    return pm.title, {section.key: section.body for section in pm.sections}


class Room:
    """One report's document in this process, its sockets, and the loop that saves and polls."""

    def __init__(self, rooms: Rooms, postmortem_id: str) -> None:
        self.rooms = rooms
        self.id = postmortem_id
        self.doc: Doc = Doc()
        self.connections: set[Connection] = set()
        self.seen: set[int] = set()
        self.last_row = 0
        self.pending: list[bytes] = []
        self.edits = 0  # local edits so far; a save clears "dirty" only if none came in meanwhile
        self.saved_edits = 0
        self.dirty = False
        self.last_edit = 0.0
        self.last_writer: str | None = None
        self.keys: list[str] = []
        self.rows_since_compaction = 0
        self.wake = asyncio.Event()
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.failed: BaseException | None = None

    @property
    def store(self) -> Store:
        return self.rooms.services.store

    # Loading -----------------------------------------------------------------------------------

    async def load(self) -> None:
        pm = await self.store.postmortems.get(self.id)
        self.keys = [section.key for section in pm.sections]
        rows = await self.store.documents.since(self.id, 0)
        if not rows:
            title, sections = _texts(pm)
            await self.store.documents.seed(self.id, pm.version, live_document.seed(title, sections), _now())
            rows = await self.store.documents.since(self.id, 0)
        self._apply_rows(rows, broadcast=False)
        await self._follow_store(pm)

    def _apply_rows(self, rows: list[StoredUpdate], *, broadcast: bool) -> None:
        for row in rows:
            row_id, data, origin = row.id, row.data, row.origin
            if row_id in self.seen:
                continue
            self.seen.add(row_id)
            self.last_row = max(self.last_row, row_id)
            self.rows_since_compaction += 1
            if origin == self.rooms.origin:
                continue  # ours: applied when it came in
            before = self.doc.get_state()
            self.doc.apply_update(data)
            change = self.doc.get_update(before)
            if change != b"\x00\x00":
                self.dirty = True  # compared with the stored text at the next save (equal: nothing written)
                if broadcast:
                    self._broadcast(create_update_message(change))
        if len(self.seen) > 4 * LOOKBACK:
            self.seen = {row_id for row_id in self.seen if row_id > self.last_row - LOOKBACK}

    async def _follow_store(self, pm: Postmortem) -> None:
        """Merge a change of the stored text made outside the document, then mark what the document
        has that the store has not (typed before a crash) to be saved."""
        self.keys = [section.key for section in pm.sections]
        sync = await self.store.documents.sync_point(self.id)
        if sync is not None and sync.version < pm.version:
            title, sections = _texts(pm)
            update, state = live_document.rebase(sync.state, title, sections)
            write = DocumentWrite(update=update, state=state, base_version=sync.version, origin=self.rooms.origin)
            if await self.store.documents.rebased(self.id, pm.version, write, _now()):
                self._apply_local(update)
            return  # another process merged it: its row comes with the next poll
        title, sections = live_document.read(self.doc, self.keys)
        if (title or pm.title, sections) != _texts(pm):
            self.dirty = True

    # Messages ------------------------------------------------------------------------------------

    def _broadcast(self, message: bytes, *, besides: Connection | None = None) -> None:
        for connection in self.connections:
            if connection is not besides:
                connection.send(message)

    def _apply_local(self, update: bytes) -> None:
        before = self.doc.get_state()
        self.doc.apply_update(update)
        change = self.doc.get_update(before)
        if change != b"\x00\x00":
            self._broadcast(create_update_message(change))

    def join(self, connection: Connection) -> None:
        self.connections.add(connection)
        connection.send(create_sync_message(self.doc))
        for other in self.connections:
            if other is not connection and other.last_awareness:
                connection.send(other.last_awareness)

    def leave(self, connection: Connection) -> None:
        self.connections.discard(connection)
        if connection.awareness:
            self._broadcast(_awareness_gone(connection.awareness))
        self.wake.set()

    def receive(self, connection: Connection, message: bytes) -> None:
        if not message:
            return
        if message[0] == YMessageType.SYNC:
            kind = message[1] if len(message) > 1 else -1
            if kind == YSyncMessageType.SYNC_STEP1:
                reply = handle_sync_message(message[1:], self.doc)
                if reply is not None:
                    connection.send(reply)
                return
            if kind in (YSyncMessageType.SYNC_STEP2, YSyncMessageType.SYNC_UPDATE):
                if not connection.writable:
                    return  # a reader's edits are dropped
                update = read_message(message[2:])
                if update == b"\x00\x00":
                    return
                before = self.doc.get_state()
                self.doc.apply_update(update)
                change = self.doc.get_update(before)
                if change == b"\x00\x00":
                    return
                self._broadcast(create_update_message(change), besides=connection)
                self.pending.append(change)
                self.edits += 1
                self.dirty = True
                self.last_edit = time.monotonic()
                self.last_writer = connection.token.name
                self.wake.set()
        elif message[0] == YMessageType.AWARENESS:
            payload = read_message(message[1:])
            with contextlib.suppress(Exception):
                connection.awareness.update(_awareness_clients(payload))
            connection.last_awareness = message
            self._broadcast(message, besides=connection)

    # The loop --------------------------------------------------------------------------------------

    async def run(self) -> None:
        settings = self.rooms.services.settings.web
        next_access = time.monotonic() + ACCESS_SECONDS
        idle_since: float | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=settings.coedit_poll_seconds)
            self.wake.clear()
            try:
                await self._persist()
                rows = await self.store.documents.since(self.id, max(0, self.last_row - LOOKBACK), self.seen)
                self._apply_rows(rows, broadcast=True)
                now = time.monotonic()
                if now >= next_access:
                    next_access = now + ACCESS_SECONDS
                    await self._check_access()
                if self.dirty and now - self.last_edit >= settings.coedit_save_seconds:
                    await self._save()
                if self.rows_since_compaction >= settings.coedit_compact_every:
                    await self.store.documents.compact(self.id, _now())
                    self.rows_since_compaction = 0
            except NotFound:
                for connection in list(self.connections):
                    connection.send(b"")  # closed below
                    with contextlib.suppress(Exception):
                        await connection.socket.close(GONE, "the report was deleted")
                self.rooms.drop(self)
                return
            except Exception:  # a store outage: keep the document, retry at the next round
                log.exception("co-editing room %s: a round failed", self.id)
                if not self.connections:  # nobody left to keep it for: what was typed is in the rows already
                    self.rooms.drop(self)
                    return
                await asyncio.sleep(settings.coedit_poll_seconds)
            if not self.connections and not self.pending and not self.dirty:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 2 * settings.coedit_save_seconds:
                    self.rooms.drop(self)
                    return
            else:
                idle_since = None

    async def _persist(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        row_id = await self.store.documents.append(self.id, merge_updates(*batch), self.rooms.origin, _now())
        self.seen.add(row_id)
        self.rows_since_compaction += 1

    async def _check_access(self) -> None:
        pm = await self.store.postmortems.get(self.id)
        review = await self.store.review.get(self.id)
        for connection in list(self.connections):
            reader = _reader(connection.token)
            if not (may_see(reader, pm) or may_see(reader, pm, review)):
                with contextlib.suppress(Exception):
                    await connection.socket.close(GONE, f"no post-mortem {self.id!r}")
                continue
            writable, reason = who_may_write(pm, connection.token, review.reviewer(connection.token.name) is not None)
            if writable != connection.writable:
                connection.writable = writable
                connection.send(access_message(writable, reason))
        sync = await self.store.documents.sync_point(self.id)
        if sync is not None and sync.version < pm.version:
            await self._follow_store(pm)

    async def _save(self) -> None:
        """The document's text into the store: the one write path REST, exports and the lifecycle read."""
        pm = await self.store.postmortems.get(self.id)
        sync = await self.store.documents.sync_point(self.id)
        if sync is None or sync.version != pm.version:
            await self._follow_store(pm)  # merge what changed outside first; saved at the next round
            return
        # A PATCH writes its row with the text and the base: having read the base, its row is there to
        # read too; without it we would save over the PATCH the text from before it.
        self._apply_rows(
            await self.store.documents.since(self.id, max(0, self.last_row - LOOKBACK), self.seen), broadcast=True
        )
        if (cleaned := live_document.without_nul(self.doc, self.keys)) is not None:
            self._broadcast(create_update_message(cleaned))
            self.pending.append(cleaned)
        edits = self.edits
        title, bodies = live_document.read(self.doc, self.keys)
        title = title.strip()[:200] or pm.title
        changes = PostmortemChanges()
        sections: list[Section] = []
        changed = False
        for section in pm.sections:
            copy = section.model_copy()
            body = bodies.get(section.key, section.body)
            if body != section.body:
                copy.body, copy.edited, copy.drafted_by = body, True, None
                changed = True
            sections.append(copy)
        if changed:
            changes.sections = sections
        if title != pm.title:
            changes.title = title
            changed = True
        if not changed:
            self.dirty = self.edits != edits
            return
        if pm.author is None and self.last_writer:
            changes.author = self.last_writer
        write = DocumentWrite(
            update=b"", state=self.doc.get_update(), base_version=sync.version, origin=self.rooms.origin
        )
        try:
            updated = await self.store.postmortems.update(self.id, pm.version, changes, _now(), document=write)
        except VersionConflict:
            return  # someone wrote in between: merged at the next round, then saved
        self.dirty = self.edits != edits
        await self.rooms.edited(updated, self.last_writer or "co-editing")


class Rooms:
    """This process's rooms, one per report with an open socket (or unsaved text)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        _ALL_ROOMS.add(self)
        self.origin = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.rooms: dict[str, Room] = {}
        self.lock = asyncio.Lock()

    async def room(self, postmortem_id: str) -> Room:
        async with self.lock:
            room = self.rooms.get(postmortem_id)
            if room is None:
                room = Room(self, postmortem_id)
                await room.load()
                room.task = asyncio.create_task(room.run(), name=f"coedit-{postmortem_id}")
                self.rooms[postmortem_id] = room
            return room

    def drop(self, room: Room) -> None:
        if self.rooms.get(room.id) is room and not room.connections:
            del self.rooms[room.id]

    def wake(self, postmortem_id: str) -> None:
        """A REST edit appended a row: rooms of this process take it now, not at the next poll."""
        room = self.rooms.get(postmortem_id)
        if room is not None:
            room.wake.set()

    async def edited(self, pm: Postmortem, by: str) -> None:
        from postmortem.api.postmortems import tell_edited  # the API's own signal to the workflow

        await tell_edited(self.services.temporal, pm, by)


_ALL_ROOMS: weakref.WeakSet[Rooms] = weakref.WeakSet()


def wake_rooms(postmortem_id: str) -> None:
    """A REST edit appended a row: this process's rooms of the report take it now, not at the next poll."""
    for rooms in list(_ALL_ROOMS):
        rooms.wake(postmortem_id)


def rooms_of(app: object) -> Rooms:
    """The app's rooms (`create_app` makes them)."""
    rooms: Rooms = app.state.coedit  # type: ignore[attr-defined]
    return rooms


def _reader(token: TokenInfo) -> Reader:
    return Reader(name=token.name, team=token.team, admin=token.role == Role.ADMIN)


def _now() -> datetime:
    return datetime.now(UTC)


def _same_origin(socket: WebSocket) -> bool:
    """A browser names the page's origin; another site's page must not ride on the cookie."""
    origin = socket.headers.get("origin")
    if not origin:
        return True  # not a browser (a pycrdt client); it authenticates with a bearer token or a link
    return urlsplit(origin).netloc.lower() == socket.headers.get("host", "").lower()


async def _who(socket: WebSocket, services: Services, postmortem_id: str, link: str | None) -> TokenInfo:
    header = socket.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        token = await services.store.tokens.authenticate(header[7:].strip())
        if token is None:
            raise Refused(REFUSED, "the bearer token is unknown or revoked")
        return token
    if not _same_origin(socket):
        raise Refused(REFUSED, "this socket is for pages of this site only")
    try:
        who = await caller(socket, services, postmortem_id, link)
    except PageError as refused:
        raise Refused(REFUSED, refused.message) from refused
    if who is None:
        raise Refused(REFUSED, "sign in (or open the signed link) to edit this report")
    return who.token


@router.websocket("/api/postmortems/{postmortem_id}/doc")
async def document_socket(socket: WebSocket, postmortem_id: str, t: str | None = None) -> None:
    """Who may see the report joins; who may edit it in its status writes, others read (updates dropped)."""
    services: Services = socket.app.state.services
    await socket.accept()  # then close with our code and reason (before accepting, a browser sees only 403)
    try:
        token = await _who(socket, services, postmortem_id, t)
        try:
            pm = await services.store.postmortems.get(postmortem_id)
        except NotFound as exc:
            raise Refused(GONE, f"no post-mortem {postmortem_id!r}") from exc
        review = await services.store.review.get(pm.id)
        if not (may_see(_reader(token), pm) or may_see(_reader(token), pm, review)):
            raise Refused(GONE, f"no post-mortem {postmortem_id!r}")
        writable, reason = who_may_write(pm, token, review.reviewer(token.name) is not None)
        room = await rooms_of(socket.app).room(pm.id)
    except Refused as refused:
        await socket.close(refused.code, refused.reason)
        return
    connection = Connection(socket=socket, token=token, writable=writable)
    connection.send(access_message(writable, reason))
    room.join(connection)
    sender = asyncio.create_task(_send(connection))
    try:
        while True:
            message = await socket.receive_bytes()
            try:
                room.receive(connection, message)
            except Exception as exc:  # not the protocol: this socket's message only is refused
                await socket.close(1007, f"not a y-websocket message: {exc}"[:120])
                break
    except (WebSocketDisconnect, RuntimeError, KeyError):
        pass
    finally:
        room.leave(connection)
        connection.outbox.put_nowait(None)
        with contextlib.suppress(Exception):
            await sender


async def _send(connection: Connection) -> None:
    while True:
        message = await connection.outbox.get()
        if message is None:
            return
        if not message:
            continue
        try:
            await connection.socket.send_bytes(message)
        except Exception:
            return
