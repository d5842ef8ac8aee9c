"""Fault survival: PostgreSQL restarted while requests run, Redis restarted under a mixed load.

Each test starts real `livecart serve` processes on spare ports, and the server it breaks
is its own (`initdb` + `pg_ctl` into a temporary folder; `redis-server --port`): the
machine's shared PostgreSQL and Redis are never stopped. Runs only with TEST_DATABASE_URL
and TEST_REDIS_URL, like every test of real processes; every process started is stopped in
fixture teardown. No timing is asserted beyond the bounded waits that catch a hang.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import time
from dataclasses import dataclass, field

import aiohttp
import asyncpg
import pytest

from livecart.client.livecart_client import LivecartClient
from livecart.schema.extensions import is_unavailable
from tests.conftest import SERVICES_MISSING, TEST_DATABASE_URL, TEST_REDIS_URL, _flush_redis, run_blocking
from tests.processes import (  # noqa: F401 - fixtures
    Ports, comments_in_database, database, migrate, own_postgres, own_redis, seller_with_live_stream, servers, watching,
)
from tests.realtime_support import ORDERS

pytestmark = pytest.mark.skipif(not (TEST_DATABASE_URL and TEST_REDIS_URL), reason=SERVICES_MISSING)

PORTS = Ports(18500, 18599)  # this module's range; each server takes the next free one
POST = "mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id text } }"
BUY = "mutation($p: ID!, $s: ID) { buyNow(productId: $p, quantity: 1, streamId: $s) { id } }"
LIVE = "{ liveStreams { id title vendor { name } featuredProducts { name price stock } } }"
LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }"
# A request that takes longer than this hangs: the test fails on it instead of waiting.
REQUEST_TIMEOUT = 10.0


@dataclass
class Answer:
    operation: str
    started: float
    finished: float
    status: int | None = None
    text: str = ""
    body: dict | None = None
    failure: str | None = None  # no HTTP answer at all (timeout, connection error)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.body is not None and not self.body.get("errors") and bool(self.body.get("data"))

    @property
    def codes(self) -> list[str | None]:
        return [(error.get("extensions") or {}).get("code") for error in (self.body or {}).get("errors") or []]


@dataclass
class Recorder:
    """Posts GraphQL with a bounded client timeout and keeps every answer."""

    session: aiohttp.ClientSession
    answers: list[Answer] = field(default_factory=list)

    async def post(self, url: str, operation: str, query: str, variables: dict | None = None, token: str | None = None) -> Answer:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = Answer(operation, time.monotonic(), 0.0)
        try:
            async with self.session.post(
                f"{url}/graphql", json={"query": query, "variables": variables or {}}, headers=headers,
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            ) as response:
                answer.status, answer.text = response.status, await response.text()
            answer.body = json.loads(answer.text)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            answer.failure = repr(exc)
        answer.finished = time.monotonic()
        self.answers.append(answer)
        return answer


def assert_clean(answer: Answer) -> None:
    """An HTTP answer in bounded time, JSON, not a 5xx, no traceback in it."""
    assert answer.failure is None, f"{answer.operation}: no answer ({answer.failure})"
    assert answer.status is not None and answer.status < 500, f"{answer.operation}: {answer.status} {answer.text[:300]}"
    assert answer.body is not None, answer.text[:300]
    assert "Traceback" not in answer.text and 'File "' not in answer.text, answer.text[:300]


async def ready(session: aiohttp.ClientSession, url: str) -> tuple[int, dict]:
    async with session.get(f"{url}/readyz", timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as response:
        return response.status, await response.json()


# ---------------------------------------------------------------- PostgreSQL restarted

async def test_postgres_restarted_while_requests_run_fails_cleanly_and_recovers(own_postgres, servers):
    migrate(own_postgres.url)
    run_blocking(_flush_redis(TEST_REDIS_URL))
    # One address sends the whole load: lift the per-address limits (as the README says for load tests).
    url = servers.start(own_postgres.url, TEST_REDIS_URL, RATE_LIMITS="off")
    async with contextlib.AsyncExitStack() as stack:
        seller = await stack.enter_async_context(LivecartClient(url))
        stream, _ = await seller_with_live_stream(seller)
        viewers = []
        for i in range(8):
            viewer = await stack.enter_async_context(LivecartClient(url))
            await viewer.register(f"viewer{i}", "correct horse")
            viewers.append(viewer)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        recorder = Recorder(session)
        stopping = asyncio.Event()
        numbers = itertools.count()

        async def load(index: int) -> None:
            viewer = viewers[index]
            while not stopping.is_set():
                text = f"comment {next(numbers)}"
                await recorder.post(url, "postComment", POST, {"s": stream, "t": text}, viewer.token)
                await recorder.post(url, "liveStreams", LIVE)
                await recorder.post(url, "login", LOGIN, {"u": f"viewer{index}", "p": "correct horse"})
                await asyncio.sleep(0.05)

        workers = [asyncio.create_task(load(i)) for i in range(len(viewers))]
        try:
            await asyncio.sleep(1.0)
            assert any(a.ok for a in recorder.answers), [a.text for a in recorder.answers[:3]]

            await asyncio.to_thread(own_postgres.stop)
            down_from = time.monotonic()
            await asyncio.sleep(3.0)  # requests keep coming while PostgreSQL is away
            status, readiness = await ready(session, url)
            assert status == 503 and readiness["checks"]["database"] != "ok", readiness
            down_until = time.monotonic()

            await asyncio.to_thread(own_postgres.start)
            up_from = time.monotonic()
            # The same process recovers: every kind of request succeeds again, and it is ready.
            deadline = up_from + 20
            while True:
                recovered = {a.operation for a in recorder.answers if a.started >= up_from and a.ok}
                if recovered == {"postComment", "liveStreams", "login"}:
                    break
                assert time.monotonic() < deadline, f"not recovered 20 s after PostgreSQL came back: {recovered}"
                await asyncio.sleep(0.2)
            status, readiness = await ready(session, url)
            assert status == 200, readiness
        finally:
            stopping.set()
            await asyncio.gather(*workers, return_exceptions=True)
        for worker in workers:
            worker.result()  # a load task that crashed fails the test

    assert servers.processes[0].poll() is None, "the server process died"
    for answer in recorder.answers:
        assert_clean(answer)
        # Rate limits are off and every request is valid: the only failure is the outage's.
        assert answer.ok or answer.codes == ["SERVICE_UNAVAILABLE"], (answer.operation, answer.text[:500])
    during = [a for a in recorder.answers if a.started >= down_from and a.finished <= down_until]
    assert len(during) >= 10, f"only {len(during)} requests ran while PostgreSQL was down"
    assert all(not a.ok for a in during), [a.text for a in during if a.ok]
    for answer in during:
        error = answer.body["errors"][0]
        assert error["extensions"].get("retryAfter"), error
        assert "Traceback" not in error["message"] and "asyncpg" not in error["message"], error

    # Nothing acknowledged was lost.
    acknowledged = [a.body["data"]["postComment"]["text"] for a in recorder.answers if a.operation == "postComment" and a.ok]
    stored = set(await comments_in_database(stream, own_postgres.url))
    assert acknowledged and not set(acknowledged) - stored, sorted(set(acknowledged) - stored)


async def test_a_database_that_accepts_but_never_answers_is_answered_in_bounded_time(own_postgres, servers):
    """A database host whose port accepts connections but never answers (a frozen server, a proxy
    whose backend is gone): a request must not wait for asyncpg's 60 s connect default."""
    migrate(own_postgres.url)
    run_blocking(_flush_redis(TEST_REDIS_URL))
    url = servers.start(own_postgres.url, TEST_REDIS_URL, RATE_LIMITS="off")
    async with contextlib.AsyncExitStack() as stack:
        viewer = await stack.enter_async_context(LivecartClient(url))
        await viewer.register("viewer", "correct horse")
        session = await stack.enter_async_context(aiohttp.ClientSession())
        recorder = Recorder(session)

        await asyncio.to_thread(own_postgres.stop)
        silent = socket.socket()
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        silent.bind(("127.0.0.1", own_postgres.port))
        silent.listen(64)  # the kernel completes the handshakes; nobody ever reads or answers
        try:
            answers = await asyncio.gather(
                recorder.post(url, "liveStreams", LIVE),
                recorder.post(url, "login", LOGIN, {"u": "viewer", "p": "correct horse"}),
                recorder.post(url, "me", "{ me { username } }", token=viewer.token),
            )
            for answer in answers:
                assert_clean(answer)
                assert answer.codes == ["SERVICE_UNAVAILABLE"], (answer.operation, answer.text[:500])
        finally:
            silent.close()

        await asyncio.to_thread(own_postgres.start)
        deadline = time.monotonic() + 20
        while not (await recorder.post(url, "liveStreams", LIVE)).ok:
            assert time.monotonic() < deadline, recorder.answers[-1].text[:500]
            await asyncio.sleep(0.2)


