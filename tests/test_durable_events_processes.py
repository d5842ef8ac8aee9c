"""Durable events across `livecart serve` processes (issue 15): the test's own Redis killed and
started again while a subscriber is away and writers go on, and a process that dies between a
commit and its publish. Runs only with TEST_DATABASE_URL and TEST_REDIS_URL."""
from __future__ import annotations

import asyncio
import contextlib
import itertools

import asyncpg
import orjson
import pytest

from livecart.client.livecart_client import LivecartClient
from tests.conftest import SERVICES_MISSING, TEST_DATABASE_URL, TEST_REDIS_URL
from tests.processes import Ports, database, own_redis, seller_with_live_stream, servers  # noqa: F401 - fixtures
from tests.realtime_support import WAIT

pytestmark = pytest.mark.skipif(not (TEST_DATABASE_URL and TEST_REDIS_URL), reason=SERVICES_MISSING)

PORTS = Ports(18700, 18749)  # this module's range; small pools: the suite's PostgreSQL is shared
COMMENTS = "subscription($s: ID!, $a: String) { commentAdded(streamId: $s, after: $a) { id text eventCursor } }"
ORDERS = "subscription($s: ID!, $a: String) { orderPlaced(streamId: $s, after: $a) { id eventCursor } }"
REACTIONS = "subscription($s: ID!, $a: String) { reactionsChanged(streamId: $s, after: $a) { likes dislikes eventCursor } }"
POST = "mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id } }"
BUY = "mutation($p: ID!, $s: ID) { buyNow(productId: $p, quantity: 1, streamId: $s) { id } }"
REACT = "mutation($s: ID!, $k: ReactionKind!) { react(streamId: $s, kind: $k) { likes } }"


async def logged(stream: str, kind: str) -> list[dict]:
    conn = await asyncpg.connect(TEST_DATABASE_URL)
    try:
        rows = await conn.fetch("SELECT payload FROM event_log WHERE stream_id = $1 AND type = $2 ORDER BY seq", int(stream), kind)
    finally:
        await conn.close()
    return [orjson.loads(row["payload"]) for row in rows]


class Feed:
    """One subscription's results, gathered as they come, on a connection that may be dropped and
    opened again from the last cursor it saw."""

    def __init__(self, client: LivecartClient, document: str, field: str, stream: str, start: str) -> None:
        self.client, self.document, self.field, self.stream = client, document, field, stream
        self.cursor = start
        self.received: list[dict] = []
        self.connection = None
        self.task: asyncio.Task | None = None

    async def open(self) -> None:
        self.connection = await self.client.connect()
        results = await self.connection.start(self.document, {"s": self.stream, "a": self.cursor})
        self.task = asyncio.ensure_future(self._gather(results))

    async def _gather(self, results) -> None:
        with contextlib.suppress(Exception):  # the connection dropped: open() again
            async for data in results:
                self.received.append(data[self.field])
                self.cursor = data[self.field]["eventCursor"]

    async def drop(self) -> None:
        await self.connection.close()
        await asyncio.gather(self.task, return_exceptions=True)


async def start_cursor(client: LivecartClient, stream: str) -> str:
    """The log's cursor of now: the reactions' first payload (the counts now) carries it."""
    async for data in client.subscribe(REACTIONS, {"s": stream}):
        return data["reactionsChanged"]["eventCursor"]
    raise AssertionError("no first payload")


