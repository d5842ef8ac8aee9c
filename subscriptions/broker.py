"""The event broker: one interface, two backends.

Mutations call `publish` after their transaction commits. Subscribers get an
async iterator of the events on one channel. Both backends deliver through a
per-process `Hub` (subscriptions/hub.py): one subscription per channel, local
fan-out, coalesced figures. `InProcessBroker` is the embedded default;
`RedisBroker` (subscriptions/redis_broker.py) carries events between processes.
"""
from __future__ import annotations

import os
from typing import Protocol

from livecart.models import outbox
from livecart.subscriptions import tracing
from livecart.models.events import DIRECTORY_CHANNEL, Event, stream_channel
from livecart.subscriptions.hub import Hub


class Broker(Protocol):
    hub: Hub

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, channel: str, event: Event) -> None: ...


class InProcessBroker:
    """Delivers events to subscribers in this process only."""

    def __init__(self) -> None:
        self.hub = Hub()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.hub.close()

    async def publish(self, channel: str, event: Event) -> None:
        self.hub.deliver(channel, event)


def create_broker(
    redis_url: str | None = None, *, cluster: bool = False, share_events: bool = True, exit_before_publish: bool = False
) -> Broker:
    """Redis when `redis_url` is given (several processes share events), else in-process;
    `cluster`: `redis_url` names a node of a Redis Cluster, and events go by sharded pub/sub.
    `share_events` off: each subscriber executes per event on its own (the bench's baseline).
    `exit_before_publish`: the tests' fault hook, a crash between commit and publish."""
    if redis_url:
        from livecart.subscriptions.redis_broker import RedisBroker

        broker: Broker = RedisBroker(redis_url, cluster=cluster)
    else:
        broker = InProcessBroker()
    broker.hub.share_events = share_events
    broker.exit_before_publish = exit_before_publish  # type: ignore[attr-defined]
    return broker


async def publish_to_stream(broker: Broker, stream_id: int, *events: Event) -> None:
    """Publish after commit; never called inside a transaction. Never raises into the
    mutation that calls it: the backends log and buffer what they cannot send."""
    channel = stream_channel(stream_id)
    logged = outbox.take_committed(stream_id)
    if logged and getattr(broker, "exit_before_publish", False):
        os._exit(70)  # the tests' fault hook (FAULT_EXIT_BEFORE_PUBLISH): committed, never published
    if logged:
        # The logged ones (with their numbers), then what the transaction did not log.
        events = (*logged, *(e for e in events if not _logged_already(e, logged)))
    for event in events:
        with tracing.span(
            f"publish {channel}", kind="PRODUCER", messaging__destination__name=channel, livecart__event=event.get("type", "")
        ):
            await broker.publish(channel, tracing.with_trace(event))


def _logged_already(event: Event, logged: list[Event]) -> bool:
    return any(all(other.get(k) == v for k, v in event.items()) for other in logged)


async def publish_to_directory(broker: Broker, event: Event) -> None:
    """The home page's channel (which streams are live); after commit, like publish_to_stream."""
    await broker.publish(DIRECTORY_CHANNEL, event)

