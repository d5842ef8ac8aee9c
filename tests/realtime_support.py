"""What the real-time tests share: streams, publishing, waiting, a raw WebSocket."""
from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import Any

from livecart.models import stream as streams
from livecart.models.engagement import InteractionType, StreamInteraction
from livecart.server.appkeys import BROKER
from livecart.server.graphql_view import LivecartGraphQLView
from livecart.models import events
from livecart.subscriptions.broker import publish_to_stream
from tests.support import GraphQLClient

WAIT = 5.0  # generous: a missing event fails the test, a slow machine should not

COMMENTS = "subscription($s: ID!) { commentAdded(streamId: $s) { id streamId text author { username } } }"
VIEWERS = "subscription($s: ID!) { viewerCount(streamId: $s) { streamId count } }"
REACTIONS = "subscription($s: ID!) { reactionsChanged(streamId: $s) { likes dislikes } }"
UPDATES = "subscription($s: ID!) { streamUpdated(streamId: $s) { id status featuredProducts { id stock } } }"
ORDERS = "subscription($s: ID!) { orderPlaced(streamId: $s) { id quantity amount buyer { username } product { id } } }"
STATS = "subscription($s: ID!) { streamStats(streamId: $s) { streamId viewerCount likes comments orders revenue } }"


def base_url(client: GraphQLClient) -> str:
    return str(client.http.make_url("")).rstrip("/")


def broker_of(client: GraphQLClient):
    return client.http.server.app[BROKER]


def view_of(client: GraphQLClient) -> LivecartGraphQLView:
    for route in client.http.server.app.router.routes():
        if isinstance(route.handler, LivecartGraphQLView):
            return route.handler
    raise LookupError("no GraphQL view")


async def live_stream(seller, title: str = "Show") -> streams.LiveStream:
    stream = await streams.create_stream(seller.vendor_id, title=title, product_ids=seller.product_ids)
    return await streams.start_stream(stream)


async def publish(client: GraphQLClient, stream_id: int, *events: dict) -> None:
    await publish_to_stream(broker_of(client), stream_id, *events)


async def viewers_now(client: GraphQLClient, stream_id: int, count: int) -> None:
    """What a join or leave does, short of the sessions: the counter, then the event after it
    (subscriptions read the count when they send; the event only says it moved)."""
    await streams.LiveStream.filter(id=stream_id).update(viewer_count=count, peak_viewers=100)
    await publish(client, stream_id, events.viewers_changed(stream_id))


async def comment_row(stream_id: int, user_id: int, text: str) -> StreamInteraction:
    return await StreamInteraction.create(
        stream_id=stream_id, user_id=user_id, interaction_type=InteractionType.COMMENT, comment_text=text
    )


async def next_of(results: AsyncIterator[dict], timeout: float = WAIT) -> dict:
    return await asyncio.wait_for(anext(results), timeout)


def pump(results: AsyncIterator[dict]) -> asyncio.Queue:
    """Results moved into a queue by a task of their own: a test may then time out waiting
    on the queue without cancelling (and so ending) the subscription itself."""
    queue: asyncio.Queue = asyncio.Queue()

    async def run() -> None:
        async for result in results:
            queue.put_nowait(result)

    queue.task = asyncio.ensure_future(run())  # kept alive by the queue the test holds
    return queue


async def until(predicate, timeout: float = WAIT, interval: float = 0.02) -> Any:
    """Wait until predicate() (or what it returns, when awaitable) is truthy; its value, or
    AssertionError at the timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


async def listening(client: GraphQLClient, stream_id: int, count: int = 1) -> None:
    """Wait until `count` subscribers of the stream in this process's hub know where they start:
    what is committed from then on is news to each (registered is not enough: a change committed
    before a subscriber reads the log's head is part of its start, not news)."""
    hub = broker_of(client).hub
    await until(lambda: hub.started_count(f"stream:{stream_id}") >= count)


class RawWebSocket:
    """A graphql-transport-ws client on a bare socket with a tiny receive buffer, so that a
    test can stop reading and let TCP push back on the server (no library reads for it)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str, receive_buffer: int = 4096) -> "RawWebSocket":
        import base64
        import os
        import socket
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)  # before connect: sets the window
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=receive_buffer)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /graphql HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def send(self, message: dict) -> None:
        import json
        import os
        import struct

        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        header = bytes([0x81]) + (
            bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        )
        self.writer.write(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    async def read_until_closed(self, timeout: float = WAIT) -> bool:
        """Drain what is buffered; True once the server has dropped the connection."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
            return True  # end of stream: the server closed
        except ConnectionError:
            return True  # reset: the server aborted
        except TimeoutError:
            return False

    def close(self) -> None:
        self.writer.close()
