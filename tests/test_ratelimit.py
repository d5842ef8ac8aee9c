"""Rate limits: RATE_LIMITED with retryAfter, counted per username and per address, shared
between processes through Redis, and still counted in-process when Redis is away."""
from __future__ import annotations

import pytest

from livecart.server.app import create_app
from livecart.resolvers.ratelimit import COMMENT, JOIN_ADDRESS, LOGIN_ADDRESS, LOGIN_USERNAME, REGISTER_ADDRESS, Limit, RateLimiter
from tests.conftest import SERVICES_BACKEND
from tests.support import REGISTER, GraphQLClient, register

LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }"


def assert_rate_limited(error: dict, window_seconds: int) -> None:
    assert error["extensions"]["code"] == "RATE_LIMITED", error
    assert isinstance(error["extensions"]["retryAfter"], int)
    assert 1 <= error["extensions"]["retryAfter"] <= window_seconds


async def test_login_attempts_per_username_are_limited(client):
    await register(client, "alice")
    for _ in range(LOGIN_USERNAME.count):
        error = await client.error(LOGIN, {"u": "alice", "p": "wrong guess"})
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
    # Even the right password waits now: the limit protects the account from guessing.
    error = await client.error(LOGIN, {"u": "Alice", "p": "correct horse"})
    assert_rate_limited(error, LOGIN_USERNAME.window_seconds)
    # Another account from the same address is not held up by alice's.
    await register(client, "bob")
    assert await client.data(LOGIN, {"u": "bob", "p": "correct horse"})


async def test_login_attempts_per_address_are_limited(client):
    for i in range(LOGIN_ADDRESS.count):
        error = await client.error(LOGIN, {"u": f"nobody{i}", "p": "guess"})
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert_rate_limited(await client.error(LOGIN, {"u": "someone-else", "p": "guess"}), LOGIN_ADDRESS.window_seconds)


async def test_account_creation_per_address_is_limited(client):
    for i in range(REGISTER_ADDRESS.count):
        await register(client, f"user{i}")
    error = await client.error(REGISTER, {"u": "one-too-many", "p": "correct horse"})
    assert_rate_limited(error, REGISTER_ADDRESS.window_seconds)


async def test_limits_are_shared_between_processes_through_redis(aiohttp_client, settings, backend):
    first = GraphQLClient(await aiohttp_client(create_app(settings)))
    second = GraphQLClient(await aiohttp_client(create_app(settings)))
    half = LOGIN_USERNAME.count // 2
    for client in [first] * half + [second] * (LOGIN_USERNAME.count - half):
        await client.error(LOGIN, {"u": "carol", "p": "guess"})
    body = await second.execute(LOGIN, {"u": "carol", "p": "guess"})
    code = body["errors"][0]["extensions"]["code"]
    # With Redis both apps count together; in-process each counts alone (documented).
    assert code == ("RATE_LIMITED" if backend == "services" else "UNAUTHENTICATED")


async def test_rate_limits_can_be_switched_off_for_load_tests(aiohttp_client, settings):
    client = GraphQLClient(await aiohttp_client(create_app(settings.replace(rate_limits=False))))
    for _ in range(LOGIN_USERNAME.count + 2):
        error = await client.error(LOGIN, {"u": "dave", "p": "guess"})
        assert error["extensions"]["code"] == "UNAUTHENTICATED"


BURST = Limit("test-burst", 3, 60, "slow down")


async def test_without_reachable_redis_the_limit_still_holds_in_process():
    import redis.asyncio as redis

    # Nothing listens on this port: every Redis call fails fast, the process counts alone.
    dead = redis.from_url("redis://127.0.0.1:18599/0", socket_connect_timeout=0.2, socket_timeout=0.2)
    limiter = RateLimiter(dead)
    try:
        for _ in range(BURST.count):
            await limiter.check(BURST, "k")
        with pytest.raises(Exception) as caught:
            await limiter.check(BURST, "k")
        assert caught.value.extensions["code"] == "RATE_LIMITED"
        assert 1 <= caught.value.extensions["retryAfter"] <= 60
    finally:
        await dead.aclose()


@pytest.mark.parametrize("backend", [SERVICES_BACKEND])  # Redis only: no SQLite twin to skip
async def test_redis_counts_a_sliding_window(settings):
    import redis.asyncio as redis

    client = redis.from_url(settings.redis_url)
    limiter = RateLimiter(client, enabled=settings.rate_limits)
    try:
        waits = [await limiter.wait_seconds(BURST, "w") for _ in range(BURST.count + 1)]
        assert waits[:-1] == [0.0] * BURST.count
        assert 0 < waits[-1] <= BURST.window_seconds
        assert await limiter.wait_seconds(BURST, "another key") == 0.0
    finally:
        await client.aclose()


# ---------------------------------------------------------------- chat and joins

POST = "mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id } }"
JOIN = "mutation($s: ID!) { joinStream(streamId: $s) { id } }"


async def live_stream(vendor, title="Show"):
    from livecart.models import stream as streams

    stream = await streams.create_stream(vendor.vendor_id, title=title, product_ids=vendor.product_ids)
    return await streams.start_stream(stream)


async def test_comments_are_limited_per_user_per_stream(client):
    from livecart.models.engagement import InteractionType, StreamInteraction
    from tests.support import make_vendor

    seller = await make_vendor(client, products=1)
    alice, bob = await register(client, "alice"), await register(client, "bob")
    show, other = await live_stream(seller), await live_stream(seller, "Other")
    for i in range(COMMENT.count):
        await client.data(POST, {"s": str(show.id), "t": f"hi {i}"}, token=alice.token)
    error = await client.error(POST, {"s": str(show.id), "t": "one more"}, token=alice.token)
    assert_rate_limited(error, COMMENT.window_seconds)
    # The refused comment was not stored; others and other streams go on.
    assert await StreamInteraction.filter(stream_id=show.id, interaction_type=InteractionType.COMMENT).count() == COMMENT.count
    assert await client.data(POST, {"s": str(show.id), "t": "me too"}, token=bob.token)
    assert await client.data(POST, {"s": str(other.id), "t": "over here"}, token=alice.token)


async def test_joins_are_limited_per_address(client):
    from tests.support import make_vendor

    seller = await make_vendor(client, products=1)
    show = await live_stream(seller)
    for _ in range(JOIN_ADDRESS.count):
        await client.data(JOIN, {"s": str(show.id)})
    assert_rate_limited(await client.error(JOIN, {"s": str(show.id)}), JOIN_ADDRESS.window_seconds)
