"""The contract's subscriptions: what a live page and a seller's dashboard follow.

Each field follows one stream (resolvers/realtime.py: listen, check the
caller, finish with the final state when the stream ends) and turns its steps
into the contract's types. Rows that are the same for every subscriber of an event
are read once per process (`event.once`); figures arrive already coalesced by the hub.
Over our WebSocket handlers, events after the first result take the shared path
(subscriptions/shared.py): one execution and one encoding per group of alike subscribers.
"""
from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from livecart.models.figures import viewer_count
from livecart.models.fields import MAX_PAGE, check_first
from livecart.models.clock import utcnow
from livecart.schema.commerce import StreamOrder, StreamStats, stream_order_by_id, stream_stats
from livecart.schema.engagement import Comment, ReactionCounts, ViewerCount, comment_by_id
from livecart.schema.moderation import ChatState, CommentDeletion, chat_state, held_comment_by_id
from livecart.schema.cost import list_size
from livecart.schema.document_cache import parsed, selects_caller_fields
from livecart.schema.extensions import ErrorCodes
from livecart.schema.internals import graphql_schema
from livecart.resolvers.loaders import new_loader_scope
from livecart.schema.facts import fed_by
from livecart.schema.stream import STREAMS_PAGE, LiveStream, streams_out
from livecart.models import events
from livecart.subscriptions.hub import SharedEvent
from livecart.resolvers.realtime import Step, follow_directory, follow_stream, shared_stream_row
from livecart.subscriptions.shared import Operation, SharedExecution, shared_delivery


class _ContextOnly:
    """What the per-event readers of a detachable field use of `info`: its context. Their group
    keeps them as long as the subscription runs (subscriptions/shared.py, detach); the whole info
    would keep the operation's parsed document and executor alive with them, per subscriber."""

    __slots__ = ("context",)

    def __init__(self, context: Any) -> None:
        self.context = context


async def _viewer_count_now(stream_id: int) -> ViewerCount:
    # Read, not taken from the event: counts from other processes come through Redis later
    # than our own, so the newest event to arrive may carry an older count than one shown.
    return ViewerCount.from_model(stream_id, await viewer_count(stream_id, utcnow()))


# The events that feed each field: declared on the field (`fed_by`, schema/facts.py) and followed.
COMMENTS = events.kinds_of(events.comment_added)
VIEWERS = events.kinds_of(events.viewers_changed)
REACTIONS = events.kinds_of(events.reactions_changed)
UPDATES = events.kinds_of(events.stream_updated)
ORDERS = events.kinds_of(events.order_placed)

STATS = events.kinds_of(events.stats_changed)
DELETIONS = events.kinds_of(events.comment_deleted)
CHAT = events.kinds_of(events.chat_updated)
HELD = events.kinds_of(events.comment_held)
DIRECTORY = events.kinds_of(events.live_streams_changed)


def shared_execution(schema: Any, query: str) -> SharedExecution | None:
    """What the engine needs to execute a subscription's document once per event for a group of
    alike subscribers (subscriptions/shared.py); None when the document cannot be read."""
    try:
        document = parsed(query)
    except GraphQLError:
        return None
    return SharedExecution(
        graphql_schema(schema), document, selects_caller_fields(query), ErrorCodes.format_for, new_loader_scope
    )


def _how(info: Info) -> Callable[[Operation], SharedExecution | None]:
    return lambda operation: shared_execution(info.schema, operation.query)


async def _follow(
    info: Info,
    stream_id: strawberry.ID,
    kinds: frozenset[str],
    value_of: Callable[[SharedEvent], Awaitable[Any]],
    *,
    owner_only: bool = False,
    moderators_only: bool = False,
    detachable: bool = False,
    after: str | None = None,
    replay: str = "every",
) -> AsyncGenerator[Any, None]:
    """The events of `kinds` as the values `value_of` makes of them (None: nothing to send), each
    with its event's cursor. `detachable`: the field sends nothing for the initial and ended steps
    (see follow_stream). `after`, `replay`: resuming from a cursor (follow_stream)."""
    caller = await info.context.user()

    async def stamped(event: SharedEvent) -> Any:
        return at_cursor(await value_of(event), event.get("cursor"))

    shared = shared_delivery(info.context, info.context.broker.hub, caller.id if caller else None, stamped, _how(info))
    async for step in follow_stream(
        info, stream_id, kinds, owner_only=owner_only, moderators_only=moderators_only, shared=shared,
        detachable=detachable, after=after, replay=replay,
    ):
        if step.kind == "event":
            value = await stamped(step.event)
            if value is not None:
                yield value
        else:
            yield step


