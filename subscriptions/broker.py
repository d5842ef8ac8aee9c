"""The event broker: one interface, an in-process backend for the embedded default.

Mutations call `publish` after their transaction commits. Subscribers get an
async iterator of the events on one channel.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Protocol

from subscriptions.events import Event, stream_channel


class Broker(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, channel: str, event: Event) -> None: ...

    def listen(self, channel: str) -> AsyncIterator[Event]: ...


class InProcessBroker:
    """Delivers events to subscribers in this process only."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._queues: dict[str, set[asyncio.Queue]] = defaultdict(set)
        self._queue_size = queue_size

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._queues.clear()

    async def publish(self, channel: str, event: Event) -> None:
        for queue in list(self._queues.get(channel, ())):
            if queue.full():
                queue.get_nowait()  # drop the oldest rather than grow without bound
            queue.put_nowait(event)

    async def listen(self, channel: str) -> AsyncIterator[Event]:
        queue: asyncio.Queue = asyncio.Queue(self._queue_size)
        self._queues[channel].add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues[channel].discard(queue)
            if not self._queues[channel]:
                del self._queues[channel]


async def publish_to_stream(broker: Broker, stream_id: int, *events: Event) -> None:
    """Publish after commit; never called inside a transaction."""
    channel = stream_channel(stream_id)
    for event in events:
        await broker.publish(channel, event)
