"""The Redis broker against a real Redis: what a process publishes reaches Redis, even at close."""
from __future__ import annotations

import asyncio

import orjson
import pytest
import redis.asyncio as redis

from livecart.models.events import comment_added, stream_channel
from livecart.subscriptions.redis_broker import PUBLISH_BATCH, RedisBroker
from tests.conftest import SERVICES_MISSING, TEST_REDIS_URL

pytestmark = pytest.mark.skipif(not TEST_REDIS_URL, reason=SERVICES_MISSING)


async def test_close_sends_every_queued_event_exactly_once():
    """close() flushes the outbox while the publisher task may be sending it too: no event twice, none lost."""
    broker = RedisBroker(TEST_REDIS_URL)
    channel = stream_channel(1)
    listener = redis.from_url(TEST_REDIS_URL)
    pubsub = listener.pubsub()
    await pubsub.subscribe(broker._prefix + channel)
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    await broker.start()
    total = PUBLISH_BATCH * 3 + 7
    for comment_id in range(total):
        await broker.publish(channel, comment_added(1, comment_id))
        if comment_id == PUBLISH_BATCH:
            await asyncio.sleep(0)  # let the publisher task start a batch, so close() races it
    await broker.close()

    received = []
    while (message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)) is not None:
        received.append(orjson.loads(message["data"])["e"]["comment_id"])
    await pubsub.aclose()
    await listener.aclose()
    assert sorted(received) == list(range(total))
