"""Issue 13: what one query may cost, and the session, login and input holes a review found.
Each test here failed on the code before the fix (see the issue's findings 1-9)."""
from __future__ import annotations

import asyncio
import json

import aiohttp

from livecart.models import catalog
from livecart.models.catalog import Vendor
from livecart.schema import build_schema
from livecart.schema.cost import MAX_COST, MAX_RESPONSE_BYTES, unbounded_list_fields
from tests.support import make_vendor, register
from tests.test_ops import LEGACY, TRANSPORT, open_socket, receive, subscribe_message

# The review's query: 117 bytes that multiplied a vendor's 20 products to 160,000 items.
NESTED = "query($v: ID) { products(vendorId: $v) { vendor { products { vendor { products { id } } } } } }"


async def close_code(ws, timeout: float = 10) -> int | None:
    """The code of the server's close frame (aiohttp's client may report 1006 once it has
    answered the close itself, when the server has already dropped the connection)."""
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive()
            if message.type == aiohttp.WSMsgType.CLOSE:
                return message.data
            if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                return ws.close_code


def assert_too_costly(error: dict) -> None:
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", error
    assert error["extensions"]["limit"] == MAX_COST, error
    assert error["extensions"]["cost"] > MAX_COST, error


# ---------------------------------------------------------------- 1. cost of a query

def test_every_list_field_declares_its_bound():
    assert list(unbounded_list_fields(build_schema()._schema)) == []


async def test_nested_lists_are_refused_before_they_run_over_post_and_get(client):
    seller = await make_vendor(client, products=3)
    body = await client.execute(NESTED, {"v": str(seller.vendor_id)})
    assert body.get("data") is None and len(body["errors"]) == 1
    assert_too_costly(body["errors"][0])
    response = await client.http.get("/graphql", params={"query": NESTED, "variables": json.dumps({"v": str(seller.vendor_id)})})
    body = await response.json()
    assert body.get("data") is None
    assert_too_costly(body["errors"][0])
    # Each alias counts: one cheap list is fine, thirty of them over the limit are not.
    cheap = "{ products(first: 100) { vendor { id } } }"
    assert len((await client.data(cheap))["products"]) == 3
    aliased = "{ " + " ".join(f"a{i}: products(first: 100) {{ vendor {{ id }} }}" for i in range(20)) + " }"
    assert_too_costly(await client.error(aliased))
    # Fragments count as what they select.
    fragment = "{ ...F } fragment F on Query { products { vendor { products { vendor { products { id } } } } } }"
    assert_too_costly(await client.error(fragment))


async def test_nested_lists_are_refused_on_both_websocket_protocols(client):
    await make_vendor(client, products=1)
    query = "subscription { streamUpdated(streamId: 1) { featuredProducts { vendor { products { id } } } } }"
    for protocol in (TRANSPORT, LEGACY):
        ws = await open_socket(client, protocol)
        await ws.send_json(subscribe_message(protocol, "1", query, {}))
        message = await receive(ws)
        assert message["type"] == "error", message
        errors = message["payload"] if isinstance(message["payload"], list) else message["payload"].get("errors", [message["payload"]])
        assert_too_costly(errors[0])
        await ws.close()


async def test_lists_take_a_bounded_first_and_the_pages_queries_fit(client):
    seller = await make_vendor(client, products=3)
    assert [p["id"] for p in (await client.data("{ products(first: 2) { id } }"))["products"]] == [
        str(i) for i in sorted(seller.product_ids, reverse=True)[:2]
    ]
    for query in ("{ products(first: 0) { id } }", "{ products(first: 101) { id } }", "{ liveStreams(first: 101) { id } }"):
        error = await client.error(query)
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "first"}, error
    vendor = await client.data(
        "query($v: ID!) { products(vendorId: $v) { vendor { products(first: 1) { id } } } }", {"v": str(seller.vendor_id)}
    )
    assert [len(p["vendor"]["products"]) for p in vendor["products"]] == [1, 1, 1]
    # What the pages ask without arguments stays within the limit.
    home = "{ liveStreams { id title vendor { name } viewerCount durationSeconds featuredProducts { id } } }"
    assert (await client.data(home))["liveStreams"] == []
    seller_page = "{ me { id username vendor { id name products { id name price stock } } } }"
    assert len((await client.data(seller_page, token=seller.token))["me"]["vendor"]["products"]) == 3


