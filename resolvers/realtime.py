"""What every subscription resolver does: find the stream, check who may follow it,
listen on its channel, and finish with the final state when the stream ends.

`follow_stream` yields `Step`s; schema/realtime.py turns them into the contract's
types. It holds no database connection while it waits: rows are read per event,
and what is the same for every subscriber (the stream row after an update, the new
comment, the new order, the seller's figures) is read once per process through
`SharedEvent.once`. Each value yielded opens a fresh DataLoader scope, because the
WebSocket's Context outlives the events.
"""
from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from strawberry.types import Info

from livecart.models import moderation, outbox, policy
from livecart.models.errors import DomainError, ErrorCode, not_found
from livecart.models.fields import parse_id
from livecart.models.stream import LiveStream, StreamStatus, live_streams_query
from livecart.resolvers.loaders import new_loader_scope
from livecart.models import events
from livecart.models.events import DIRECTORY_CHANNEL, stream_channel
from livecart.subscriptions.hub import SharedEvent
from livecart.subscriptions.shared import SharedDelivery

# Every subscription hears these: the stream may end under it.
ENDINGS = events.kinds_of(events.stream_updated)


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """`initial`: the state when the subscription starts; `event`: one event of the kinds
    asked for; `ended`: the stream's final row, the last step."""

    kind: str
    stream: LiveStream | None = None
    event: SharedEvent | None = None
    cursor: str | None = None  # where the stream's log stood (initial, ended) or this event's


async def stream_row(stream_id: int) -> LiveStream | None:
    return await LiveStream.get_or_none(id=stream_id)


async def shared_stream_row(event: SharedEvent) -> LiveStream | None:
    """The stream as it is after this event, read once for all subscribers in this process."""
    stream_id = event["stream_id"]
    return await event.once("stream", lambda: stream_row(stream_id))



async def stream_has_ended(event: SharedEvent) -> bool:
    """For a detached subscriber (see follow_stream): has this update ended the stream?"""
    stream = await shared_stream_row(event)
    return stream is None or stream.status == StreamStatus.ENDED


async def require_owner(info: Info, stream: LiveStream) -> None:
    user = await info.context.require_user(f"/live/{stream.id}")
    await policy.require_stream_seller(stream, user.id, "Only the stream's owner may follow its orders and figures.")


async def require_chat_moderator(info: Info, stream: LiveStream) -> None:
    user = await info.context.require_user(f"/live/{stream.id}")
    await moderation.require_moderator(stream.vendor_id, user.id)


