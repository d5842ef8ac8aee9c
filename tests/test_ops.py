"""Operations, in-process: /healthz, /readyz, /metrics after traffic, and the WebSocket limits
(subscriptions per connection, connection_init timeout, message size, connections per address)
on both subscription protocols, through real WebSockets (aiohttp's client)."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from livecart.server.app import create_app
from livecart.server.settings import Settings
from tests.realtime_support import VIEWERS, WAIT, listening, live_stream, viewers_now
from tests.support import GraphQLClient, make_vendor
from tests.processes import Ports

TRANSPORT, LEGACY = "graphql-transport-ws", "graphql-ws"


# ---------------------------------------------------------------- helpers

async def app_client(aiohttp_client, settings: Settings) -> GraphQLClient:
    return GraphQLClient(await aiohttp_client(create_app(settings)))


async def receive(ws: aiohttp.ClientWebSocketResponse, timeout: float = WAIT) -> dict:
    """The next protocol message (legacy keep-alives skipped); a close raises with its code."""
    while True:
        message = await asyncio.wait_for(ws.receive(), timeout)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"socket closed: {message.type.name} {ws.close_code}")
        body = json.loads(message.data)
        if body.get("type") != "ka":
            return body


async def closed_with(ws: aiohttp.ClientWebSocketResponse, timeout: float = WAIT) -> int | None:
    """Read until the server closes the socket; its close code."""
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive()
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                return ws.close_code
            if message.type == aiohttp.WSMsgType.ERROR:
                return ws.close_code


async def open_socket(client: GraphQLClient, protocol: str = TRANSPORT, init: bool = True, **kwargs):
    ws = await client.http.ws_connect("/graphql", protocols=[protocol], heartbeat=None, **kwargs)
    if init:
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert (await receive(ws))["type"] == "connection_ack"
    return ws


def subscribe_message(protocol: str, operation: str, query: str, variables: dict) -> dict:
    kind = "subscribe" if protocol == TRANSPORT else "start"
    return {"id": operation, "type": kind, "payload": {"query": query, "variables": variables}}


def stop_message(protocol: str, operation: str) -> dict:
    return {"id": operation, "type": "complete" if protocol == TRANSPORT else "stop"}


async def scrape(client: GraphQLClient) -> dict[str, float]:
    """Every sample of /metrics, by name and labels: {'name{label="v"}': value}."""
    response = await client.http.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


# ---------------------------------------------------------------- endpoints

async def test_healthz_and_readyz(client, settings):
    health = await client.http.get("/healthz")
    assert health.status == 200
    body = await health.json()
    assert body["status"] == "ok" and isinstance(body["pid"], int)

    ready = await client.http.get("/readyz")
    assert ready.status == 200, await ready.text()
    checks = (await ready.json())["checks"]
    assert checks["database"] == "ok"
    # Redis is checked exactly when it is configured.
    assert checks.get("redis") == ("ok" if settings.redis_url else None)


async def test_readyz_says_unavailable_when_redis_cannot_be_reached(aiohttp_client, tmp_path, sqlite_template):
    import shutil

    path = tmp_path / "db.sqlite3"
    shutil.copyfile(sqlite_template, path)
    # Nothing listens there: a free port of a range no test starts a server in.
    dead = f"redis://127.0.0.1:{Ports(18190, 18199).take()}/0"
    client = await app_client(aiohttp_client, Settings(database_url=f"sqlite://{path}", redis_url=dead))
    ready = await client.http.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["checks"] == {"database": "ok", "redis": "unavailable"}
    assert (await client.http.get("/healthz")).status == 200  # alive all the same


async def test_metrics_follow_requests_errors_sockets_and_subscriptions(client, settings):
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    await client.data("{ liveStreams { id } }")
    refused = await client.error('mutation { becomeVendor(name: "Anon") { id } }')  # no token
    assert refused["extensions"]["code"] == "UNAUTHENTICATED"
    before = await scrape(client)
    assert before["livecart_websockets_open"] == 0
    assert before["livecart_subscriptions_active"] == 0
    assert before['livecart_http_requests_total{method="POST",route="/graphql",status="200"}'] >= 2
    assert before['livecart_graphql_errors_total{code="UNAUTHENTICATED"}'] == 1
    if settings.is_sqlite:
        assert "livecart_db_pool_max" not in before  # SQLite has no pool
    else:
        assert before["livecart_db_pool_max"] == settings.database_pool_size
        busy, idle = before['livecart_db_pool_connections{state="busy"}'], before['livecart_db_pool_connections{state="idle"}']
        assert busy >= 0 and idle >= 0 and 1 <= busy + idle <= settings.database_pool_size
    ws = await open_socket(client)
    await ws.send_json(subscribe_message(TRANSPORT, "v", VIEWERS, {"s": str(stream.id)}))
    assert (await receive(ws))["type"] == "next"
    during = await scrape(client)
    assert during["livecart_websockets_open"] == 1
    assert during["livecart_subscriptions_active"] == 1

    # Broker lag: each event's trip through Redis (our own echo included); none in-process.
    await viewers_now(client, stream.id, 3)
    assert (await receive(ws))["payload"]["data"]["viewerCount"]["count"] == 3
    if settings.redis_url:
        lag = await until_metric(client, "livecart_broker_lag_seconds_count", lambda value: value >= 1)
        assert lag >= 1
    else:
        assert during["livecart_broker_lag_seconds_count"] == 0

    await ws.close()
    after = await until_metric(client, "livecart_websockets_open", lambda value: value == 0)
    assert after == 0
    assert (await scrape(client))["livecart_subscriptions_active"] == 0


async def until_metric(client: GraphQLClient, name: str, accept) -> float:
    value = None
    for _ in range(int(WAIT / 0.05)):
        value = (await scrape(client)).get(name)
        if value is not None and accept(value):
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} stayed at {value}")


# ---------------------------------------------------------------- WebSocket limits

@pytest.mark.parametrize("protocol", [TRANSPORT, LEGACY])
async def test_the_51st_subscription_on_a_connection_is_refused_with_its_code(client, protocol):
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    variables = {"s": str(stream.id)}
    ws = await open_socket(client, protocol)
    for n in range(1, 51):
        await ws.send_json(subscribe_message(protocol, str(n), VIEWERS, variables))
    await listening(client, stream.id, 50)
    await ws.send_json(subscribe_message(protocol, "51", VIEWERS, variables))
    answers = [await receive(ws) for _ in range(51)]
    refused = [answer for answer in answers if answer["type"] == "error"]
    assert len(refused) == 1 and refused[0]["id"] == "51", refused
    error = refused[0]["payload"][0] if protocol == TRANSPORT else refused[0]["payload"]
    assert error["extensions"] == {"code": "TOO_MANY_SUBSCRIPTIONS", "limit": 50}
    assert sorted(int(answer["id"]) for answer in answers if answer["type"] != "error") == list(range(1, 51))

    # The connection goes on; once one completes, another may start.
    await ws.send_json(stop_message(protocol, "1"))
    if protocol == LEGACY:
        assert await receive(ws) == {"type": "complete", "id": "1"}  # the legacy protocol confirms a stop
    await assert_served(ws, protocol, "52", stream.id)
    await ws.close()


async def assert_served(ws, protocol: str, operation: str, stream_id: int) -> None:
    """A subscription started now gets its first result."""
    await ws.send_json(subscribe_message(protocol, operation, VIEWERS, {"s": str(stream_id)}))
    answer = await receive(ws)
    assert answer["id"] == operation and answer["type"] in ("next", "data"), answer


@pytest.mark.parametrize("protocol", [TRANSPORT, LEGACY])
async def test_connection_init_must_come_in_time_or_the_socket_closes_4408(aiohttp_client, tmp_path, sqlite_template, protocol):
    import shutil

    path = tmp_path / "db.sqlite3"
    shutil.copyfile(sqlite_template, path)
    client = await app_client(aiohttp_client, Settings(database_url=f"sqlite://{path}", websocket_init_timeout_seconds=1))
    stream = await live_stream(await make_vendor(client))
    patient = await open_socket(client, protocol, init=True)
    silent = await open_socket(client, protocol, init=False)
    assert await closed_with(silent) == 4408
    # The socket that did initialise, opened before, is still served after the silent one's deadline.
    await assert_served(patient, protocol, "late", stream.id)
    await patient.close()


def test_connection_init_timeout_defaults_to_ten_seconds():
    from livecart.server.graphql_view import LivecartGraphQLView
    from livecart.schema import build_schema

    settings = Settings()
    view = LivecartGraphQLView(schema=build_schema(settings), settings=settings)
    assert view.connection_init_wait_timeout.total_seconds() == 10
    assert view.max_subscriptions_per_connection == 50


@pytest.mark.parametrize("protocol", [TRANSPORT, LEGACY])
async def test_a_message_over_the_size_limit_closes_with_1009(client, settings, protocol):
    ws = await open_socket(client, protocol)
    limit = settings.websocket_max_message_bytes
    padding = " " * (limit - 200)  # just under the limit: served
    query = "subscription($s: ID!) { viewerCount(streamId: $s) { count } }" + padding
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    await ws.send_json(subscribe_message(protocol, "small", query, {"s": str(stream.id)}))
    assert (await receive(ws))["id"] == "small"
    await ws.send_json(subscribe_message(protocol, "big", query + " " * 400, {"s": str(stream.id)}))
    assert await closed_with(ws) == 1009


async def test_connections_per_address_are_bounded_with_429(aiohttp_client, tmp_path, sqlite_template):
    import shutil

    path = tmp_path / "db.sqlite3"
    shutil.copyfile(sqlite_template, path)
    settings = Settings(
        database_url=f"sqlite://{path}", websocket_connections_per_address=3, trusted_proxies="127.0.0.1"
    )
    client = await app_client(aiohttp_client, settings)
    behind = {"X-Forwarded-For": "203.0.113.7"}  # one client behind the trusted proxy
    sockets = [await open_socket(client, TRANSPORT, headers=behind) for _ in range(3)]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await open_socket(client, TRANSPORT, headers=behind)
    assert refused.value.status == 429
    # The refusal is JSON with its code (as an upgrade request of any client sees it).
    handshake = {
        **behind, "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": TRANSPORT,
    }
    response = await client.http.get("/graphql", headers=handshake)
    assert response.status == 429
    assert (await response.json())["errors"][0]["extensions"] == {"code": "TOO_MANY_CONNECTIONS", "limit": 3}

    # Another address behind the same proxy is counted on its own.
    other = await open_socket(client, TRANSPORT, headers={"X-Forwarded-For": "203.0.113.8"})
    # Closing one frees a place for its address.
    await sockets.pop().close()
    for _ in range(int(WAIT / 0.05)):
        try:
            sockets.append(await open_socket(client, TRANSPORT, headers=behind))
            break
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 429
            await asyncio.sleep(0.05)
    else:
        raise AssertionError("the closed socket's place was never freed")
    for ws in [*sockets, other]:
        await ws.close()