async def until(predicate, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "not reached in time"
        await asyncio.sleep(0.05)


async def test_redis_killed_and_restarted_while_a_subscriber_is_away(database, own_redis, servers):
    urls = [servers.start(database, own_redis.url, RATE_LIMITS="off", DATABASE_POOL_SIZE="4") for _ in range(2)]
    async with contextlib.AsyncExitStack() as stack:
        async def client(process: int, token: str | None = None) -> LivecartClient:
            return await stack.enter_async_context(LivecartClient(urls[process], token))

        seller = await client(1)
        stream, product = await seller_with_live_stream(seller, stock=100_000)
        owner = await client(0, seller.token)  # follows on the process the writers mostly do not use
        start = await start_cursor(owner, stream)
        comments = Feed(owner, COMMENTS, "commentAdded", stream, start)
        orders = Feed(owner, ORDERS, "orderPlaced", stream, start)
        for feed in (comments, orders):
            await feed.open()

        writers = [await client(i % 2) for i in range(4)]
        for i, account in enumerate(writers):
            await account.register(f"writer{i}", "correct horse")
        stopping = asyncio.Event()
        numbers = itertools.count()

        async def write(account: LivecartClient, index: int) -> None:
            while not stopping.is_set():
                n = next(numbers)
                await account.execute(POST, {"s": stream, "t": f"comment {n}"})
                await account.execute(REACT, {"s": stream, "k": "LIKE" if n % 2 else "DISLIKE"})
                if n % 3 == 0:
                    await account.execute(BUY, {"p": product, "s": stream})
                await asyncio.sleep(0.02)

        workers = [asyncio.ensure_future(write(account, i)) for i, account in enumerate(writers)]
        try:
            await until(lambda: len(comments.received) >= 5 and len(orders.received) >= 1, 20)
            own_redis.kill()
            for feed in (comments, orders):
                await feed.drop()  # the subscriber goes away too, while Redis is down
            await asyncio.sleep(1.5)
            for feed in (comments, orders):
                await feed.open()  # back, with `after`, on the same process, Redis still down
            await asyncio.sleep(1.5)
            own_redis.start()
            await asyncio.sleep(2.0)  # the writers go on across the restart
        finally:
            stopping.set()
            await asyncio.gather(*workers, return_exceptions=True)
        for worker in workers:
            worker.result()

        expected_comments = await logged(stream, "comment_added")
        expected_orders = await logged(stream, "order_placed")
        await until(lambda: len(comments.received) >= len(expected_comments), 20)
        await until(lambda: len(orders.received) >= len(expected_orders), 20)
        await asyncio.sleep(1.0)  # a duplicate would come now
        assert [c["id"] for c in comments.received] == [str(e["comment_id"]) for e in expected_comments]
        assert [o["id"] for o in orders.received] == [str(e["stream_order_id"]) for e in expected_orders]
        assert [c["eventCursor"] for c in comments.received] == [e["cursor"] for e in expected_comments]
        for feed in (comments, orders):
            await feed.drop()
    assert all(process.poll() is None for process in servers.processes), "a server process died"


async def test_a_process_killed_between_commit_and_publish_delays_the_event_never_loses_it(database, servers):
    steady = servers.start(database, TEST_REDIS_URL, RATE_LIMITS="off", DATABASE_POOL_SIZE="4")
    doomed = servers.start(database, TEST_REDIS_URL, RATE_LIMITS="off", DATABASE_POOL_SIZE="4", FAULT_EXIT_BEFORE_PUBLISH="on")
    async with contextlib.AsyncExitStack() as stack:
        seller = await stack.enter_async_context(LivecartClient(steady))
        stream, _ = await seller_with_live_stream(seller)
        start = await start_cursor(seller, stream)
        watcher = Feed(await stack.enter_async_context(LivecartClient(steady)), COMMENTS, "commentAdded", stream, start)
        await watcher.open()

        writer = await stack.enter_async_context(LivecartClient(doomed))
        await writer.register("writer", "correct horse")
        with pytest.raises(Exception):
            await writer.execute(POST, {"s": stream, "t": "committed, then the process died"})
        servers.process_of(doomed).wait(10)
        assert servers.process_of(doomed).returncode == 70  # the fault hook, not something else
        [event] = await logged(stream, "comment_added")  # it was committed

        # The other process's relay finds it in the log: late, once.
        await until(lambda: len(watcher.received) >= 1, WAIT + 5)
        assert [c["text"] for c in watcher.received] == ["committed, then the process died"]

        # After a restart, a subscriber there that resumes from before it gets it too.
        again = servers.start(database, TEST_REDIS_URL, RATE_LIMITS="off", DATABASE_POOL_SIZE="4")
        late = Feed(await stack.enter_async_context(LivecartClient(again)), COMMENTS, "commentAdded", stream, start)
        await late.open()
        await until(lambda: len(late.received) >= 1, WAIT)
        assert late.received[0]["eventCursor"] == event["cursor"]
        await asyncio.sleep(1.0)
        assert len(watcher.received) == 1 and len(late.received) == 1
        for feed in (watcher, late):
            await feed.drop()
