"""GraphQL over HTTP (issue 16): media types and status codes, subscriptions over SSE and
multipart with what the WebSocket path has (auth, owner checks, limits, shared delivery,
logout, heartbeats, a client leaving noticed), persisted and trusted documents, the legacy
socket's keep-alive."""
from __future__ import annotations

import asyncio
import hashlib
import json

import orjson
import pytest

from livecart.server.app import create_app
from livecart.server.persisted import load_manifest
from livecart.server.settings import Settings, SettingsError
from livecart.models import events
from tests.conftest import TEST_REDIS_URL
from tests.realtime_support import (
    COMMENTS, STATS, VIEWERS, base_url, broker_of, comment_row, listening, live_stream, publish, until, view_of,
)
from tests.support import REGISTER, GraphQLClient, make_vendor, register

GRAPHQL_RESPONSE = "application/graphql-response+json"
WAIT = 10


async def post(client, body, accept=None, headers=None):
    headers = dict(headers or {})
    if accept is not None:
        headers["Accept"] = accept
    return await client.http.post("/graphql", data=orjson.dumps(body), headers={"Content-Type": "application/json", **headers})


# ---------------------------------------------------------------- media types and status codes

async def test_the_drafts_media_type_answers_request_errors_400_without_data(client):
    for query in ("{ liveStreams { id ", "{ nope }"):
        response = await post(client, {"query": query}, GRAPHQL_RESPONSE)
        assert response.status == 400
        assert response.content_type == GRAPHQL_RESPONSE
        body = await response.json(content_type=None)
        assert "data" not in body and body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    # Variables that do not coerce: 400 too.
    response = await post(client, {"query": "query($id: ID!) { stream(id: $id) { id } }", "variables": {"id": {"x": 1}}}, GRAPHQL_RESPONSE)
    assert response.status == 400 and "data" not in await response.json(content_type=None)
    # A result, even with a field error, is 200 with its data.
    response = await post(client, {"query": "{ liveStreams { id } }"}, GRAPHQL_RESPONSE)
    assert response.status == 200 and response.content_type == GRAPHQL_RESPONSE
    assert response.charset == "utf-8"
    assert await response.json(content_type=None) == {"data": {"liveStreams": []}}


async def test_application_json_keeps_200_for_graphql_errors(client):
    for accept in (None, "application/json", "*/*"):
        response = await post(client, {"query": "{ nope }"}, accept)
        assert response.status == 200 and response.content_type == "application/json"
        body = await response.json()
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    # Apollo's Accept prefers the draft's type.
    response = await post(client, {"query": "{ nope }"}, f"{GRAPHQL_RESPONSE},application/json;q=0.9")
    assert response.status == 400 and response.content_type == GRAPHQL_RESPONSE


async def test_an_accept_we_cannot_meet_is_406_with_the_types_offered(client):
    response = await post(client, {"query": "{ liveStreams { id } }"}, "application/xml")
    assert response.status == 406
    body = await response.json()
    assert GRAPHQL_RESPONSE in body["errors"][0]["extensions"]["offered"]
    assert "text/event-stream" in response.headers["Accept"]


