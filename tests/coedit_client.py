"""A pycrdt client of the co-editing WebSocket, speaking y-websocket's protocol as the browser's
provider does (tests/api/test_coedit.py, bench/coedit.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from pycrdt import (
    Decoder,
    Doc,
    Text,
    YMessageType,
    YSyncMessageType,
    create_sync_message,
    create_update_message,
    handle_sync_message,
    read_message,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

ACCESS_MESSAGE = 100


def ws_url(http_url: str, postmortem_id: str) -> str:
    return http_url.replace("http://", "ws://", 1) + f"/api/postmortems/{postmortem_id}/doc"


class Editor:
    """One person's document: synced with the server, typing as they would."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}
        self.doc: Doc = Doc()
        self.socket: ClientConnection | None = None
        self.synced = asyncio.Event()
        self.writable: bool | None = None
        self.access_reason = ""
        self.closed: tuple[int, str] | None = None
        self.on_update: Callable[[bytes], None] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Editor:
        self.socket = await connect(self.url, additional_headers=self.headers, max_size=None)
        self._reader = asyncio.create_task(self._read())
        with contextlib.suppress(ConnectionClosed):  # a refusal closes at once
            await self.socket.send(create_sync_message(self.doc))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.socket is not None and self._reader is not None
        with contextlib.suppress(ConnectionClosed):
            await self.socket.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader

    async def _read(self) -> None:
        assert self.socket is not None
        try:
            async for message in self.socket:
                assert isinstance(message, bytes)
                self._handle(message)
        except ConnectionClosed:
            pass
        finally:
            close = self.socket.close_code
            self.closed = (close or 1006, self.socket.close_reason or "")

    def _handle(self, message: bytes) -> None:
        if message[0] == YMessageType.SYNC:
            if message[1] in (YSyncMessageType.SYNC_STEP2, YSyncMessageType.SYNC_UPDATE):
                update = read_message(message[2:])
                if self.on_update is not None:
                    self.on_update(update)
            reply = handle_sync_message(message[1:], self.doc)
            if reply is not None:
                assert self.socket is not None
                asyncio.ensure_future(self.socket.send(reply))
            if message[1] == YSyncMessageType.SYNC_STEP2:
                self.synced.set()
        elif message[0] == ACCESS_MESSAGE:
            decoder = Decoder(message[1:])
            access: dict[str, Any] = json.loads(decoder.read_var_string())
            self.writable, self.access_reason = bool(access["write"]), str(access["reason"])

    def text(self, name: str) -> str:
        return str(self.doc.get(name, type=Text))

    async def type(self, name: str, value: str, index: int | None = None) -> None:
        """Insert `value` at `index` (code points; the end when None) and send the update."""
        target = self.doc.get(name, type=Text)
        current = str(target)
        at = len(current) if index is None else index
        before = self.doc.get_state()
        target.insert(len(current[:at].encode()), value)
        update = self.doc.get_update(before)
        assert self.socket is not None
        await self.socket.send(create_update_message(update))

    async def wait_closed(self, timeout: float = 10.0) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while self.closed is None:
            if time.monotonic() > deadline:
                raise AssertionError("the server did not close the socket")
            await asyncio.sleep(0.02)
        return self.closed
