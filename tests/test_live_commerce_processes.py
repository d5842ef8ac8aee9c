"""Issue 18 across two `livecart serve` processes on PostgreSQL and Redis: 100 late bidders on a
counter-bid auction, the clock ended by one process only, one winner and one order."""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
from decimal import Decimal

import asyncpg
import pytest

from livecart.client.livecart_client import LivecartClient, LivecartError
from livecart.models.user import hash_token
from tests.conftest import SERVICES_MISSING, TEST_DATABASE_URL, TEST_REDIS_URL
from tests.processes import Ports, database, seller_with_live_stream, servers  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(not (TEST_DATABASE_URL and TEST_REDIS_URL), reason=SERVICES_MISSING)

PORTS = Ports(19800, 19899)  # this suite's range; each server takes the next free one

AUCTION = """mutation($s: ID!, $p: ID!) { startAuction(streamId: $s, productId: $p, startingPrice: "10.00",
  durationSeconds: 12, mode: COUNTER_BID, windowSeconds: 5) { id endsAt } }"""
BID = "mutation($a: ID!, $x: Decimal!) { placeBid(auctionId: $a, amount: $x) { id amount endsAt } }"
STATE = "query($a: ID!) { auction(id: $a) { closed price minimumBid orderId leader { username } endsAt bidCount } }"
LIVE = "subscription($s: ID!) { liveCommerce(streamId: $s) { auction { id closed price bidCount } } }"
INCREMENTS = "{ auctionIncrements { fromPrice increment } }"


def increment(price: Decimal, table: list[dict]) -> Decimal:
    """The step of the band `price` is in, as the schema states the table."""
    return [Decimal(row["increment"]) for row in table if price >= Decimal(row["fromPrice"])][-1]


async def accounts(database_url: str, count: int) -> list[str]:
    """Bidders with tokens written straight into the database: registering a hundred through the API
    would spend the test's time hashing passwords, which is not what it is about."""
    conn = await asyncpg.connect(database_url)
    tokens = [secrets.token_urlsafe(32) for _ in range(count)]
    now = dt.datetime.now(dt.timezone.utc)
    try:
        for i, token in enumerate(tokens):
            user_id = await conn.fetchval(
                "INSERT INTO users (username, password_hash, created_at) VALUES ($1, '-', $2) RETURNING id", f"bidder{i}", now)
            await conn.execute(
                "INSERT INTO auth_tokens (user_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                user_id, hash_token(token), now, now + dt.timedelta(hours=1))
    finally:
        await conn.close()
    return tokens


async def test_one_hundred_late_bidders_on_two_processes_one_winner_one_order(database, servers):
    first = servers.start(database, TEST_REDIS_URL, RATE_LIMITS="off")
    second = servers.start(database, TEST_REDIS_URL, RATE_LIMITS="off")
    async with contextlib.AsyncExitStack() as stack:
        seller = await stack.enter_async_context(LivecartClient(first))
        stream, product = await seller_with_live_stream(seller, stock=3)
        watcher = await stack.enter_async_context(LivecartClient(second))
        pushed = watcher.subscribe(LIVE, {"s": stream})
        await asyncio.wait_for(anext(pushed), 10)
        bidders = [
            await stack.enter_async_context(LivecartClient(first if i % 2 else second, token))
            for i, token in enumerate(await accounts(database, 100))
        ]
        table = (await seller.execute(INCREMENTS))["auctionIncrements"]
        auction = (await seller.execute(AUCTION, {"s": stream, "p": product}))["startAuction"]
        a = auction["id"]
        started_end = dt.datetime.fromisoformat(auction["endsAt"])

        # Wait for the last seconds (inside the 5 s window), then everyone bids at once, each
        # offering what they believe the next minimum is, some a few increments more.
        while dt.datetime.now(dt.timezone.utc) < started_end - dt.timedelta(seconds=3):
            await asyncio.sleep(0.1)

        async def bid(i: int, client: LivecartClient):
            accepted = []
            for attempt in range(3):
                state = (await client.execute(STATE, {"a": a}))["auction"]
                if state["closed"]:
                    return accepted
                offer = Decimal(state["minimumBid"]) + Decimal(i % 4) * Decimal("0.50")
                try:
                    placed = (await client.execute(BID, {"a": a, "x": str(offer)}))["placeBid"]
                    accepted.append((dt.datetime.fromisoformat(placed["endsAt"]), Decimal(placed["amount"]), f"bidder{i}"))
                    return accepted
                except LivecartError as error:
                    assert error.code in ("BID_TOO_LOW", "AUCTION_ENDED"), error
                    if error.code == "AUCTION_ENDED":
                        assert error.errors[0]["extensions"]["endsAt"]
                        return accepted
            return accepted

        results = await asyncio.gather(*(bid(i, c) for i, c in enumerate(bidders)))
        accepted = sorted((row for rows in results for row in rows), key=lambda row: row[1])
        assert accepted, "no bid was accepted"

        # The clock: ended by itself (one of the two processes), nobody's sweep made a second order.
        state = None
        for _ in range(200):
            state = (await seller.execute(STATE, {"a": a}))["auction"]
            if state["closed"] and state["orderId"]:
                break
            await asyncio.sleep(0.1)
        assert state["closed"] and state["orderId"]
        top_amount, top_bidder = accepted[-1][1], accepted[-1][2]
        assert Decimal(state["price"]) == top_amount and state["leader"]["username"] == top_bidder

        conn = await asyncpg.connect(database)
        try:
            orders = await conn.fetch(
                "SELECT o.id, o.total, u.username FROM orders o JOIN order_items i ON i.order_id = o.id"
                " JOIN users u ON u.id = o.buyer_id WHERE i.product_id = $1", int(product))
            bids = await conn.fetch("SELECT amount, ends_at, created_at FROM bids WHERE auction_id = $1 ORDER BY id", int(a))
            closed = await conn.fetchrow("SELECT closed_at, ends_at FROM auctions WHERE id = $1", int(a))
            stock = await conn.fetchval("SELECT stock FROM products WHERE id = $1", int(product))
        finally:
            await conn.close()
        assert [(row["total"], row["username"]) for row in orders] == [(top_amount, top_bidder)]
        assert stock == 2  # one unit auctioned and sold, once
        # Every accepted bid at or above the increment over the one before it, and each one
        # in the window set the clock to window seconds after it was placed (never back).
        previous = None
        for row in bids:
            amount = Decimal(row["amount"])
            if previous is None:
                assert amount >= Decimal("10.00")
            else:
                assert amount >= previous + increment(previous, table)
            previous = amount
        ends = [row["ends_at"] for row in bids]
        assert ends == sorted(ends) and ends[-1] > started_end  # extended by the late bids
        for row in bids:  # a bid leaves at least the window on the clock (row written just after its clock was read)
            assert row["ends_at"] >= row["created_at"] + dt.timedelta(seconds=4)
        assert closed["closed_at"] >= closed["ends_at"] and closed["ends_at"] == ends[-1]

        # The end was pushed to a watcher on the other process.
        final = None
        while final is None or not (final["auction"] and final["auction"]["closed"]):
            final = (await asyncio.wait_for(anext(pushed), 30))["liveCommerce"]
        assert Decimal(final["auction"]["price"]) == top_amount
        await pushed.aclose()