async def test_a_subscription_over_plain_http_is_refused_with_a_code(client):
    for accept in (None, GRAPHQL_RESPONSE):
        response = await post(client, {"query": VIEWERS, "variables": {"s": "1"}}, accept)
        assert response.status == 400
        error = (await response.json(content_type=None))["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT" and "text/event-stream" in error["message"]


async def test_graphiql_still_answers_a_browser(client):
    response = await client.http.get("/graphql", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status == 200 and response.content_type == "text/html"


# ---------------------------------------------------------------- subscriptions over HTTP

class SSE:
    """The events of one graphql-sse response (distinct connections mode)."""

    def __init__(self, response) -> None:
        self.response = response

    async def next_event(self) -> tuple[str, str]:
        event, data = "", []
        while True:
            line = (await asyncio.wait_for(self.response.content.readline(), WAIT)).decode()
            if line == "":
                raise EOFError("the stream ended")
            line = line.rstrip("\n")
            if line.startswith(":"):
                event = event or "comment"
                continue
            if line == "":
                if event:
                    return event, "\n".join(data)
                continue
            field, _, value = line.partition(": ")
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)

    async def next(self) -> dict:
        while True:
            event, data = await self.next_event()
            if event == "next":
                return json.loads(data)
            if event != "comment":
                raise AssertionError(f"{event} instead of a result")

    async def complete(self) -> None:
        while True:
            event, _ = await self.next_event()
            if event == "complete":
                return
            assert event == "comment", event


async def sse(client, query, variables, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await post(client, {"query": query, "variables": variables}, "text/event-stream", headers)
    assert response.status == 200, await response.text()
    assert response.content_type == "text/event-stream"
    return SSE(response)


async def test_sse_subscription_gets_its_first_result_then_shared_ones(client):
    seller = await make_vendor(client)
    ann = await register(client, "ann")
    stream = await live_stream(seller)
    feeds = [await sse(client, COMMENTS, {"s": str(stream.id)}) for _ in range(3)]
    await listening(client, stream.id, 3)
    for text in ("one", "two"):
        row = await comment_row(stream.id, ann.id, text)
        await publish(client, stream.id, events.comment_added(stream.id, row.id))
        for feed in feeds:
            assert (await feed.next())["data"]["commentAdded"]["text"] == text
    # After the first, the three are one group of the hub: one execution per event.
    hub = broker_of(client).hub
    groups = hub._groups[f"stream:{stream.id}"]
    assert [len(group.members) for group in groups.values()] == [3]
    for feed in feeds:
        feed.response.close()


async def test_sse_owner_checks_and_auth_are_those_of_the_websocket(client):
    seller = await make_vendor(client)
    ann = await register(client, "ann")
    stream = await live_stream(seller)
    # Anonymous, and someone else: coded errors, then complete.
    for token, code in ((None, "UNAUTHENTICATED"), (ann.token, "FORBIDDEN")):
        feed = await sse(client, STATS, {"s": str(stream.id)}, token)
        result = await feed.next()
        assert result["errors"][0]["extensions"]["code"] == code and result.get("data") is None
        await feed.complete()
    # A token that names nobody is refused before anything starts.
    response = await post(client, {"query": STATS, "variables": {"s": str(stream.id)}}, "text/event-stream", {"Authorization": "Bearer nobody"})
    assert response.status == 401
    assert (await response.json())["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # The owner gets the figures.
    feed = await sse(client, STATS, {"s": str(stream.id)}, seller.token)
    assert (await feed.next())["data"]["streamStats"]["streamId"] == str(stream.id)
    feed.response.close()


async def test_logout_ends_the_http_streams_of_its_token(client):
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    feed = await sse(client, STATS, {"s": str(stream.id)}, seller.token)
    await feed.next()
    await client.data("mutation { logout }", token=seller.token)
    result = await feed.next()
    assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    await feed.complete()
    await until(lambda: broker_of(client).hub.subscriber_count(f"stream:{stream.id}") == 0)


async def test_shutdown_ends_http_streams_and_refuses_new_ones(client):
    from livecart.server import ops

    seller = await make_vendor(client)
    stream = await live_stream(seller)
    feed = await sse(client, VIEWERS, {"s": str(stream.id)})
    await feed.next()
    await ops.close_websockets(client.http.server.app)  # what SIGTERM runs first
    result = await feed.next()
    assert result["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    await feed.complete()
    response = await post(client, {"query": VIEWERS, "variables": {"s": str(stream.id)}}, "text/event-stream")
    assert response.status == 503


async def test_a_stream_ends_when_its_login_expires(client):
    import datetime as dt

    from livecart.models.clock import utcnow
    from livecart.models.user import AuthToken, hash_token

    seller = await make_vendor(client)
    stream = await live_stream(seller)
    await AuthToken.filter(token_hash=hash_token(seller.token)).update(expires_at=utcnow() + dt.timedelta(seconds=1))
    feed = await sse(client, STATS, {"s": str(stream.id)}, seller.token)
    assert (await feed.next())["data"]["streamStats"]["streamId"] == str(stream.id)
    result = await feed.next()
    assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    await feed.complete()


async def test_a_client_that_leaves_is_noticed_and_its_channel_released(aiohttp_client, settings):
    client = GraphQLClient(await aiohttp_client(create_app(settings.replace(http_stream_heartbeat_seconds=0.2))))
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    feed = await sse(client, VIEWERS, {"s": str(stream.id)})
    assert (await feed.next())["data"]["viewerCount"]["count"] == 0
    assert await feed.next_event() == ("comment", "")  # a heartbeat, while nothing happens
    broker = broker_of(client)
    channel = getattr(broker, "_prefix", "") + f"stream:{stream.id}"
    if settings.redis_url:
        import redis.asyncio as redis

        observer = redis.from_url(TEST_REDIS_URL)
        assert dict(await observer.pubsub_numsub(channel)) == {channel.encode(): 1}
    feed.response.close()
    await until(lambda: broker.hub.subscriber_count(f"stream:{stream.id}") == 0)
    if settings.redis_url:
        for _ in range(100):
            if dict(await observer.pubsub_numsub(channel)) == {channel.encode(): 0}:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("Redis still has the channel of a client that left")
        await observer.aclose()


async def test_http_streams_count_against_the_per_address_limit(aiohttp_client, settings):
    client = GraphQLClient(await aiohttp_client(create_app(settings.replace(websocket_connections_per_address=1))))
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    feed = await sse(client, VIEWERS, {"s": str(stream.id)})
    await feed.next()
    response = await post(client, {"query": VIEWERS, "variables": {"s": str(stream.id)}}, "text/event-stream")
    assert response.status == 429
    assert (await response.json())["errors"][0]["extensions"] == {"code": "TOO_MANY_CONNECTIONS", "limit": 1}
    feed.response.close()


async def test_a_multipart_subscription_and_a_query_over_sse(client):
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    response = await post(client, {"query": VIEWERS, "variables": {"s": str(stream.id)}}, 'multipart/mixed;subscriptionSpec="1.0",application/json')
    assert response.status == 200 and response.content_type == "multipart/mixed"
    assert 'subscriptionSpec="1.0"' in response.headers["Content-Type"]
    seen = b""
    while b'"count":0' not in seen:
        seen += await asyncio.wait_for(response.content.readany(), WAIT)
    assert b'{"payload":{"data":{"viewerCount":{"streamId":"%d","count":0}}}}' % stream.id in seen
    response.close()
    # A query over SSE: one result, then complete (graphql-sse's clients send queries this way).
    feed = await sse(client, "query($id: ID!) { stream(id: $id) { title } }", {"id": str(stream.id)})
    assert await feed.next() == {"data": {"stream": {"title": "Show"}}}
    await feed.complete()
    # A document that does not validate: refused before the stream starts.
    response = await post(client, {"query": "subscription { nope }"}, "text/event-stream")
    assert response.status == 400


# ---------------------------------------------------------------- persisted documents

def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(hash_: str) -> dict:
    return {"persistedQuery": {"version": 1, "sha256Hash": hash_}}


async def test_automatic_persisted_queries(client):
    query = "{ liveStreams { id title } }"
    # Unknown: PERSISTED_QUERY_NOT_FOUND, 200 (Apollo's link then sends the query too).
    response = await post(client, {"extensions": persisted(sha(query))})
    assert response.status == 200
    assert (await response.json())["errors"][0] == {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
    # A hash that is not its query's: refused, and nothing stored under it.
    response = await post(client, {"query": query, "extensions": persisted(sha("something else"))})
    assert (await response.json())["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    response = await post(client, {"extensions": persisted(sha("something else"))})
    assert (await response.json())["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    # Registered with its query, then asked by hash alone, by GET too: cacheable.
    assert (await (await post(client, {"query": query, "extensions": persisted(sha(query))})).json()) == {"data": {"liveStreams": []}}
    response = await client.http.get("/graphql", params={"extensions": json.dumps(persisted(sha(query)))})
    assert response.status == 200 and await response.json() == {"data": {"liveStreams": []}}
    assert response.headers["Cache-Control"].startswith("public, max-age=")
    # An answer with errors is not for shared caches.
    missing = "query($id: ID!) { stream(id: $id) { id } }"
    await post(client, {"query": missing, "extensions": persisted(sha(missing))})
    response = await client.http.get("/graphql", params={"extensions": json.dumps(persisted(sha(missing))), "variables": '{"id": "not-a-number"}'})
    assert (await response.json())["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Cache-Control" not in response.headers


async def test_trusted_documents_only(aiohttp_client, settings, tmp_path):
    allowed = "{ liveStreams { id } }"
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({
        "format": "apollo-persisted-query-manifest", "version": 1,
        "operations": [{"id": sha(allowed), "body": allowed, "name": "Live", "type": "query"}],
    }))
    client = GraphQLClient(await aiohttp_client(create_app(settings.replace(trusted_documents=str(manifest)))))
    assert (await (await post(client, {"query": allowed})).json()) == {"data": {"liveStreams": []}}
    assert (await (await post(client, {"extensions": persisted(sha(allowed))})).json()) == {"data": {"liveStreams": []}}
    assert (await (await post(client, {"documentId": f"sha256:{sha(allowed)}"})).json()) == {"data": {"liveStreams": []}}
    for body in ({"query": "{ liveStreams { title } }"}, {"query": allowed + " ", "extensions": persisted(sha(allowed + " "))}):
        response = await post(client, body, GRAPHQL_RESPONSE)
        assert response.status == 400
        assert (await response.json(content_type=None))["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"
    # Introspection stays available while it is enabled (GraphiQL in development).
    assert "__schema" in (await (await post(client, {"query": "{ __schema { queryType { name } } }"})).json())["data"]


def test_a_manifest_that_does_not_parse_stops_the_start_with_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"TRUSTED_DOCUMENTS": str(bad)})
    assert str(bad) in str(refused.value) and "\n" not in str(refused.value)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({sha("{ a }"): "{ b }"}))
    with pytest.raises(SettingsError):
        Settings.from_env({"TRUSTED_DOCUMENTS": str(wrong)})
    good = tmp_path / "good.json"
    good.write_text(json.dumps({f"sha256:{sha('{ a }')}": "{ a }"}))
    assert load_manifest(str(good)) == {sha("{ a }"): "{ a }"}


# ---------------------------------------------------------------- the legacy socket's keep-alive

async def test_legacy_keep_alive_follows_its_setting(aiohttp_client, settings):
    import websockets

    for seconds, expected in ((0.2, True), (0, False)):
        client = GraphQLClient(await aiohttp_client(create_app(settings.replace(websocket_keepalive_seconds=seconds))))
        url = base_url(client).replace("http", "ws", 1) + "/graphql"
        async with websockets.connect(url, subprotocols=["graphql-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
            except TimeoutError:
                message = None
            assert (message == {"type": "ka"}) is expected
        assert view_of(client).keep_alive is expected


async def test_trusted_documents_hold_on_websockets_too_and_the_command_lists_the_pages(aiohttp_client, settings, tmp_path):
    from livecart.client.livecart_client import LivecartClient, LivecartError
    from livecart.server.cli import main as livecart

    manifest = tmp_path / "trusted.json"
    livecart(["trusted-documents", str(manifest)])
    documents = load_manifest(str(manifest))
    bodies = set(documents.values())
    assert "mutation { logout }" in bodies  # a literal passed straight to gql() (ui.js)
    # The live page's comment document is built from a constant (COMMENT_FIELDS): filled in.
    posting = [b for b in bodies if "postComment(streamId: $s, text: $t) { id text createdAt " in b]
    assert posting and not any("${" in b for b in posting), posting
    # The tests' own set-up documents are trusted too (a deployment lists every client's).
    setup = [
        REGISTER, 'mutation { becomeVendor(name: "Shop") { id } }',
        "mutation($n: String!, $p: Decimal!, $s: Int!) { createProduct(name: $n, price: $p, stock: $s) { id } }",
    ]
    listed = json.loads(manifest.read_text())
    listed["operations"] += [{"id": sha(text), "body": text} for text in setup]
    manifest.write_text(json.dumps(listed))
    client = GraphQLClient(await aiohttp_client(create_app(settings.replace(trusted_documents=str(manifest)))))
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    page_viewers = next(b for b in bodies if b.startswith("subscription") and "{ viewerCount(streamId" in b)
    async with LivecartClient(base_url(client)) as viewer:
        listed = viewer.subscribe(page_viewers, {"s": str(stream.id)})
        viewers = (await asyncio.wait_for(anext(listed), WAIT))["viewerCount"]
        assert viewers["count"] == 0 and "eventCursor" in viewers  # the page's document resumes from its cursor (issue 15)
        unlisted = viewer.subscribe(VIEWERS, {"s": str(stream.id)})
        with pytest.raises(LivecartError) as refused:
            await asyncio.wait_for(anext(unlisted), WAIT)
        assert refused.value.code == "PERSISTED_QUERY_NOT_ALLOWED"
        await listed.aclose()