async def test_an_empty_selection_set_is_refused_not_a_crash(client):
    for query in ("{ me { } }", "{ products { vendor { } } }", "query { }"):
        body = await client.execute(query)
        assert body.get("data") is None, body
        codes = {error["extensions"]["code"] for error in body["errors"]}
        assert codes <= {"GRAPHQL_VALIDATION_FAILED"}, body


async def test_a_response_over_the_size_bound_is_refused(client):
    seller = await make_vendor(client, products=0)
    vendor = await Vendor.get(id=seller.vendor_id)
    for i in range(100):  # through the model: the per-address product limit is not what is tested here
        await catalog.create_product(vendor, name=f"P{i}", price="1.00", stock=1, description="d" * 5000, image_url=None)
    one = await client.data("{ products(first: 100) { description } }")
    assert len(one["products"]) == 100
    count = MAX_RESPONSE_BYTES // (100 * 5000) + 1
    aliased = "{ " + " ".join(f"a{i}: products(first: 100) {{ description }}" for i in range(count)) + " }"
    error = await client.error(aliased)
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX" and error["extensions"]["limit"] == "responseBytes", error


async def test_becoming_a_vendor_and_creating_products_are_rate_limited(client):
    ann = await register(client, "ann")
    become = 'mutation { becomeVendor(name: "Shop") { id } }'
    assert (await client.data(become, token=ann.token))["becomeVendor"]["id"]
    codes = [(await client.error(become, token=ann.token))["extensions"]["code"] for _ in range(20)]
    assert codes[:19] == ["CONFLICT"] * 19 and codes[19] == "RATE_LIMITED", codes
    create = 'mutation { createProduct(name: "P", price: "1.00", stock: 1) { id } }'
    for _ in range(100):
        await client.data(create, token=ann.token)
    error = await client.error(create, token=ann.token)
    assert error["extensions"]["code"] == "RATE_LIMITED" and error["extensions"]["retryAfter"] > 0
    assert await catalog.Product.filter(vendor__user_id=ann.id).count() == 100


# ---------------------------------------------------------------- 8. reactions only while LIVE

async def test_reactions_and_comments_only_on_live_streams(client):
    from livecart.models import lifecycle
    from livecart.models import stream as streams
    from livecart.models.stream import LiveStream, StreamStatus

    seller = await make_vendor(client)
    alice = await register(client, "alice")
    react = "mutation($s: ID!, $k: ReactionKind!) { react(streamId: $s, kind: $k) { likes dislikes } }"
    clear = "mutation($s: ID!) { clearReaction(streamId: $s) { likes dislikes } }"
    comment = 'mutation($s: ID!) { postComment(streamId: $s, text: "hi") { id } }'
    scheduled = await streams.create_stream(seller.vendor_id, title="Later")
    for query, variables in ((react, {"k": "LIKE"}), (comment, {})):
        error = await client.error(query, {"s": str(scheduled.id), **variables}, token=alice.token)
        assert error["extensions"]["code"] == "CONFLICT", error

    live = await streams.start_stream(await streams.create_stream(seller.vendor_id, title="Now"))
    assert (await client.data(react, {"s": str(live.id), "k": "LIKE"}, token=alice.token))["react"] == {"likes": 1, "dislikes": 0}
    await lifecycle.end_stream(live, save=False, video_url=None, recording_url="https://x/r.mp4")
    for query, variables in ((react, {"k": "DISLIKE"}), (clear, {}), (comment, {})):
        error = await client.error(query, {"s": str(live.id), **variables}, token=alice.token)
        assert error["extensions"]["code"] == "CONFLICT", error
    ended = await LiveStream.get(id=live.id)
    assert (ended.status, ended.likes, ended.dislikes, ended.comment_count) == (StreamStatus.ENDED, 1, 0, 0)


# ---------------------------------------------------------------- 9. malformed legacy graphql-ws messages

async def test_malformed_legacy_messages_are_answered_without_a_traceback(client, caplog):
    import logging

    caplog.set_level(logging.INFO)
    named = [  # an operation can be named: an error for it, and the connection goes on
        {"type": "start", "id": "a", "payload": "x"},
        {"type": "start", "id": "a", "payload": [1]},
        {"type": "start", "id": "a", "payload": {"query": 1}},
        {"type": "start", "id": "a", "payload": {"query": "subscription { viewerCount(streamId: 1) { count } }", "operationName": 5}},
        {"type": "start", "id": "a", "payload": {"query": "{ me { id } }", "variables": [1]}},
    ]
    ws = await open_socket(client, LEGACY)
    for message in named:
        await ws.send_json(message)
        answer = await receive(ws)
        assert answer["type"] == "error" and answer["id"] == "a", answer
        assert answer["payload"]["extensions"]["code"] == "BAD_USER_INPUT", answer
    await ws.close()
    unnamed = [[1, 2], "start", {"type": 7}, {"type": "start", "id": 3, "payload": {"query": "{ me { id } }"}}, {"type": "stop", "id": None}]
    for message in unnamed:
        ws = await open_socket(client, LEGACY)
        await ws.send_json(message)
        assert await close_code(ws) == 4400, message
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]
    malformed = [r for r in caplog.records if r.getMessage().startswith("malformed graphql-ws message")]
    assert len(malformed) == len(named) + len(unnamed) and all(r.levelno == logging.INFO for r in malformed)


