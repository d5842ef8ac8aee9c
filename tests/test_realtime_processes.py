"""Several `livecart serve` processes sharing PostgreSQL and Redis, and Redis failing under them.

Runs only with TEST_DATABASE_URL and TEST_REDIS_URL (PostgreSQL and Redis are what
make processes share). Every process started here is killed in fixture teardown.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import asyncpg
import pytest
import redis as redis_sync

from client.livecart_client import LivecartClient
from tests.conftest import (
    SERVICES_MISSING, TEST_DATABASE_URL, TEST_REDIS_URL, _flush_redis, _truncate_postgres, run_blocking,
)
from tests.realtime_support import COMMENTS, ORDERS, VIEWERS, next_of, pump

pytestmark = pytest.mark.skipif(not (TEST_DATABASE_URL and TEST_REDIS_URL), reason=SERVICES_MISSING)

LIVECART = str(pathlib.Path(sys.executable).with_name("livecart"))
ROOT = pathlib.Path(__file__).resolve().parent.parent
# This suite's range; each server and redis takes the next. TEST_FIRST_PORT moves it, so that
# runs side by side on one machine (several worktrees) do not answer each other's requests.
FIRST_PORT = int(os.environ.get("TEST_FIRST_PORT", "18301"))
PORTS = iter(range(FIRST_PORT, FIRST_PORT + 98))
POST = "mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id text } }"


# ---------------------------------------------------------------- processes

def _wait_until(probe, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if probe():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up in {timeout:.0f}s")
        time.sleep(0.1)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def database(request) -> str:
    """The suite's PostgreSQL database, migrated by `livecart migrate`, emptied."""
    request.getfixturevalue("postgres_migrated")
    env = {**os.environ, "DATABASE_URL": TEST_DATABASE_URL}
    subprocess.run([LIVECART, "migrate"], env=env, cwd=ROOT, check=True, capture_output=True, timeout=120)
    run_blocking(_truncate_postgres(TEST_DATABASE_URL))
    run_blocking(_flush_redis(TEST_REDIS_URL))  # rate-limit windows of earlier runs
    return TEST_DATABASE_URL


@pytest.fixture
def servers(database, tmp_path) -> Iterator:
    """start(redis_url) -> base URL of a new `livecart serve` process."""
    started: list[subprocess.Popen] = []

    def start(redis_url: str) -> str:
        port = next(PORTS)
        env = {**os.environ, "DATABASE_URL": database, "REDIS_URL": redis_url, "PORT": str(port)}
        log = open(tmp_path / f"serve-{port}.log", "w")
        process = subprocess.Popen([LIVECART, "serve", "--port", str(port)], env=env, cwd=ROOT, stdout=log, stderr=log)
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        import urllib.request

        _wait_until(lambda: urllib.request.urlopen(f"{url}/healthz", timeout=1).status == 200, f"livecart on {port}")
        return url

    yield start
    for process in started:
        _stop(process)


class RedisServer:
    """A redis-server of the test's own, on a spare port, that the test may kill and restart."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _wait_until(lambda: redis_sync.Redis(port=self.port, socket_timeout=1).ping(), f"redis on {self.port}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer(next(PORTS))
    server.start()
    yield server
    server.kill()


# ---------------------------------------------------------------- scenario helpers

async def seller_with_live_stream(client: LivecartClient) -> tuple[str, str]:
    """Registers a seller with a product and a LIVE stream: (stream id, product id)."""
    await client.register("seller", "correct horse")
    await client.execute('mutation { becomeVendor(name: "Shop") { id } }')
    product = (await client.execute(
        'mutation { createProduct(name: "Mug", price: "12.50", stock: 50) { id } }'))["createProduct"]["id"]
    stream = (await client.execute(
        "mutation($p: [ID!]!) { createStream(title: \"Live\", productIds: $p) { id } }", {"p": [product]}
    ))["createStream"]["id"]
    await client.execute("mutation($s: ID!) { startStream(id: $s) { status } }", {"s": stream})
    return stream, product


async def watching(client: LivecartClient, stream: str):
    """A connection following the stream's comments, returned once the process listens to the
    stream's channel (the viewer count, asked second on the same connection, has arrived)."""
    connection = await client.connect()
    comments = await connection.start(COMMENTS, {"s": stream})
    await next_of(await connection.start(VIEWERS, {"s": stream}))
    return connection, comments


async def comments_in_database(stream: str) -> list[str]:
    conn = await asyncpg.connect(TEST_DATABASE_URL)
    try:
        rows = await conn.fetch(
            "SELECT comment_text FROM stream_interactions WHERE stream_id = $1 AND interaction_type = 'comment'"
            " ORDER BY id", int(stream))
    finally:
        await conn.close()
    return [row["comment_text"] for row in rows]


# ---------------------------------------------------------------- tests

async def test_events_cross_processes_through_redis(servers):
    first, second = servers(TEST_REDIS_URL), servers(TEST_REDIS_URL)
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


async def test_redis_dies_and_comes_back_without_a_restart(servers, own_redis):
    first, second = servers(own_redis.url), servers(own_redis.url)
    async with contextlib.AsyncExitStack() as stack:
        seller, far, near, *fans = [
            await stack.enter_async_context(LivecartClient(url)) for url in [second, first, second] + [second] * 8
        ]
        stream, _ = await seller_with_live_stream(seller)
        # Comments are rate limited per author: spread them over a few fans.
        for i, fan in enumerate(fans):
            await fan.register(f"fan{i}", "correct horse")
        posted: list[str] = []

        async def post(text: str) -> None:
            await fans[len(posted) % len(fans)].execute(POST, {"s": stream, "t": text})
            posted.append(text)

        await post("before")
        far_connection, far_comments = await watching(far, stream)
        near_connection, near_comments = await watching(near, stream)
        stack.push_async_callback(far_connection.close)
        stack.push_async_callback(near_connection.close)
        await post("one")
        assert (await next_of(far_comments))["commentAdded"]["text"] == "one"
        assert (await next_of(near_comments))["commentAdded"]["text"] == "one"

        own_redis.kill()
        # Mutations and queries go on; the poster's own process still delivers to its subscribers.
        for text in ("two", "three"):
            await post(text)
            assert (await next_of(near_comments))["commentAdded"]["text"] == text
        query = "query($s: ID!) { stream(id: $s) { status } }"
        assert (await far.execute(query, {"s": stream}))["stream"]["status"] == "LIVE"
        await asyncio.sleep(1.5)  # stay down long enough for several failed reconnection attempts

        own_redis.start()
        # The brokers reconnect with backoff (a few seconds at most): keep posting until a
        # comment crosses between the processes again.
        far_inbox = pump(far_comments)
        crossed = None
        for attempt in range(1, 31):
            text = f"after {attempt}"
            await post(text)
            while crossed is None:
                try:
                    got = (await asyncio.wait_for(far_inbox.get(), 0.5))["commentAdded"]["text"]
                except TimeoutError:
                    break
                crossed = text if got == text else None
            if crossed:
                break
        assert crossed is not None, "events never crossed processes again after Redis came back"
        far_inbox.task.cancel()

        # Nothing written while Redis was away was lost.
        assert await comments_in_database(stream) == posted
