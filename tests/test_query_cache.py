"""Shared query results (server/query_cache.py): computed once, never stale for our own writes."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest

from livecart.server.app import create_app
from tests.conftest import SERVICES_MISSING, TEST_DATABASE_URL, TEST_REDIS_URL
from tests.processes import Ports, database, servers  # noqa: F401 - fixtures
from tests.realtime_support import live_stream
from tests.support import GraphQLClient, count_queries, make_vendor, register

PORTS = Ports(18150, 18189)  # this suite's range; each server takes the next free one
LIVE_PAGE = "{ liveStreams { id title commentCount vendor { name } featuredProducts { name price } } }"
POST = "mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id } }"
HEADER = "X-Livecart-Cache"


async def ask(http, query: str, variables: dict | None = None, token: str | None = None) -> tuple[dict, str | None]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json(), response.headers.get(HEADER)


async def test_a_shared_query_is_executed_once_and_our_writes_show_at_once(client):
    seller = await make_vendor(client)
    ann = await register(client, "ann")
    stream = await live_stream(seller)
    first, how = await ask(client.http, LIVE_PAGE)
    assert how == "miss" and first["data"]["liveStreams"][0]["commentCount"] == 0
    with count_queries() as statements:
        again, how = await ask(client.http, LIVE_PAGE, token=ann.token)  # a token changes nothing here
    assert how == "hit" and again == first and statements == []

    await client.data(POST, {"s": str(stream.id), "t": "hi"}, token=ann.token)
    after, how = await ask(client.http, LIVE_PAGE)
    assert how == "miss" and after["data"]["liveStreams"][0]["commentCount"] == 1


async def test_concurrent_askers_share_one_execution(client):
    seller = await make_vendor(client)
    await live_stream(seller)
    with count_queries() as statements:
        answers = await asyncio.gather(*(ask(client.http, LIVE_PAGE) for _ in range(20)))
    assert len({str(body) for body, _ in answers}) == 1
    assert sorted(how for _, how in answers).count("miss") == 1
    once = len(statements)
    with count_queries() as statements:
        await ask(client.http, "{ liveStreams { id commentCount } }")
    assert once <= len(statements) + 3, "twenty askers cost more than about one execution"


async def test_caller_dependent_and_failing_answers_are_never_shared(client):
    ann, bob = await register(client, "ann"), await register(client, "bob")
    for account in (ann, bob, ann):
        body, how = await ask(client.http, "{ me { username } }", token=account.token)
        assert how is None and body["data"]["me"]["username"] == account.username
    for _ in range(2):
        body, how = await ask(client.http, 'query { stream(id: "not-a-number") { id } }')
        assert how is None and body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_get_requests_are_shared_too(client):
    seller = await make_vendor(client)
    await live_stream(seller)
    hows = []
    for _ in range(2):
        response = await client.http.get("/graphql", params={"query": LIVE_PAGE})
        assert response.status == 200 and (await response.json())["data"]["liveStreams"]
        hows.append(response.headers.get(HEADER))
    assert hows == ["miss", "hit"]
    # A browser without a query still gets GraphiQL.
    page = await client.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status == 200 and page.content_type == "text/html" and HEADER not in page.headers


async def test_the_cache_can_be_switched_off(aiohttp_client, settings):
    http = await aiohttp_client(create_app(settings.replace(query_cache_seconds=0)))
    for _ in range(2):
        body, how = await ask(http, LIVE_PAGE)
        assert how is None and body["data"] == {"liveStreams": []}


@pytest.mark.skipif(not (TEST_DATABASE_URL and TEST_REDIS_URL), reason=SERVICES_MISSING)
async def test_a_write_on_one_process_shows_at_once_on_another(database, servers):
    first, second = servers.start(database, TEST_REDIS_URL), servers.start(database, TEST_REDIS_URL)
    async with aiohttp.ClientSession(first) as on_first, aiohttp.ClientSession(second) as on_second:
        client = GraphQLClient(on_first)
        seller = await make_vendor(client)
        ann = await register(client, "ann")
        stream = await client.data('mutation($p: [ID!]!) { createStream(title: "Show", productIds: $p) { id } }',
                                   {"p": [str(seller.product_ids[0])]}, token=seller.token)
        stream_id = stream["createStream"]["id"]
        await client.data("mutation($s: ID!) { startStream(id: $s) { id } }", {"s": stream_id}, token=seller.token)
        await ask(on_second, LIVE_PAGE)
        body, how = await ask(on_second, LIVE_PAGE)
        assert how == "hit" and body["data"]["liveStreams"][0]["commentCount"] == 0
        await client.data(POST, {"s": stream_id, "t": "hi"}, token=ann.token)  # on the first process
        body, how = await ask(on_second, LIVE_PAGE)
        assert how == "miss" and body["data"]["liveStreams"][0]["commentCount"] == 1