# ---------------------------------------------------------------- 5. login limits a stranger cannot turn against the owner

LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token user { username } } }"


async def login_from(client, address: str, username: str, password: str) -> dict:
    response = await client.http.post(
        "/graphql", json={"query": LOGIN, "variables": {"u": username, "p": password}}, headers={"X-Forwarded-For": address}
    )
    return await response.json()


async def test_a_strangers_failed_logins_do_not_lock_the_owner_out(aiohttp_client, settings):
    from livecart.server.app import create_app
    from livecart.resolvers.ratelimit import LOGIN_ADDRESS, LOGIN_USERNAME
    from tests.support import GraphQLClient

    client = GraphQLClient(await aiohttp_client(create_app(settings.replace(trusted_proxies="127.0.0.1"))))
    await register(client, "alice")
    stranger, owner = "203.0.113.66", "198.51.100.7"
    for i in range(LOGIN_USERNAME.count):  # any letter case: the same account
        body = await login_from(client, stranger, "ALICE" if i % 2 else "alice", "wrong guess")
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    body = await login_from(client, stranger, "alice", "correct horse")
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"  # the stranger's own pair is spent
    body = await login_from(client, owner, "alice", "correct horse")
    assert body["data"]["login"]["user"]["username"] == "alice", body  # the owner is not locked out
    # Successful logins are not failures: the owner may log in again and again.
    for _ in range(LOGIN_USERNAME.count + 1):
        assert "errors" not in await login_from(client, owner, "Alice", "correct horse")
    # An address that guesses across many accounts is stopped by its own count.
    third = "192.0.2.9"
    for i in range(LOGIN_ADDRESS.count):
        body = await login_from(client, third, f"nobody{i}", "guess guess")
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    body = await login_from(client, third, "alice", "correct horse")
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


# ---------------------------------------------------------------- 6. look-alike usernames

async def test_usernames_are_unique_under_case_folding_and_log_in_by_any_case(client):
    alice = await register(client, "alice")
    for look_alike in ("Alice", "ALICE", "aLiCe"):
        error = await client.error(
            "mutation($u: String!) { register(username: $u, password: \"correct horse\") { token } }", {"u": look_alike}
        )
        assert error["extensions"]["code"] == "CONFLICT", error
    body = await client.data(LOGIN, {"u": "ALICE", "p": "correct horse"})
    assert body["login"]["user"]["username"] == "alice"
    from livecart.models.user import User, fold_username

    assert await User.filter(username_folded=fold_username("ＡＬＩＣＥ")).count() == 1  # NFKC: fullwidth letters fold too
    assert (await User.get(id=alice.id)).username_folded == "alice"