async def follow_stream(
    info: Info,
    stream_id: str,
    kinds: frozenset[str],
    *,
    owner_only: bool = False,
    moderators_only: bool = False,
    shared: SharedDelivery | None = None,
    detachable: bool = False,
    after: str | None = None,
    replay: str = "every",
) -> AsyncIterator[Step]:
    """The steps of one subscription to one stream (see Step). With `shared`, the events of
    `kinds` go by the shared path once the first step has been taken (subscriptions/shared.py).
    `detachable`: the caller yields nothing for the initial and ended steps, so once on the shared
    path the steps end here and the subscriber's group carries on without this chain
    (SharedDelivery.detach), when the handler allows it.

    `after` (a cursor, issue 15): first what the stream's log holds after it (`replay`: "every"
    event of `kinds`, only the "newest" (a state resumes to its current value) or "none" (the
    initial step is the current value already)), then live, no event twice at the seam. Every step
    carries its cursor."""
    key = parse_id("streamId", stream_id)
    hub = info.context.broker.hub
    channel = stream_channel(key)
    # Listen, then read the log's head, then the initial state: a change committed after the head
    # is news (heard), one before it is in the state read after it; none falls between the two.
    inbox = await hub.add(channel, wants=kinds | ENDINGS)
    detached = False
    try:
        log_head = await outbox.head(key)
        hub.start_from(inbox, log_head.last_seq)  # its group and the relay judge so too
        stream = await stream_row(key)
        if stream is None:
            raise not_found("stream", stream_id)
        if owner_only:
            await require_owner(info, stream)
        if moderators_only:
            await require_chat_moderator(info, stream)
        replay_after = outbox.check_cursor(after, log_head) if after is not None else None
        last_seen, cursor = log_head.last_seq, log_head.cursor()
        new_loader_scope()
        if stream.status == StreamStatus.ENDED and replay_after is None:
            yield Step("ended", stream=stream, cursor=cursor)
            return
        yield Step("initial", stream=stream, cursor=cursor)
        if replay_after is not None and replay != "none":
            async for event in _replay(key, replay_after, log_head.last_seq, kinds, replay == "every"):
                new_loader_scope()
                yield Step("event", event=event, cursor=event["cursor"])
            if stream.status == StreamStatus.ENDED:
                yield Step("ended", stream=stream, cursor=cursor)
                return
            shared = None  # what waits in the inbox must not be overtaken by a group's results
        if shared is not None:
            # Only now: a shared result must not overtake the first one, sent through this chain.
            hub.share(inbox, shared, kinds - ENDINGS)
            # Nothing may wait in the inbox: the chain that would read it is about to end.
            if detachable and inbox.group is not None and not inbox.queue:
                detached = shared.detach(lambda: hub.remove(inbox), stream_has_ended)
                if detached:
                    return
        while True:
            event = await inbox.get()
            if inbox.dropped:
                raise lagged(cursor)
            seq = event.get("seq")
            if seq is not None:
                if seq <= last_seen:
                    continue  # in the initial state or the replay already
                last_seen, cursor = seq, event["cursor"]
            kind = event["type"]
            if kind == "stream_updated":
                stream = await shared_stream_row(event)
                if stream is None or stream.status == StreamStatus.ENDED:
                    new_loader_scope()
                    yield Step("ended", stream=stream, event=event, cursor=cursor)
                    return
            if kind in kinds:
                new_loader_scope()
                yield Step("event", event=event, cursor=event.get("cursor", cursor))
    finally:
        if not detached:
            hub.remove(inbox)


async def _replay(
    stream_id: int, after: int, upto: int, kinds: frozenset[str], every: bool
) -> AsyncIterator[SharedEvent]:
    """The logged events of `kinds` after `after` up to `upto`, oldest first (`every`), or only the newest."""
    newest = None
    while after < upto:
        rows = await outbox.read(stream_id, after, upto)
        if not rows:
            break
        if rows[0]["seq"] != after + 1:  # pruned while we read: never a silent gap
            raise outbox.expired(await outbox.head(stream_id))
        for row in rows:
            after = row["seq"]
            if row["type"] in kinds:
                if every:
                    yield SharedEvent(row)
                else:
                    newest = row
    if newest is not None:
        yield SharedEvent(newest)


def lagged(cursor: str) -> DomainError:
    """The subscriber's inbox overflowed: it is told where to resume (from the log) and let go."""
    return DomainError(
        ErrorCode.LAGGED, "This subscriber fell too far behind and was disconnected: follow again with `after`.",
        cursor=cursor,
    )


DIRECTORY = events.kinds_of(events.live_streams_changed)


async def follow_directory(info: Info, first: int) -> AsyncIterator[list[LiveStream]]:
    """The first `first` streams live now, at once, then after each change (a stream went live or ended)."""
    hub = info.context.broker.hub
    # Listen before the first read, so a stream going live between the two is not missed.
    inbox = await hub.add(DIRECTORY_CHANNEL, wants=DIRECTORY)
    try:
        while True:
            rows = await live_streams_query().limit(first)
            new_loader_scope()  # the socket's context outlives each list: fresh DataLoaders
            yield rows
            await inbox.get()
            while inbox.queue:  # a burst of changes: one fresh list tells them all
                await inbox.get()
    finally:
        hub.remove(inbox)
