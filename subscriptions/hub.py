"""The per-process hub: one broker subscription per channel, fanned out to local subscribers.

Every broker backend delivers into a Hub. The hub holds, per channel, the set of
local subscribers (one per GraphQL subscription in this process) and hands each
event to all of them as the SAME object, so work done for one subscriber (a row
loaded, a result computed and serialized) can be shared through `SharedEvent.once`.
A subscriber hears only the event types it asked for. Subscribers on the shared path
(subscriptions/shared.py) are not woken at all for their events: the hub groups them
by what they would compute, computes it once per group and sends each the same bytes.

Figures that change faster than anyone can read them are coalesced here, once per
process, before fan-out: viewer counts and reactions at most twice a second per
stream, the seller's stats at most once a second. The newest value always wins.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from livecart.subscriptions import tracing
from livecart.models.events import KINDS, STATS_SOURCES, Event, stats_changed

if TYPE_CHECKING:
    from livecart.subscriptions.shared import SharedDelivery

log = logging.getLogger("livecart.hub")

# event type -> (throttle key, seconds between deliveries): declared with each event (events.kind).
COALESCED: dict[str, tuple[str, float]] = {
    kind.name: (kind.name, kind.coalesce) for kind in KINDS.values() if kind.coalesce is not None
}

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
    network (the WebSocket send queue absorbs that), so dropping is a last resort.

    `wants` names the event types it hears (None: all). Once on the shared path
    (`Hub.share`), the events of its group's kinds skip the inbox (unless the group hands
    one back to be done by the subscriber's own chain)."""

    __slots__ = ("channel", "wants", "queue", "dropped", "_waiter", "group", "starts_after", "started")

    def __init__(self, channel: str, wants: frozenset[str] | None = None) -> None:
        self.channel = channel
        self.wants = wants
        # The channel's log number its subscription started from: a logged event at or before it
        # was in its initial state or replay, not news (set by whoever reads the log's head).
        self.starts_after = 0
        self.started = False  # whether starts_after is known yet (Hub.start_from)
        self.queue: deque[SharedEvent] | tuple = ()  # a deque from the first event it keeps
        self.dropped = 0
        self._waiter: asyncio.Future | None = None
        self.group: _Group | None = None

    def put(self, event: SharedEvent) -> None:
        group = self.group
        if group is not None and getattr(group.members.get(self), "detached", False):
            group.put(event)  # no chain reads the inbox of a detached subscriber: its group does
            return
        queue = self.queue
        if not queue and type(queue) is tuple:
            queue = self.queue = deque()
        if len(queue) >= LOCAL_QUEUE_SIZE:
            queue.popleft()
            self.dropped += 1
        queue.append(event)
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


