"""The per-process hub: one broker subscription per channel, fanned out to local subscribers.

Every broker backend delivers into a Hub. The hub holds, per channel, the set of
local subscribers (one per GraphQL subscription in this process) and hands each
event to all of them as the SAME object, so work done for one subscriber (a row
loaded, a result computed and serialized) can be shared through `SharedEvent.once`.

Figures that change faster than anyone can read them are coalesced here, once per
process, before fan-out: viewer counts and reactions at most twice a second per
stream, the seller's stats at most once a second. The newest value always wins.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from subscriptions.events import Event

log = logging.getLogger("livecart.hub")

# event type -> (throttle key, seconds between deliveries)
COALESCED: dict[str, tuple[str, float]] = {
    "viewers_changed": ("viewers_changed", 0.5),
    "reactions_changed": ("reactions_changed", 0.5),
    "stats_changed": ("stats_changed", 1.0),
}
# Events that move the seller's figures; each also schedules one coalesced stats_changed.
STATS_SOURCES = frozenset(
    {"viewers_changed", "reactions_changed", "comment_added", "comment_deleted", "order_placed", "stream_updated"}
)

LOCAL_QUEUE_SIZE = 1000


class SharedEvent(dict):
    """An event as every local subscriber receives it: one object per event per process.

    `once(key, factory)` runs `factory` for the first subscriber that asks and hands
    its result to all the others: the hook for computing an event's result once.
    """

    __slots__ = ("_memo",)

    def __init__(self, event: Event) -> None:
        super().__init__(event)
        self._memo: dict[Any, asyncio.Future] = {}

    async def once(self, key: Any, factory: Callable[[], Awaitable[Any]]) -> Any:
        while True:
            future = self._memo.get(key)
            if future is None:
                return await self._compute(key, factory)
            result = await asyncio.shield(future)
            if result is not _RETRY:
                return result
            # The subscriber computing it went away mid-way: the next one computes it.

    async def _compute(self, key: Any, factory: Callable[[], Awaitable[Any]]) -> Any:
        future = self._memo[key] = asyncio.get_running_loop().create_future()
        try:
            result = await factory()
        except asyncio.CancelledError:
            del self._memo[key]
            future.set_result(_RETRY)  # never cancel the others because this one was
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: the others may not be waiting
            raise
        future.set_result(result)
        return result


_RETRY = object()


class LocalSubscriber:
    """One listener's bounded inbox. It is read by a coroutine that never blocks on the
    network (the WebSocket send queue absorbs that), so dropping is a last resort."""

    __slots__ = ("channel", "queue", "dropped", "_waiter")

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.queue: deque[SharedEvent] = deque()
        self.dropped = 0
        self._waiter: asyncio.Future | None = None

    def put(self, event: SharedEvent) -> None:
        if len(self.queue) >= LOCAL_QUEUE_SIZE:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> SharedEvent:
        while not self.queue:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.queue.popleft()


class _Throttle:
    """Leading and trailing edge: the first change goes at once, later ones within the
    interval collapse into the newest, sent when the interval is over."""

    __slots__ = ("interval", "last_sent", "pending", "timer")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last_sent = float("-inf")
        self.pending: Event | None = None
        self.timer: asyncio.TimerHandle | None = None


class Hub:
    """Local subscribers per channel. The backend learns what to subscribe through two hooks:
    `ready(channel)` is awaited on every new local subscriber (the backend subscribes the
    channel once, and returns when its subscription is in place); `released(channel)` is
    called when the channel's last local subscriber leaves."""

    def __init__(
        self,
        ready: Callable[[str], Awaitable[None]] | None = None,
        released: Callable[[str], None] | None = None,
    ) -> None:
        self._subscribers: dict[str, set[LocalSubscriber]] = {}
        self._throttles: dict[tuple[str, str], _Throttle] = {}
        self._ready = ready
        self._released = released
        self.delivered = 0
        # Off (SUBSCRIPTION_SHARING=off) only for the bench's baseline: see _fan_out.
        self.share_events = True

    def channels(self) -> list[str]:
        return list(self._subscribers)

    def subscriber_count(self, channel: str | None = None) -> int:
        if channel is not None:
            return len(self._subscribers.get(channel, ()))
        return sum(len(s) for s in self._subscribers.values())

    # ------------------------------------------------------------ delivery

    def deliver(self, channel: str, event: Event) -> None:
        """Hand an event to this process's subscribers of `channel` (never blocks)."""
        if channel not in self._subscribers:
            return
        kind = event.get("type")
        if kind in COALESCED:
            self._throttled(channel, event)
        else:
            self._fan_out(channel, event)
        if kind in STATS_SOURCES:
            self._throttled(channel, {"type": "stats_changed", "stream_id": event.get("stream_id")})

    def _fan_out(self, channel: str, event: Event) -> None:
        subscribers = self._subscribers.get(channel)
        if not subscribers:
            return
        shared = SharedEvent(event)
        for subscriber in subscribers:
            # With share_events off each subscriber gets its own copy, so nothing computed for one
            # serves another: strawberry's default per-subscriber path, the baseline bench/ measures.
            subscriber.put(shared if self.share_events else SharedEvent(event))
        self.delivered += len(subscribers)

    def _throttled(self, channel: str, event: Event) -> None:
        key, interval = COALESCED[event["type"]]
        throttle = self._throttles.get((channel, key))
        if throttle is None:
            throttle = self._throttles[(channel, key)] = _Throttle(interval)
        now = time.monotonic()
        if throttle.timer is None and now - throttle.last_sent >= throttle.interval:
            throttle.last_sent = now
            self._fan_out(channel, event)
            return
        throttle.pending = event
        if throttle.timer is None:
            delay = throttle.last_sent + throttle.interval - now
            throttle.timer = asyncio.get_running_loop().call_later(
                max(delay, 0.0), self._flush, channel, key
            )

    def _flush(self, channel: str, key: str) -> None:
        throttle = self._throttles.get((channel, key))
        if throttle is None:
            return
        throttle.timer = None
        event, throttle.pending = throttle.pending, None
        if event is not None:
            throttle.last_sent = time.monotonic()
            self._fan_out(channel, event)

    # ------------------------------------------------------------ subscribing

    async def listen(self, channel: str) -> AsyncIterator[SharedEvent]:
        """The events on `channel` from now on; the channel is subscribed before the
        first event is awaited, so nothing published after this starts is missed."""
        subscriber = await self.add(channel)
        try:
            while True:
                yield await subscriber.get()
        finally:
            self.remove(subscriber)

    async def add(self, channel: str) -> LocalSubscriber:
        subscriber = LocalSubscriber(channel)
        self._subscribers.setdefault(channel, set()).add(subscriber)
        if self._ready is not None:
            try:
                await self._ready(channel)
            except BaseException:
                self.remove(subscriber)
                raise
        return subscriber

    def remove(self, subscriber: LocalSubscriber) -> None:
        subscribers = self._subscribers.get(subscriber.channel)
        if subscribers is None:
            return
        subscribers.discard(subscriber)
        if subscribers:
            return
        del self._subscribers[subscriber.channel]
        for key in [k for k in self._throttles if k[0] == subscriber.channel]:
            throttle = self._throttles.pop(key)
            if throttle.timer is not None:
                throttle.timer.cancel()
        if self._released is not None:
            self._released(subscriber.channel)

    def close(self) -> None:
        for throttle in self._throttles.values():
            if throttle.timer is not None:
                throttle.timer.cancel()
        self._throttles.clear()
