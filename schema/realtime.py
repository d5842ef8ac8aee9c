"""The contract's subscriptions: what a live page and a seller's dashboard follow.

Each field follows one stream (subscriptions/resolvers.py: listen, check the
caller, finish with the final state when the stream ends) and turns its steps
into the contract's types. Rows that are the same for every subscriber of an event
are read once per process (`event.once`); figures arrive already coalesced by the hub.
"""
from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from schema.commerce import StreamOrder, StreamStats, stream_order_by_id, stream_stats
from schema.engagement import Comment, ReactionCounts, ViewerCount, comment_by_id
from schema.stream import LiveStream
from subscriptions.resolvers import follow_stream, shared_stream_row

COMMENTS = frozenset({"comment_added"})
VIEWERS = frozenset({"viewers_changed"})
REACTIONS = frozenset({"reactions_changed"})
UPDATES = frozenset({"stream_updated"})
ORDERS = frozenset({"order_placed"})
STATS = frozenset({"stats_changed"})


@strawberry.type
class RealtimeSubscription:
    @strawberry.subscription
    async def comment_added(self, info: Info, stream_id: strawberry.ID) -> AsyncGenerator[Comment, None]:
        async for step in follow_stream(info, stream_id, COMMENTS):
            if step.kind == "event":
                comment_id = step.event["comment_id"]
                comment = await step.event.once("comment", lambda: comment_by_id(info, comment_id))
                if comment is not None:  # deleted before we read it: nothing to show
                    yield comment

    @strawberry.subscription(description="The count now, at once, then each change.")
    async def viewer_count(self, info: Info, stream_id: strawberry.ID) -> AsyncGenerator[ViewerCount, None]:
        async for step in follow_stream(info, stream_id, VIEWERS):
            if step.kind == "event":
                yield ViewerCount.from_model(step.event["stream_id"], step.event["count"])
            elif step.stream is not None:
                yield ViewerCount.from_model(step.stream.id, step.stream.viewer_count)

    @strawberry.subscription
    async def reactions_changed(
        self, info: Info, stream_id: strawberry.ID
    ) -> AsyncGenerator[ReactionCounts, None]:
        async for step in follow_stream(info, stream_id, REACTIONS):
            if step.kind == "event":
                event = step.event
                yield ReactionCounts(
                    stream_id=strawberry.ID(str(event["stream_id"])), likes=event["likes"], dislikes=event["dislikes"]
                )
            elif step.stream is not None:
                yield ReactionCounts.from_model(step.stream)

    @strawberry.subscription(description="Status and featured-product changes.")
    async def stream_updated(self, info: Info, stream_id: strawberry.ID) -> AsyncGenerator[LiveStream, None]:
        async for step in follow_stream(info, stream_id, UPDATES):
            if step.kind == "event":
                row = await shared_stream_row(step.event)
                if row is not None:
                    yield LiveStream(model=row)
            elif step.kind == "ended" and step.stream is not None:
                yield LiveStream(model=step.stream)

    @strawberry.subscription(description="Owner only.")
    async def order_placed(self, info: Info, stream_id: strawberry.ID) -> AsyncGenerator[StreamOrder, None]:
        async for step in follow_stream(info, stream_id, ORDERS, owner_only=True):
            if step.kind == "event":
                order_id = step.event["stream_order_id"]
                order = await step.event.once("order", lambda: stream_order_by_id(info, order_id))
                if order is not None:
                    yield order

    @strawberry.subscription(
        description="Owner only: the figures now, at once, then on each change, at most once a second."
    )
    async def stream_stats(self, info: Info, stream_id: strawberry.ID) -> AsyncGenerator[StreamStats, None]:
        async for step in follow_stream(info, stream_id, STATS, owner_only=True):
            if step.kind == "event":
                key = step.event["stream_id"]
                yield await step.event.once("stats", lambda: stream_stats(info, key))
            elif step.stream is not None:
                yield await stream_stats(info, step.stream.id)