class _Group:
    """Subscribers that would compute the same result for each event (one `group_key`):
    one worker computes it once per event, in order, and sends the bytes to each member."""

    __slots__ = (
        "hub", "key", "kinds", "members", "joined", "received", "newest_join", "newest_start", "events", "dropped",
        "worker", "_wakeup",
    )

    def __init__(self, hub: "Hub", key: Any, kinds: frozenset[str]) -> None:
        self.hub = hub
        self.key = key
        self.kinds = kinds
        self.members: dict[LocalSubscriber, SharedDelivery] = {}
        # member -> how many events the group had received when it joined: the ones before reached
        # it through its own inbox (it was still hearing them on its own), so the group skips them.
        self.joined: dict[LocalSubscriber, int] = {}
        self.received = 0
        # The latest join and the newest start among members (never lowered): an event after both,
        # the usual case, goes to every member without looking at each one's (see _send).
        self.newest_join = 0
        self.newest_start = 0
        self.events: deque[tuple[int, SharedEvent]] = deque()  # (number within the group, event)
        self.dropped = 0
        self.worker: asyncio.Task | None = None
        self._wakeup = asyncio.Event()

    def join(self, subscriber: LocalSubscriber, delivery: SharedDelivery) -> None:
        self.members[subscriber] = delivery
        self.joined[subscriber] = self.newest_join = self.received
        self.newest_start = max(self.newest_start, subscriber.starts_after)

    def leave(self, subscriber: LocalSubscriber) -> None:
        self.members.pop(subscriber, None)
        self.joined.pop(subscriber, None)

    def put(self, event: SharedEvent) -> None:
        if self.events and self.events[-1][1] is event:
            return  # several detached members hand over the same event (see LocalSubscriber.put)
        if len(self.events) >= LOCAL_QUEUE_SIZE:
            self.events.popleft()
            self.dropped += 1
        self.received += 1
        self.events.append((self.received, event))
        if self.worker is None:
            # In a member's task context: Tortoise keeps its connections in a ContextVar.
            delivery = next(iter(self.members.values()))
            self.worker = asyncio.get_running_loop().create_task(
                self._work(), context=delivery.task_context.copy()
            )
        self._wakeup.set()

    async def _work(self) -> None:
        from livecart.subscriptions.shared import Failure

        while True:
            while self.events and self.members:
                number, event = self.events.popleft()
                if event.get("type") not in self.kinds:
                    await self._ending(event, number, Failure)
                    continue
                delivery = next(iter(self.members.values()))
                with tracing.span(
                    f"deliver {event.get('type')}", kind="CONSUMER", links=tracing.links_of(event), root=True,
                    messaging__destination__name=next(iter(self.members)).channel, livecart__subscribers=len(self.members),
                ):
                    try:
                        payload = await delivery.payload(event)
                    except Exception as exc:  # noqa: BLE001 - each member's own chain reports it, masked, to its client
                        log.debug("shared result failed; the members take their own path", exc_info=True)
                        payload = Failure.of(exc)
                    self._send(payload, event, number)
            self._wakeup.clear()
            await self._wakeup.wait()

    def _send(self, payload: Any, event: SharedEvent, number: int) -> None:
        """One event's result to every member that joined before the group received it: the same
        bytes, or back to each member's own chain."""
        from livecart.subscriptions.shared import Failure

        seq = event.get("seq", 0)
        # Whether any member may have to skip it: one comparison per event, not per member, when none can.
        check = number <= self.newest_join or (seq and seq <= self.newest_start)
        for member, delivery in list(self.members.items()):
            if check and self._not_for(member, number, seq):
                continue
            if delivery.detached:
                if isinstance(payload, Failure):
                    delivery.send_failure(payload)
                    if payload.ends:
                        self.hub.remove(member)
                elif payload is not None:
                    delivery.send(payload)
            elif payload is None or isinstance(payload, Failure):
                member.put(event)
            else:
                delivery.send(payload)

    def _not_for(self, member: LocalSubscriber, number: int, seq: int) -> bool:
        """The member heard event `number` on its own before it joined (and is hearing it now), or
        the event (log number `seq`) is older than its subscription, as its own chain would judge."""
        return self.joined.get(member, 0) >= number or bool(seq and seq <= member.starts_after)

    async def _ending(self, event: SharedEvent, number: int, failure_of: Any) -> None:
        """An event the detached members hear on their own (the stream's updates): completes them
        when the stream has ended, as their chains would have."""
        seq = event.get("seq", 0)
        detached = [(m, d) for m, d in self.members.items() if d.detached and not self._not_for(m, number, seq)]
        if not detached:
            return
        try:
            ended = await detached[0][1].ended(event)
        except Exception as exc:  # noqa: BLE001 - as the chain: the error, masked, then complete
            log.debug("reading the stream for detached subscribers failed", exc_info=True)
            failure = failure_of(exc)
            for member, delivery in detached:
                delivery.send_failure(failure)
                self.hub.remove(member)
            return
        if ended:
            for member, delivery in detached:
                delivery.complete()
                self.hub.remove(member)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()


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
        # channel -> event type -> the subscribers that hear it on their own (None: every type)
        self._by_kind: dict[str, dict[str | None, set[LocalSubscriber]]] = {}
        # channel -> the groups of subscribers on the shared path, by group key
        self._groups: dict[str, dict[Any, _Group]] = {}
        self._throttles: dict[tuple[str, str], _Throttle] = {}
        self._ready = ready
        self._released = released
        self.delivered = 0
        # Off (SUBSCRIPTION_SHARING=off) only for the bench's baseline: see _fan_out.
        self.share_events = True
        # Logged events (with a "seq", issue 15) pass it first: once each, in commit order.
        self.sequencer: Any = None

    def channels(self) -> list[str]:
        return list(self._subscribers)

    def subscriber_count(self, channel: str | None = None) -> int:
        if channel is not None:
            return len(self._subscribers.get(channel, ()))
        return sum(len(s) for s in self._subscribers.values())

    def started_count(self, channel: str) -> int:
        """The subscribers of `channel` that know where they start (Hub.start_from): what is
        committed from now on is news to each of them. A subscriber counted by subscriber_count
        but not yet here may still take a change committed meanwhile for part of its start."""
        return sum(1 for s in self._subscribers.get(channel, ()) if s.started)

    # ------------------------------------------------------------ delivery

    def deliver(self, channel: str, event: Event) -> None:
        """Hand an event to this process's subscribers of `channel` (never blocks)."""
        if channel not in self._subscribers:
            return
        if self.sequencer is not None and "seq" in event:
            self.sequencer.accept(channel, event)  # calls deliver_ordered, once per number, in order
            return
        self.deliver_ordered(channel, event)

    def deliver_ordered(self, channel: str, event: Event) -> None:
        """`deliver` past the sequencer (subscriptions/relay.py)."""
        if channel not in self._subscribers:
            return
        kind = event.get("type")
        if kind in COALESCED:
            self._throttled(channel, event)
        else:
            self._fan_out(channel, event)
        if kind in STATS_SOURCES and self._heard(channel, "stats_changed"):
            derived = stats_changed(event.get("stream_id"))
            if "cursor" in event:
                derived["cursor"] = event["cursor"]  # the figures as of this event (issue 15)
            self._throttled(channel, derived)

    def _heard(self, channel: str, kind: str) -> bool:
        by_kind = self._by_kind.get(channel, {})
        groups = self._groups.get(channel, {}).values()
        return bool(by_kind.get(kind) or by_kind.get(None) or any(kind in group.kinds for group in groups))

    def _fan_out(self, channel: str, event: Event) -> None:
        kind = event.get("type")
        shared = SharedEvent(event)
        count = 0
        by_kind = self._by_kind.get(channel)
        if by_kind:
            for listeners in (by_kind.get(kind), by_kind.get(None)):
                for subscriber in listeners or ():
                    # With sharing off each subscriber gets its own copy, so nothing computed for one
                    # serves another: strawberry's default per-subscriber path, the baseline bench/ measures.
                    subscriber.put(shared if self.share_events else SharedEvent(event))
                    count += 1
        for group in self._groups.get(channel, {}).values():
            if kind in group.kinds:
                group.put(shared)
                count += len(group.members)
        self.delivered += count

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

    async def add(self, channel: str, wants: frozenset[str] | None = None) -> LocalSubscriber:
        """A new local subscriber of `channel`, hearing the event types in `wants` (None: all)."""
        subscriber = LocalSubscriber(channel, wants)
        self._subscribers.setdefault(channel, set()).add(subscriber)
        by_kind = self._by_kind.setdefault(channel, {})
        for kind in wants if wants is not None else (None,):
            by_kind.setdefault(kind, set()).add(subscriber)
        if self._ready is not None:
            try:
                await self._ready(channel)
            except BaseException:
                self.remove(subscriber)
                raise
        return subscriber

    def start_from(self, subscriber: LocalSubscriber, last_seq: int) -> None:
        """`subscriber` starts after the channel's log number `last_seq` (the log's head, read after
        listening): a logged event at or before it is in its initial state or replay, not news."""
        subscriber.starts_after = last_seq
        subscriber.started = True
        if self.sequencer is not None:
            self.sequencer.baseline(subscriber.channel, last_seq)

    def share(self, subscriber: LocalSubscriber, delivery: SharedDelivery, kinds: frozenset[str]) -> None:
        """From now on the events of `kinds` reach `subscriber` through its group (see _Group)."""
        if subscriber.group is not None or not kinds or subscriber.channel not in self._subscribers:
            return
        self._stop_hearing(subscriber, kinds)
        groups = self._groups.setdefault(subscriber.channel, {})
        group = groups.get(delivery.group_key)
        if group is None:
            group = groups[delivery.group_key] = _Group(self, delivery.group_key, kinds)
        group.join(subscriber, delivery)
        subscriber.group = group

    def _stop_hearing(self, subscriber: LocalSubscriber, kinds: Any) -> None:
        by_kind = self._by_kind.get(subscriber.channel, {})
        for kind in kinds:
            listeners = by_kind.get(kind)
            if listeners is not None:
                listeners.discard(subscriber)
                if not listeners:
                    del by_kind[kind]

    def _leave_group(self, subscriber: LocalSubscriber) -> None:
        group, subscriber.group = subscriber.group, None
        if group is None:
            return
        group.leave(subscriber)
        if not group.members:
            group.stop()
            groups = self._groups.get(subscriber.channel, {})
            if groups.get(group.key) is group:
                del groups[group.key]
                if not groups:
                    del self._groups[subscriber.channel]

    def remove(self, subscriber: LocalSubscriber) -> None:
        self._leave_group(subscriber)
        subscribers = self._subscribers.get(subscriber.channel)
        if subscribers is None:
            return
        subscribers.discard(subscriber)
        self._stop_hearing(subscriber, subscriber.wants if subscriber.wants is not None else (None,))
        if subscribers:
            return
        del self._subscribers[subscriber.channel]
        self._by_kind.pop(subscriber.channel, None)
        for key in [k for k in self._throttles if k[0] == subscriber.channel]:
            throttle = self._throttles.pop(key)
            if throttle.timer is not None:
                throttle.timer.cancel()
        if self.sequencer is not None:
            self.sequencer.forget(subscriber.channel)  # a next first subscriber says where to start
        if self._released is not None:
            self._released(subscriber.channel)

    def close(self) -> None:
        for groups in self._groups.values():
            for group in groups.values():
                group.stop()
        self._groups.clear()
        for throttle in self._throttles.values():
            if throttle.timer is not None:
                throttle.timer.cancel()
        self._throttles.clear()