# ---------------------------------------------------------------- Redis restarted

@dataclass
class Posted:
    """An acknowledged mutation: which process took it, when, and what it made."""

    process: int
    at: float
    key: str  # a comment's text, an order's id


class Heard(list):
    """Every result of a subscription, gathered by a task of its own as it arrives."""

    def __init__(self, results, field_name: str, key: str) -> None:
        super().__init__()
        self.task = asyncio.ensure_future(self._gather(results, field_name, key))

    async def _gather(self, results, field_name: str, key: str) -> None:
        async for result in results:
            self.append(result[field_name][key])


async def test_a_database_with_every_connection_slot_taken_is_unavailable_not_a_bug(own_postgres):
    """A PostgreSQL whose connection slots are all taken refuses a new connection (53300, as a pool
    growing under load meets it): the service is briefly unavailable, answered SERVICE_UNAVAILABLE
    with retryAfter like a database that is down, not INTERNAL_SERVER_ERROR (a full run once saw
    `playbackUrl` fail so when another program held the machine's connections)."""
    await asyncio.to_thread(own_postgres.stop)
    await asyncio.to_thread(own_postgres.start, max_connections=3, superuser_reserved_connections=0)
    held = [await asyncpg.connect(own_postgres.url) for _ in range(3)]
    try:
        with pytest.raises(asyncpg.exceptions.TooManyConnectionsError) as refused:
            await asyncpg.connect(own_postgres.url)
        assert is_unavailable(refused.value)
    finally:
        await asyncio.gather(*(connection.close() for connection in held))