async def test_migration_0004_renames_existing_look_alikes_and_says_so(backend, tmp_path, caplog):
    import asyncio
    import logging
    from urllib.parse import urlsplit, urlunsplit

    from tortoise import Tortoise
    from tortoise.migrations.api import migrate as run_migrations

    from livecart.server import db
    from livecart.server.settings import Settings
    from tests.conftest import TEST_DATABASE_URL, run_blocking

    if backend == "embedded":
        url = f"sqlite://{tmp_path / 'm.sqlite3'}"
        insert = "INSERT INTO users (username, password_hash, created_at) VALUES ('{}', 'x', CURRENT_TIMESTAMP)"
    else:  # a database of its own: the suite's shared one is already migrated
        import asyncpg

        parts = urlsplit(TEST_DATABASE_URL)
        name = parts.path.lstrip("/") + "_m0004"
        url = urlunsplit(parts._replace(path=f"/{name}"))

        async def recreate(create: bool = True) -> None:
            conn = await asyncpg.connect(TEST_DATABASE_URL)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                if create:
                    await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        run_blocking(recreate())
        insert = "INSERT INTO users (username, password_hash, created_at) VALUES ('{}', 'x', now())"
    config = db.tortoise_config(Settings(database_url=url), bounded=False)

    async def at_0003_then_latest() -> list:
        await run_migrations(config=config, target="models.0003_restore_indexes_on_sqlite")
        client = Tortoise.get_connection(next(iter(config["connections"])))
        for username in ("alice", "Alice", "bob", "ALICE", "alice-4"):
            await client.execute_script(insert.format(username))
        await run_migrations(config=config)
        client = Tortoise.get_connection(next(iter(config["connections"])))
        rows = await client.execute_query_dict("SELECT id, username, username_folded FROM users ORDER BY id")
        await Tortoise.close_connections()
        return rows

    caplog.set_level(logging.INFO, logger="livecart.migrations")
    try:
        rows = await asyncio.get_running_loop().run_in_executor(None, run_blocking, at_0003_then_latest())
    finally:
        if backend != "embedded":
            run_blocking(recreate(create=False))
    assert [(r["id"], r["username"], r["username_folded"]) for r in rows] == [
        (1, "alice", "alice"), (2, "Alice-2", "alice-2"), (3, "bob", "bob"), (4, "ALICE-4-1", "alice-4-1"), (5, "alice-4", "alice-4"),
    ]
    renamed = [r.getMessage() for r in caplog.records if "renamed to" in r.getMessage()]
    assert len(renamed) == 2 and "'Alice'" in renamed[0] and "'Alice-2'" in renamed[0], renamed
    assert any("renamed 2 look-alike" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- 3, 4. a socket's login ends with its token

STATS_SUBSCRIPTION = "subscription($s: ID!) { streamStats(streamId: $s) { viewerCount } }"


async def test_a_socket_is_closed_when_its_token_expires(aiohttp_client, settings):
    from livecart.server.app import create_app
    from tests.realtime_support import live_stream
    from tests.support import GraphQLClient
    client = GraphQLClient(await aiohttp_client(create_app(settings.replace(token_ttl_seconds=2))))
    seller = await make_vendor(client, products=0)
    stream = await live_stream(seller)
    for protocol in (TRANSPORT, LEGACY):
        login = await client.data('mutation { login(username: "seller", password: "correct horse") { token } }')
        token = login["login"]["token"]
        ws = await client.http.ws_connect("/graphql", protocols=[protocol], heartbeat=None)
        await ws.send_json({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        assert (await receive(ws))["type"] == "connection_ack"
        await ws.send_json(subscribe_message(protocol, "1", STATS_SUBSCRIPTION, {"s": str(stream.id)}))
        assert (await receive(ws))["payload"]["data"]["streamStats"]["viewerCount"] == 0
        # The owner-only figures end with the token (two seconds): the server closes with 4403.
        assert await close_code(ws) == 4403
        assert (await client.data("{ me { id } }", token=token))["me"] is None  # dead over HTTP too


async def test_logout_closes_sockets_authenticated_by_the_upgrade_header_on_both_protocols(client):
    from tests.realtime_support import live_stream
    seller = await make_vendor(client, products=0)
    stream = await live_stream(seller)
    for protocol in (LEGACY, TRANSPORT):
        login = await client.data('mutation { login(username: "seller", password: "correct horse") { token } }')
        token = login["login"]["token"]
        ws = await client.http.ws_connect(
            "/graphql", protocols=[protocol], heartbeat=None, headers={"Authorization": f"Bearer {token}"}
        )
        await ws.send_json({"type": "connection_init"})  # no payload: the header authenticates
        assert (await receive(ws))["type"] == "connection_ack"
        await ws.send_json(subscribe_message(protocol, "1", STATS_SUBSCRIPTION, {"s": str(stream.id)}))
        assert (await receive(ws))["payload"]["data"]["streamStats"]["viewerCount"] == 0
        assert (await client.data("mutation { logout }", token=token))["logout"] is True
        assert await close_code(ws) == 4403, protocol
    # A header naming no live token is refused like a payload would be.
    ws = await client.http.ws_connect("/graphql", protocols=[TRANSPORT], heartbeat=None, headers={"Authorization": "Bearer nope"})
    await ws.send_json({"type": "connection_init"})
    assert await close_code(ws) == 4403


# ---------------------------------------------------------------- 2. return paths after login

HOSTILE_RETURNS = [
    "/.//evil.example", "//x", "/\\x", "/\\/evil.example", "/\t/evil.example", "/\n/evil.example", "\t//evil.example",
    "https://evil.example", "http:evil.example", "javascript:alert(1)", "/%2e//evil.example", "/a/../..//evil.example",
    "/./\\evil.example", " //evil.example", "",
]


def test_return_paths_keep_only_this_sites_pages():
    from livecart.server.return_path import safe_return_path

    for value in HOSTILE_RETURNS:
        assert safe_return_path(value) == "/", value
    assert safe_return_path("/%09/x") == "/%09/x"  # percent-encoded: a path segment named "%09", on this site
    assert safe_return_path("/live/3?x=1#chat") == "/live/3?x=1#chat"
    assert safe_return_path("/x/../seller?stream=2") == "/seller?stream=2"


async def test_the_login_page_is_served_with_the_servers_decision(client):
    import html
    import re
    from urllib.parse import quote

    for value in HOSTILE_RETURNS + ["/%09/x", "/live/7"]:
        response = await client.http.get(f"/login?return={quote(value, safe='')}")
        page = await response.text()
        [served] = re.findall(r'<meta name="return-to" content="([^"]*)">', page)
        from livecart.server.return_path import safe_return_path

        assert html.unescape(served) == safe_return_path(value), (value, served)
    # The server's own login URLs go through the same function.
    from livecart.server.settings import Settings

    assert Settings().login_url_for("/.//evil.example") == "/login"
    assert Settings().login_url_for("/live/3") == "/login?return=/live/3"


# ---------------------------------------------------------------- 7. money past what the database holds

async def test_totals_past_the_money_column_are_refused_naming_the_limit(client):
    from decimal import Decimal

    from livecart.models.catalog import Product
    from livecart.models.commerce import CartItem, Order
    from livecart.models.fields import MAX_TOTAL
    from livecart.models.stream import LiveStream
    from tests.realtime_support import live_stream

    seller = await make_vendor(client, products=2, price="99999999.99", stock=1000)
    buyer = await register(client, "buyer")
    add = "mutation($p: ID!, $q: Int!) { addToCart(productId: $p, quantity: $q) { total } }"
    first, second = (str(p) for p in seller.product_ids)
    assert (await client.data(add, {"p": first, "q": 100}, token=buyer.token))["addToCart"]["total"] == "9999999999.00"
    error = await client.error(add, {"p": second, "q": 100}, token=buyer.token)  # 19,999,999,998.00 in all
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "quantity", "limit": str(MAX_TOTAL)}, error
    assert await CartItem.filter(user_id=buyer.id).count() == 1

    # A cart that got there anyway (a price raised since) is refused at checkout, nothing taken.
    await CartItem.create(user_id=buyer.id, product_id=int(second), quantity=100)
    error = await client.error("mutation { checkout { id } }", token=buyer.token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["limit"] == str(MAX_TOTAL), error
    assert await Order.all().count() == 0
    assert [p.stock for p in await Product.filter(vendor_id=seller.vendor_id).order_by("id")] == [1000, 1000]

    # A purchase that would take a stream's revenue past it.
    stream = await live_stream(seller)
    await LiveStream.filter(id=stream.id).update(revenue=Decimal("9999999000.00"))
    buy = "mutation($p: ID!, $s: ID!) { buyNow(productId: $p, quantity: 1, streamId: $s) { id } }"
    error = await client.error(buy, {"p": first, "s": str(stream.id)}, token=buyer.token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["limit"] == str(MAX_TOTAL), error
    assert (await LiveStream.get(id=stream.id)).revenue == Decimal("9999999000.00")
    assert await Order.all().count() == 0 and (await Product.get(id=int(first))).stock == 1000


def test_every_query_the_pages_send_fits_the_cost_limit():
    """The pages' documents, read from client/static (their ${...} pieces filled in), all within MAX_COST."""
    import pathlib
    import re

    from graphql import parse
    from graphql.utilities import TypeInfo
    from graphql.validation import ValidationContext

    from livecart.schema.cost import document_cost

    schema = build_schema()._schema
    checked = 0
    for path in sorted(pathlib.Path(__file__).resolve().parent.parent.joinpath("client", "static").glob("*.js")):
        text = path.read_text()
        pieces = dict(re.findall(r'const (\w+) = "([^"]*)";', text))
        for name, body in re.findall(r"const (\w+) = `([^`]*)`;", text):
            query = re.sub(r"\$\{(\w+)\}", lambda m: pieces.get(m[1], "id"), body)
            if not re.match(r"\s*(query|mutation|subscription|\{)", query):
                continue
            document = parse(query)
            context = ValidationContext(schema, document, TypeInfo(schema), lambda error: None)
            for operation in document.definitions:
                cost, empty = document_cost(context, operation)
                assert cost <= MAX_COST and not empty, (path.name, name, cost)
                checked += 1
    assert checked >= 20, checked
