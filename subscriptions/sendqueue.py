"""A connection's outgoing frames: written at once when the socket takes them, else queued
(bounded) and written in order by one writer task; a client that stops reading is dropped.

Transport-agnostic: the socket underneath is a `Socket` (server/ws_aiohttp.py adapts aiohttp's
WebSocketResponse). A client that stops reading stalls the writer (TCP pushes back), the queue
fills, and the connection is aborted: the server's memory per connection stays bounded.
Results of coalesced operations (figures whose newest value makes older ones useless) replace
their own queued frame instead of taking another slot.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from typing import Protocol

log = logging.getLogger("livecart.ws")

SEND_QUEUE_MESSAGES = 256
SEND_QUEUE_BYTES = 1 << 20
RESULT_TYPES = ("next", "data")


class Socket(Protocol):
    def write_now(self, data: bytes) -> bool:
        """Write the frame synchronously if the socket takes it now (False: queue it)."""

    async def write(self, data: bytes) -> None:
        """Write the frame, waiting for the socket; ConnectionError/RuntimeError when it is gone."""

    def abort(self) -> None:
        """Drop the connection at once (the client is not reading)."""

    async def close(self, code: int, reason: str) -> None: ...


class SendQueue:
    max_messages = SEND_QUEUE_MESSAGES
    max_bytes = SEND_QUEUE_BYTES

    def __init__(self, socket: Socket) -> None:
        self.socket = socket
        self._write_now = socket.write_now  # per frame of a fan-out: looked up once
        # [operation id or None, encoded bytes]; the deque, the wake-up event and the writer task are
        # made when a first frame has to wait (most idle sockets never queue one: ~1.5 KB each).
        self._queue: deque[list] | tuple = ()
        self._queued_bytes = 0
        self._coalesced_ops: set[str] = set()
        self._wakeup: asyncio.Event | None = None
        self._drainer: asyncio.Task | None = None
        self.overflowed = False
        self.closed = False

    def coalesce(self, operation_id: str, coalesced: bool) -> None:
        """Whether a queued result of this operation is replaced by its next one."""
        if coalesced:
            self._coalesced_ops.add(operation_id)
        else:
            self._coalesced_ops.discard(operation_id)

    def send_encoded(self, message: Mapping[str, object], data: bytes) -> None:
        """Queue already-encoded bytes (`message` carries the frame's id and type, not its payload):
        the hook for sending one serialization to many."""
        if self.closed:
            return
        key = message.get("id") if message.get("type") in RESULT_TYPES else None
        if key is not None and key in self._coalesced_ops and self._replace_queued(key, data):
            return
        if not self._queue and self._write_now(data):
            return
        if len(self._queue) >= self.max_messages or self._queued_bytes + len(data) > self.max_bytes:
            self._overflow()
            return
        if self._drainer is None:
            self._queue = deque()
            self._wakeup = asyncio.Event()
            self._drainer = asyncio.get_running_loop().create_task(self._write_forever())
        self._queue.append([key, data])
        self._queued_bytes += len(data)
        self._wakeup.set()

    def _replace_queued(self, key: str, data: bytes) -> bool:
        for entry in self._queue:
            if entry[0] == key:
                self._queued_bytes += len(data) - len(entry[1])
                entry[1] = data
                return True
        return False

    async def _write_forever(self) -> None:
        try:
            while True:
                while self._queue:
                    _, data = self._queue.popleft()
                    self._queued_bytes -= len(data)
                    await self.socket.write(data)
                self._wakeup.clear()
                await self._wakeup.wait()
        except (ConnectionError, RuntimeError):
            self.closed = True  # the peer went away; the reading side ends the operations

    def _overflow(self) -> None:
        """The client stopped reading: drop it rather than buffer without bound."""
        if self.closed:
            return
        self.closed = self.overflowed = True
        log.warning("closing a WebSocket whose client stopped reading (%d messages queued)", len(self._queue))
        self._queue = ()
        self._queued_bytes = 0
        if self._drainer is not None:
            self._drainer.cancel()
        # A polite close would wait for the very client that is not reading: abort the connection.
        self.socket.abort()

    async def close(self, code: int, reason: str) -> None:
        await self._drain(timeout=1.0)  # an error message queued before the close goes out first
        self.closed = True
        await self.socket.close(code, reason)

    async def _drain(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                while self._queue and not self.closed and self._drainer is not None:
                    await asyncio.sleep(0.01)
        except TimeoutError:
            pass

    def stop(self) -> None:
        self.closed = True
        if self._drainer is not None:
            self._drainer.cancel()