def at_cursor(value: Any, cursor: str | None) -> Any:
    """`value` (a payload type) with the cursor of the event it tells of."""
    if value is not None and cursor is not None:
        value.event_cursor = cursor
    return value


AFTER = "A cursor (a payload's eventCursor): first what happened after it, then live, nothing twice."


async def _follow_rows(
    info: Info,
    stream_id: strawberry.ID,
    kinds: frozenset[str],
    key: str,
    load: Callable[[Any, int], Awaitable[Any]],
    **options: Any,
) -> AsyncGenerator[Any, None]:
    """One row per event (its id under `key`), read once per process for all subscribers by
    `load` (None: gone before it was read, nothing to send); nothing for the initial and ended steps."""
    reader = _ContextOnly(info.context)

    async def row_of(event: SharedEvent) -> Any:
        row_id = event[key]
        return await event.once(load.__name__, lambda: load(reader, row_id))

    async for value in _follow(info, stream_id, kinds, row_of, detachable=True, **options):
        if not isinstance(value, Step):
            yield value


@strawberry.type
class RealtimeSubscription:
    @strawberry.subscription(metadata=fed_by(COMMENTS))
    async def comment_added(self, info: Info, stream_id: strawberry.ID, after: Annotated[str | None, strawberry.argument(description=AFTER)] = None) -> AsyncGenerator[Comment, None]:
        async for comment in _follow_rows(info, stream_id, COMMENTS, "comment_id", comment_by_id, after=after):
            yield comment

    @strawberry.subscription(description="The count now, at once, then each change.", metadata=fed_by(VIEWERS))
    async def viewer_count(self, info: Info, stream_id: strawberry.ID, after: Annotated[str | None, strawberry.argument(description=AFTER)] = None) -> AsyncGenerator[ViewerCount, None]:
        async def count_of(event: SharedEvent) -> ViewerCount:
            return await event.once("viewers", lambda: _viewer_count_now(event["stream_id"]))

        async for value in _follow(info, stream_id, VIEWERS, count_of, after=after, replay="none"):
            if isinstance(value, Step):
                if value.stream is not None:
                    yield at_cursor(await _viewer_count_now(value.stream.id), value.cursor)
            else:
                yield value

    @strawberry.subscription(metadata=fed_by(REACTIONS))
    async def reactions_changed(
        self, info: Info, stream_id: strawberry.ID, after: Annotated[str | None, strawberry.argument(description=AFTER)] = None
    ) -> AsyncGenerator[ReactionCounts, None]:
        async def counts_of(event: SharedEvent) -> ReactionCounts | None:
            row = await shared_stream_row(event)
            return ReactionCounts.from_model(row) if row is not None else None

        async for value in _follow(info, stream_id, REACTIONS, counts_of, after=after, replay="none"):
            if isinstance(value, Step):
                if value.stream is not None:
                    yield at_cursor(ReactionCounts.from_model(value.stream), value.cursor)
            else:
                yield value

    @strawberry.subscription(description="Status and featured-product changes.", metadata=fed_by(UPDATES))
    async def stream_updated(self, info: Info, stream_id: strawberry.ID, after: Annotated[str | None, strawberry.argument(description=AFTER)] = None) -> AsyncGenerator[LiveStream, None]:
        async def stream_of(event: SharedEvent) -> LiveStream | None:
            row = await shared_stream_row(event)
            return LiveStream(model=row) if row is not None else None

        async for value in _follow(info, stream_id, UPDATES, stream_of, after=after, replay="newest"):
            if isinstance(value, Step):
                if value.kind == "ended" and value.stream is not None:
                    yield at_cursor(LiveStream(model=value.stream), value.cursor)
            else:
                yield value

    @strawberry.subscription(description="Owner only.", metadata=fed_by(ORDERS))
    async def order_placed(self, info: Info, stream_id: strawberry.ID, after: Annotated[str | None, strawberry.argument(description=AFTER)] = None) -> AsyncGenerator[StreamOrder, None]:
        async for order in _follow_rows(info, stream_id, ORDERS, "stream_order_id", stream_order_by_id, owner_only=True, after=after):
            yield order

    @strawberry.subscription(
        description="Owner only: the figures now, at once, then on each change, at most once a second.",
        metadata=fed_by(STATS),
    )
    async def stream_stats(self, info: Info, stream_id: strawberry.ID, after: Annotated[str | None, strawberry.argument(description=AFTER)] = None) -> AsyncGenerator[StreamStats, None]:
        async def stats_of(event: SharedEvent) -> StreamStats:
            key = event["stream_id"]
            return await event.once("stats", lambda: stream_stats(info, key))

        async for value in _follow(info, stream_id, STATS, stats_of, owner_only=True, after=after, replay="none"):
            if isinstance(value, Step):
                if value.stream is not None:
                    yield at_cursor(await stream_stats(info, value.stream.id), value.cursor)
            else:
                yield value

    @strawberry.subscription(
        description="Comments leaving the chat (deleted by their author or a moderator, removed with a ban, or "
        "rejected after review), with the comment count after.",
        metadata=fed_by(DELETIONS),
    )
    async def comment_deleted(self, info: Info, stream_id: strawberry.ID, after: Annotated[str | None, strawberry.argument(description=AFTER)] = None) -> AsyncGenerator[CommentDeletion, None]:
        async def deletion_of(event: SharedEvent) -> CommentDeletion | None:
            row = await shared_stream_row(event)
            if row is None:
                return None
            return CommentDeletion(
                stream_id=strawberry.ID(str(row.id)),
                comment_ids=[strawberry.ID(str(i)) for i in event["comment_ids"]],
                comment_count=row.comment_count,
            )

        async for value in _follow(info, stream_id, DELETIONS, deletion_of, detachable=True, after=after):
            if isinstance(value, CommentDeletion):
                yield value

    @strawberry.subscription(
        description="The chat's settings now, at once, then each change (slow mode, review, pin).", metadata=fed_by(CHAT)
    )
    async def chat_updated(self, info: Info, stream_id: strawberry.ID, after: Annotated[str | None, strawberry.argument(description=AFTER)] = None) -> AsyncGenerator[ChatState, None]:
        reader = _ContextOnly(info.context)

        async def state_of(event: SharedEvent) -> ChatState:
            key = event["stream_id"]
            return await event.once("chat", lambda: chat_state(reader, key))

        async for value in _follow(info, stream_id, CHAT, state_of, after=after, replay="none"):
            if isinstance(value, Step):
                if value.stream is not None and value.kind == "initial":
                    yield at_cursor(await chat_state(reader, value.stream.id), value.cursor)
            else:
                yield value

    @strawberry.subscription(description="Owner and moderators: comments that wait for approval.", metadata=fed_by(HELD))
    async def comment_held(self, info: Info, stream_id: strawberry.ID, after: Annotated[str | None, strawberry.argument(description=AFTER)] = None) -> AsyncGenerator[Comment, None]:
        async for comment in _follow_rows(info, stream_id, HELD, "comment_id", held_comment_by_id, moderators_only=True, after=after):
            yield comment

    @strawberry.subscription(
        description=f"The streams LIVE now (as liveStreams: the first `first`, 1 to {MAX_PAGE}), at once, then again "
        "whenever one goes live or ends.",
        metadata=fed_by(DIRECTORY, list_size(MAX_PAGE, "first", STREAMS_PAGE)),
    )
    async def live_streams_changed(self, info: Info, first: int = STREAMS_PAGE) -> AsyncGenerator[list[LiveStream], None]:
        async for rows in follow_directory(info, check_first(first)):
            yield streams_out(rows)