async def test_redis_restarted_under_mixed_load_loses_nothing_and_subscribers_resume(database, own_redis, servers):
    """Two processes share the database and the test's own Redis; comments and orders go to both
    while Redis is killed and started again on the same port.

    Subscribers resume WITHOUT reconnecting: their WebSockets are to livecart, not to Redis, and
    stay open throughout; each process's broker reconnects to Redis and subscribes again by itself."""
    urls = [servers.start(database, own_redis.url), servers.start(database, own_redis.url)]
    async with contextlib.AsyncExitStack() as stack:
        async def client(process: int, token: str | None = None) -> LivecartClient:
            return await stack.enter_async_context(LivecartClient(urls[process], token))

        seller = await client(1)
        stream, product = await seller_with_live_stream(seller, stock=100_000)
        # Comments are rate limited per author (5 per 10 s): several authors on each process,
        # each posting slower than that. Account creation is limited per address: 11 in all.
        commenters = [await client(i % 2) for i in range(6)]
        buyers = [await client(i % 2) for i in range(4)]
        for i, account in enumerate(commenters):
            await account.register(f"fan{i}", "correct horse")
        for i, account in enumerate(buyers):
            await account.register(f"buyer{i}", "correct horse")

        # On each process: a viewer following comments, and the seller following orders.
        comment_inboxes, order_inboxes, connections = [], [], []
        for process in (0, 1):
            connection, comments = await watching(await client(process), stream)
            owner = await (await client(process, seller.token)).connect()
            orders = await owner.start(ORDERS, {"s": stream})
            stack.push_async_callback(connection.close)
            stack.push_async_callback(owner.close)
            connections += [connection, owner]
            comment_inboxes.append(Heard(comments, "commentAdded", "text"))
            order_inboxes.append(Heard(orders, "orderPlaced", "id"))
        session = await stack.enter_async_context(aiohttp.ClientSession())
        recorder = Recorder(session)
        comments_posted: list[Posted] = []
        orders_placed: list[Posted] = []
        stopping = asyncio.Event()
        numbers = itertools.count()

        async def comment_forever(account: LivecartClient, process: int) -> None:
            while not stopping.is_set():
                text = f"comment {next(numbers)} via {process}"
                answer = await recorder.post(urls[process], "postComment", POST, {"s": stream, "t": text}, account.token)
                if answer.ok:
                    comments_posted.append(Posted(process, answer.started, text))
                await asyncio.sleep(2.2)

        async def buy_forever(account: LivecartClient, process: int) -> None:
            while not stopping.is_set():
                answer = await recorder.post(urls[process], "buyNow", BUY, {"p": product, "s": stream}, account.token)
                if answer.ok:
                    orders_placed.append(Posted(process, answer.started, answer.body["data"]["buyNow"]["id"]))
                await asyncio.sleep(0.1)

        workers = [asyncio.create_task(comment_forever(a, i % 2)) for i, a in enumerate(commenters)]
        workers += [asyncio.create_task(buy_forever(a, i % 2)) for i, a in enumerate(buyers)]

        def crossed_since(moment: float) -> bool:
            """An event of each kind taken by each process after `moment` reached the other's subscribers."""
            for process, other in ((0, 1), (1, 0)):
                comments_there, orders_there = set(comment_inboxes[other]), set(order_inboxes[other])
                if not any(p.key in comments_there for p in comments_posted if p.process == process and p.at > moment):
                    return False
                if not any(p.key in orders_there for p in orders_placed if p.process == process and p.at > moment):
                    return False
            return True

        try:
            deadline = time.monotonic() + 15
            while not crossed_since(0):
                assert time.monotonic() < deadline, "events did not cross processes before the fault"
                await asyncio.sleep(0.1)

            own_redis.kill()
            down_from = time.monotonic()
            await asyncio.sleep(2.5)  # long enough for several failed reconnection attempts
            status, readiness = await ready(session, urls[0])
            assert status == 503 and readiness["checks"]["redis"] != "ok", readiness
            own_redis.start()
            up_from = time.monotonic()

            # The brokers reconnect with backoff (a few seconds at most).
            deadline = up_from + 20
            while not crossed_since(up_from):
                assert time.monotonic() < deadline, "events never crossed processes again after Redis came back"
                await asyncio.sleep(0.1)
            assert [(await ready(session, url))[0] for url in urls] == [200, 200]
        finally:
            stopping.set()
            await asyncio.gather(*workers, return_exceptions=True)
        for worker in workers:
            worker.result()  # a load task that crashed fails the test
        await asyncio.sleep(0.5)  # the last local deliveries
        for inbox in comment_inboxes + order_inboxes:
            inbox.task.cancel()
        # Nobody reconnected: the same WebSockets carried events before, during and after.
        assert all(not connection.ws.closed for connection in connections)

    assert all(process.poll() is None for process in servers.processes), "a server process died"
    for answer in recorder.answers:
        assert_clean(answer)
        # Redis is not on the write path: no mutation failed, during the outage either.
        assert answer.ok, (answer.operation, answer.text[:500])
    assert any(down_from < p.at < up_from for p in comments_posted), "no comment was posted while Redis was down"
    assert any(down_from < p.at < up_from for p in orders_placed), "no order was placed while Redis was down"

    # Every subscriber heard every event of its own process, Redis or not.
    for process in (0, 1):
        assert {p.key for p in comments_posted if p.process == process} <= set(comment_inboxes[process])
        assert {p.key for p in orders_placed if p.process == process} <= set(order_inboxes[process])

    # Nothing acknowledged was lost, and nothing else was written.
    stored_comments = await comments_in_database(stream)
    assert sorted(stored_comments) == sorted(p.key for p in comments_posted)
    conn = await asyncpg.connect(database)
    try:
        stored_orders = [str(row["id"]) for row in await conn.fetch("SELECT id FROM orders")]
    finally:
        await conn.close()
    assert sorted(stored_orders) == sorted(p.key for p in orders_placed)
