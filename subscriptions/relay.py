"""The relay (issue 15): this process's subscribers get each logged event once, in commit order,
whatever the broker lost, doubled or reordered.

Events written to the log (models/outbox.py) carry their stream's `seq`. The hub hands each one
here first (Hub.sequencer); per channel the relay keeps the last number it delivered and:
- drops a number it already delivered (an echo, a second publish, a replay through Redis);
- holds one that came early (another process's commit published faster) and, if the missing ones
  have not come within GRACE_SECONDS, reads them from the log: a committed number implies that
  every smaller one committed before it;
- polls the log's counters of its channels every POLL_SECONDS: an event that was committed but
  never published (the process died in between, or Redis lost it while down) is read from the log
  and delivered, late but once. That is what "a crash delays, never loses" rests on.

A channel's first subscriber sets where it starts (`baseline`, the counter it read after
listening): what came before is its initial state or its replay, not news. An event that comes
before any subscriber said so starts the channel itself. When its last subscriber leaves, the
channel is forgotten at once (`forget`): its next first subscriber starts it again.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import TYPE_CHECKING

from livecart.models import outbox
from livecart.models.events import Event

if TYPE_CHECKING:
    from livecart.subscriptions.hub import Hub

log = logging.getLogger("livecart.relay")

GRACE_SECONDS = 0.2
POLL_SECONDS = 1.0
STREAM_PREFIX = "stream:"


class _Channel:
    __slots__ = ("stream_id", "last", "pending", "filling", "seen_head")

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        self.last: int | None = None  # None: nothing started the channel yet
        self.pending: dict[int, Event] = {}
        self.filling = False
        self.seen_head = 0  # the counter at the last poll


class Relay:
    def __init__(self, hub: Hub, *, poll_seconds: float = POLL_SECONDS, grace_seconds: float = GRACE_SECONDS) -> None:
        self.hub = hub
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        self._channels: dict[str, _Channel] = {}
        self._context: contextvars.Context | None = None
        self._task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self.duplicates = 0
        self.filled = 0
        hub.sequencer = self

    def start(self) -> None:
        # Tortoise keeps its connections in a ContextVar: reads from the log run in start-up's context.
        self._context = contextvars.copy_context()
        self._task = asyncio.get_running_loop().create_task(self._poll_forever(), name="livecart-relay")

    async def close(self) -> None:
        for task in [self._task, *self._tasks]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in [self._task, *self._tasks] if t is not None), return_exceptions=True)
        self.hub.sequencer = None

    # ------------------------------------------------------------ from the hub

    def accept(self, channel: str, event: Event) -> None:
        state = self._state(channel)
        seq = event["seq"]
        if state.last is None:
            # Nobody here said where to start yet: start at this event. A subscriber that is about
            # to read the log's counter reads one at least as new, and skips what it covers.
            state.last = seq - 1
        if seq <= state.last:
            self.duplicates += 1
            return
        if seq == state.last + 1 and not state.pending:
            state.last = seq
            self.hub.deliver_ordered(channel, event)
            return
        state.pending[seq] = event
        self._drain(channel, state)

    def baseline(self, channel: str, last_seq: int) -> None:
        """Where this process's delivery of `channel` starts, if it has not started yet (or starts
        again: the channel's only subscriber is new)."""
        state = self._state(channel)
        if state.last is None or (self.hub.subscriber_count(channel) <= 1 and not state.filling):
            state.last = last_seq
            state.seen_head = max(state.seen_head, last_seq)
            self._drain(channel, state)

    def forget(self, channel: str) -> None:
        """The channel's last local subscriber left: what is published meanwhile reaches nobody here
        (the hub drops it), so where delivery stood says nothing about the next subscriber's start."""
        self._channels.pop(channel, None)

    def _state(self, channel: str) -> _Channel:
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = _Channel(int(channel[len(STREAM_PREFIX):]))
        return state

    def _drain(self, channel: str, state: _Channel) -> None:
        assert state.last is not None
        pending = state.pending
        for seq in [s for s in pending if s <= state.last]:
            del pending[seq]
            self.duplicates += 1
        while state.last + 1 in pending:
            state.last += 1
            self.hub.deliver_ordered(channel, pending.pop(state.last))
        if pending and not state.filling:
            self._fill_later(channel, state, max(pending), self.grace_seconds)

    # ------------------------------------------------------------ from the log

    def _fill_later(self, channel: str, state: _Channel, upto: int, delay: float) -> None:
        state.filling = True
        task = asyncio.get_running_loop().create_task(self._fill(channel, state, upto, delay), context=self._context.copy() if self._context else None)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill(self, channel: str, state: _Channel, upto: int, delay: float) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            while state.last is not None and state.last < upto and self._channels.get(channel) is state:
                rows = await outbox.read(state.stream_id, state.last, upto)
                if not rows:  # pruned meanwhile: what is kept goes on from the oldest row
                    log.warning("events of %s after %d are no longer in the log", channel, state.last)
                    state.last = upto
                    break
                for event in rows:
                    if event["seq"] > state.last:
                        state.pending.pop(event["seq"], None)
                        state.last = event["seq"]
                        self.filled += 1
                        self.hub.deliver_ordered(channel, event)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the database may be away: the next poll tries again
            log.warning("could not read %s's events from the log", channel, exc_info=True)
        finally:
            state.filling = False
        if state.last is not None and state.pending:
            self._drain(channel, state)

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the database may be away: the next poll tries again
                log.warning("the relay's poll of the log failed", exc_info=True)

    async def poll(self) -> None:
        """Deliver from the log what was committed at the previous poll and has not come."""
        live = set(self.hub.channels())
        for channel in [c for c in self._channels if c not in live]:
            del self._channels[channel]  # nobody here listens: a new first subscriber sets it again
        started = {c: s for c, s in self._channels.items() if s.last is not None}
        if not started:
            return
        for channel, state in started.items():
            if state.seen_head > state.last and not state.filling:
                self._fill_later(channel, state, state.seen_head, 0)
        heads = await outbox.heads([s.stream_id for s in started.values()])
        for state in started.values():
            state.seen_head = max(state.seen_head, heads.get(state.stream_id, 0))
