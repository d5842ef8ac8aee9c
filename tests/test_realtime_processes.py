"""Several `livecart serve` processes sharing PostgreSQL and Redis (Redis failing under them: test_faults.py).

Runs only with TEST_DATABASE_URL and TEST_REDIS_URL (PostgreSQL and Redis are what
make processes share). Every process started here is killed in fixture teardown.
"""
from __future__ import annotations

import asyncio
import contextlib

import pytest

from livecart.client.livecart_client import LivecartClient, LivecartError
from tests.conftest import SERVICES_MISSING, TEST_DATABASE_URL, TEST_REDIS_URL
from tests.processes import Ports, database, seller_with_live_stream, servers, watching  # noqa: F401 - fixtures
from tests.realtime_support import ORDERS, next_of

pytestmark = pytest.mark.skipif(not (TEST_DATABASE_URL and TEST_REDIS_URL), reason=SERVICES_MISSING)

PORTS = Ports(18301, 18399)  # this suite's range; each server takes the next free one
POST = "mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id text } }"


# ---------------------------------------------------------------- tests

async def test_events_cross_processes_through_redis(database, servers):
    first, second = servers.start(database, TEST_REDIS_URL), servers.start(database, TEST_REDIS_URL)
    async with contextlib.AsyncExitStack() as stack:
        seller_there, viewer_here, buyer_there = [
            await stack.enter_async_context(LivecartClient(url)) for url in (second, first, second)
        ]
        stream, product = await seller_with_live_stream(seller_there)
        owner_here = await stack.enter_async_context(LivecartClient(first, seller_there.token))
        orders_connection = await owner_here.connect()
        stack.push_async_callback(orders_connection.close)
        orders = await orders_connection.start(ORDERS, {"s": stream})
        viewer_connection, comments = await watching(viewer_here, stream)
        stack.push_async_callback(viewer_connection.close)

        await buyer_there.register("buyer", "correct horse")
        await buyer_there.execute(POST, {"s": stream, "t": "hello from the other process"})
        # The bar: within a second of the comment's commit on the other process.
        received = await asyncio.wait_for(anext(comments), 1.0)
        assert received["commentAdded"]["text"] == "hello from the other process"

        await buyer_there.execute(
            "mutation($p: ID!, $s: ID) { buyNow(productId: $p, quantity: 2, streamId: $s) { id } }",
            {"p": product, "s": stream},
        )
        order = (await next_of(orders))["orderPlaced"]
        assert order["quantity"] == 2 and order["amount"] == "25.00" and order["buyer"] == {"username": "buyer"}

        # Logging out on the other process ends the owner's connection here (4403): the orders stop.
        await seller_there.execute("mutation { logout }")
        with pytest.raises(LivecartError) as ended:
            await next_of(orders)
        assert ended.value.code == "CLOSED" and orders_connection.close_code == 4403
