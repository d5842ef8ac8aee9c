"""What the real-time tests share: streams, publishing, waiting, a raw WebSocket."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from models import stream as streams
from models.engagement import InteractionType, StreamInteraction
from server.appkeys import BROKER
from server.graphql_view import LivecartGraphQLView
from subscriptions.broker import publish_to_stream
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


async def comment_row(stream_id: int, user_id: int, text: str) -> StreamInteraction:
    return await StreamInteraction.create(
        stream_id=stream_id, user_id=user_id, interaction_type=InteractionType.COMMENT, comment_text=text
    )


async def next_of(results: AsyncIterator[dict], timeout: float = WAIT) -> dict:
    return await asyncio.wait_for(anext(results), timeout)


async def until(predicate, timeout: float = WAIT, interval: float = 0.02) -> Any:
    """Wait until predicate() is truthy; its value, or AssertionError at the timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


async def listening(client: GraphQLClient, stream_id: int, count: int = 1) -> None:
    """Wait until `count` subscribers of the stream are registered in this process's hub."""
    hub = broker_of(client).hub
    await until(lambda: hub.subscriber_count(f"stream:{stream_id}") >= count)
