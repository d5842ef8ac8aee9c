"""Subscriptions over a real WebSocket, on the in-process broker (sqlite) and on Redis (postgres)."""
from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import pytest
import websockets

from livecart.client.livecart_client import LivecartClient, LivecartError
from livecart.models.catalog import Product
from livecart.models.stream import LiveStream, StreamStatus
from livecart.models import events
from livecart.subscriptions.hub import COALESCED
from tests.realtime_support import (
    COMMENTS, ORDERS, REACTIONS, STATS, UPDATES, VIEWERS, WAIT, RawWebSocket, base_url, broker_of, comment_row,
    listening, live_stream, next_of, publish, pump, until, view_of, viewers_now,
)
from tests.conftest import SERVICES_BACKEND, TEST_REDIS_URL
from tests.support import count_queries, make_vendor, register


async def test_comment_reaches_every_subscriber_once(client):
    seller = await make_vendor(client)
    ann = await register(client, "ann")
    stream = await live_stream(seller)
    async with LivecartClient(base_url(client)) as first, LivecartClient(base_url(client), ann.token) as second:
        a = first.subscribe(COMMENTS, {"s": str(stream.id)})
        b = second.subscribe(COMMENTS, {"s": str(stream.id)})
        pending = [asyncio.ensure_future(next_of(a)), asyncio.ensure_future(next_of(b))]
        await listening(client, stream.id, 2)
        row = await comment_row(stream.id, ann.id, "hello")
        await publish(client, stream.id, events.comment_added(stream.id, row.id))
        for result in await asyncio.gather(*pending):
            assert result["commentAdded"] == {
                "id": str(row.id), "streamId": str(stream.id), "text": "hello", "author": {"username": "ann"}
            }
        # An event on another stream is not delivered here.
        other = await live_stream(seller, "Other")
        await publish(client, other.id, events.comment_added(other.id, row.id))
        second_row = await comment_row(stream.id, ann.id, "again")
        await publish(client, stream.id, events.comment_added(stream.id, second_row.id))
        assert (await next_of(a))["commentAdded"]["text"] == "again"
        await a.aclose()
        await b.aclose()


@pytest.mark.parametrize("backend", [SERVICES_BACKEND])  # Redis only
async def test_one_redis_subscription_per_channel_however_many_sockets(client):
    import redis.asyncio as redis

    seller = await make_vendor(client)
    stream, other = await live_stream(seller), await live_stream(seller, "Other")
    channel = broker_of(client)._prefix + f"stream:{stream.id}"
    other_channel = broker_of(client)._prefix + f"stream:{other.id}"
    observer = redis.from_url(TEST_REDIS_URL)
    viewers = [LivecartClient(base_url(client)) for _ in range(12)]
    try:
        connections = [await viewer.connect() for viewer in viewers]
        feeds = [await c.start(COMMENTS, {"s": str(stream.id)}) for c in connections]
        for c in connections:
            await c.start(VIEWERS, {"s": str(stream.id)})
        await connections[0].start(VIEWERS, {"s": str(other.id)})
        await listening(client, stream.id, 24)
        numsub = dict(await observer.pubsub_numsub(channel, other_channel))
        assert numsub == {channel.encode(): 1, other_channel.encode(): 1}  # not 12: one per process

        row = await comment_row(stream.id, seller.id, "to all twelve")
        await publish(client, stream.id, events.comment_added(stream.id, row.id))
        for feed in feeds:
            assert (await next_of(feed))["commentAdded"]["text"] == "to all twelve"

        # The last local subscriber gone, the process lets go of the channel.
        for c in connections:
            await c.close()
        for _ in range(100):
            if dict(await observer.pubsub_numsub(channel)) == {channel.encode(): 0}:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the channel is still subscribed with no local subscriber left")
    finally:
        for viewer in viewers:
            await viewer.close()
        await observer.aclose()


async def test_alike_subscribers_share_one_execution_per_event(client):
    """25 subscriptions with one document and one with another: each comment is read once for all of
    them (statements do not grow with subscribers), every subscriber gets every comment, in order."""
    seller = await make_vendor(client)
    ann = await register(client, "ann")
    stream = await live_stream(seller)
    other_document = "subscription($s: ID!) { commentAdded(streamId: $s) { text } }"
    async with LivecartClient(base_url(client)) as viewer, LivecartClient(base_url(client), ann.token) as ann_viewer:
        alike = [viewer.subscribe(COMMENTS, {"s": str(stream.id)}) for _ in range(20)]
        alike += [ann_viewer.subscribe(COMMENTS, {"s": str(stream.id)}) for _ in range(5)]
        other = viewer.subscribe(other_document, {"s": str(stream.id)})
        queues = [pump(results) for results in [*alike, other]]
        await listening(client, stream.id, 26)
        # Each has read the stream and the log's head and joined its group: their set-up's statements
        # are done before the counting starts.
        await until(lambda: grouped_count(client, stream.id) == 26)
        rows = [await comment_row(stream.id, ann.id, f"comment {n}") for n in range(3)]
        with count_queries() as statements:
            for row in rows:
                await publish(client, stream.id, events.comment_added(stream.id, row.id))
            received = [[await asyncio.wait_for(queue.get(), WAIT) for _ in rows] for queue in queues]
        for results in received[:-1]:
            assert [r["commentAdded"] for r in results] == [
                {"id": str(row.id), "streamId": str(stream.id), "text": row.comment_text, "author": {"username": "ann"}}
                for row in rows
            ]
        assert [r["commentAdded"] for r in received[-1]] == [{"text": row.comment_text} for row in rows]
        # The comment and its author, once per comment for everybody; one subscriber alone costs the same.
        assert len(statements) <= 2 * len(rows), statements
        for queue in queues:
            queue.task.cancel()


def grouped_count(client, stream_id: int) -> int:
    """Subscribers of the stream on the shared path (subscriptions/shared.py)."""
    groups = broker_of(client).hub._groups.get(f"stream:{stream_id}", {})
    return sum(len(group.members) for group in groups.values())


def detached_count(client, stream_id: int) -> int:
    """Subscribers of the stream whose own chain has ended: their group carries them (subscriptions/shared.py)."""
    groups = broker_of(client).hub._groups.get(f"stream:{stream_id}", {})
    return sum(1 for group in groups.values() for delivery in group.members.values() if delivery.detached)


async def test_idle_subscribers_leave_their_chain_and_still_end_as_before(client):
    """An idle commentAdded subscriber keeps no per-subscriber chain; its group still delivers, a client's
    complete or a closed connection takes it out, and the stream's end completes it."""
    seller = await make_vendor(client)
    ann = await register(client, "ann")
    stream = await live_stream(seller)
    channel = f"stream:{stream.id}"
    hub = broker_of(client).hub
    async with LivecartClient(base_url(client)) as viewer:
        connection = await viewer.connect()
        kept, stopped, other = [await connection.start(COMMENTS, {"s": str(stream.id)}) for _ in range(3)]
        closing = await viewer.connect()
        dropped = await closing.start(COMMENTS, {"s": str(stream.id)})
        queues = [pump(results) for results in (kept, stopped, other, dropped)]
        await listening(client, stream.id, 4)
        await until(lambda: detached_count(client, stream.id) == 4)

        row = await comment_row(stream.id, ann.id, "hello")
        await publish(client, stream.id, events.comment_added(stream.id, row.id))
        for queue in queues:
            assert (await asyncio.wait_for(queue.get(), WAIT))["commentAdded"]["text"] == "hello"

        queues[1].task.cancel()  # the client completes this one
        await closing.close()  # and drops that connection
        await until(lambda: hub.subscriber_count(channel) == 2)
        assert detached_count(client, stream.id) == 2

        await LiveStream.filter(id=stream.id).update(status=StreamStatus.ENDED)
        await publish(client, stream.id, events.stream_updated(stream.id))
        # The server completes both: each iteration ends on its own, with nothing more.
        await asyncio.wait_for(asyncio.gather(queues[0].task, queues[2].task), WAIT)
        assert queues[0].empty() and queues[2].empty()
        await until(lambda: hub.subscriber_count(channel) == 0)
        await connection.close()


async def test_viewer_count_now_then_coalesced_changes_then_final_state(client):
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    await LiveStream.filter(id=stream.id).update(viewer_count=7, peak_viewers=7)
    async with LivecartClient(base_url(client)) as viewer:
        counts = viewer.subscribe(VIEWERS, {"s": str(stream.id)})
        assert (await next_of(counts))["viewerCount"] == {"streamId": str(stream.id), "count": 7}
        started = time.monotonic()
        for n in range(8, 58):  # fifty changes at once
            await viewers_now(client, stream.id, n)
        took = time.monotonic() - started
        seen = [(await next_of(counts))["viewerCount"]["count"]]
        while seen[-1] != 57:
            seen.append((await next_of(counts))["viewerCount"]["count"])
        # The first change at once, the rest collapsed into the newest: at most one message per
        # interval while the changes last (a loaded machine stretches the fifty over a few
        # intervals), never fifty messages.
        interval = COALESCED["viewers_changed"][1]
        assert len(seen) <= 2 + took / interval and seen == sorted(seen) and seen[0] >= 8, (seen, took)
        assert len(seen) < 50, seen

        await LiveStream.filter(id=stream.id).update(status=StreamStatus.ENDED, viewer_count=0)
        await publish(client, stream.id, events.stream_updated(stream.id))
        assert (await next_of(counts))["viewerCount"]["count"] == 0
        with pytest.raises(StopAsyncIteration):  # the server completed the subscription
            await next_of(counts)


async def test_reactions_and_stream_updates_carry_fresh_rows(client):
    seller = await make_vendor(client, products=1, stock=10)
    stream = await live_stream(seller)
    async with LivecartClient(base_url(client)) as viewer:
        connection = await viewer.connect()
        reactions = await connection.start(REACTIONS, {"s": str(stream.id)})
        updates = await connection.start(UPDATES, {"s": str(stream.id)})
        assert (await next_of(reactions))["reactionsChanged"] == {"likes": 0, "dislikes": 0}
        await LiveStream.filter(id=stream.id).update(likes=3, dislikes=1)
        await publish(client, stream.id, events.reactions_changed(stream.id))
        assert (await next_of(reactions))["reactionsChanged"] == {"likes": 3, "dislikes": 1}

        # Events only say the counts moved (another process's may arrive late through Redis):
        # what is sent is read from the stream, so it is what the stream holds now.
        await LiveStream.filter(id=stream.id).update(likes=4, dislikes=1)
        await publish(client, stream.id, events.reactions_changed(stream.id), events.reactions_changed(stream.id))
        seen = (await next_of(reactions))["reactionsChanged"]
        while seen != {"likes": 4, "dislikes": 1}:
            assert seen == {"likes": 4, "dislikes": 1} or seen["likes"] >= 3, seen
            seen = (await next_of(reactions))["reactionsChanged"]

        # The connection's Context lives on; each event must read the stock anew.
        product_id = seller.product_ids[0]
        for stock in (9, 4):
            await Product.filter(id=product_id).update(stock=stock)
            await publish(client, stream.id, events.stream_updated(stream.id))
            update = (await next_of(updates))["streamUpdated"]
            assert update["status"] == "LIVE"
            assert update["featuredProducts"] == [{"id": str(product_id), "stock": stock}]

        await LiveStream.filter(id=stream.id).update(status=StreamStatus.ENDED)
        await publish(client, stream.id, events.stream_updated(stream.id))
        assert (await next_of(updates))["streamUpdated"]["status"] == "ENDED"
        assert "reactionsChanged" in await next_of(reactions)  # the final figures
        for finished in (updates, reactions):
            with pytest.raises(StopAsyncIteration):
                await next_of(finished)
        await connection.close()


async def test_the_mutations_reach_every_subscription_and_ending_completes_them_all(client):
    """End to end, as the pages use it: API mutations publish, every contract subscription hears."""
    seller = await make_vendor(client, products=2, price="2.50", stock=5)
    buyer = await register(client, "buyer")
    created = await client.data(
        "mutation($p: [ID!]!) { createStream(title: \"All of it\", productIds: $p) { id } }",
        {"p": [str(p) for p in seller.product_ids]}, token=seller.token,
    )
    stream_id = created["createStream"]["id"]
    await client.data("mutation($id: ID!) { startStream(id: $id) { id } }", {"id": stream_id}, token=seller.token)
    first, second = (str(p) for p in seller.product_ids)

    async with LivecartClient(base_url(client), seller.token) as owner:
        connection = await owner.connect()
        feeds = {
            name: pump(await connection.start(query, {"s": stream_id}))
            for name, query in (("comments", COMMENTS), ("viewers", VIEWERS), ("reactions", REACTIONS),
                                ("updates", UPDATES), ("orders", ORDERS), ("stats", STATS))
        }

        async def heard(name: str, check) -> dict:
            """The first result on that feed that passes `check` (coalesced figures may skip values)."""
            while True:
                result = await asyncio.wait_for(feeds[name].get(), WAIT)
                if check(result):
                    return result

        await heard("viewers", lambda r: r["viewerCount"]["count"] == 0)
        await heard("stats", lambda r: r["streamStats"]["orders"] == 0)
        await listening(client, int(stream_id), 6)

        await client.data("mutation($s: ID!) { joinStream(streamId: $s) { id } }", {"s": stream_id}, token=buyer.token)
        await heard("viewers", lambda r: r["viewerCount"]["count"] == 1)
        await client.data("mutation($s: ID!) { react(streamId: $s, kind: LIKE) { likes } }", {"s": stream_id}, token=buyer.token)
        await heard("reactions", lambda r: r["reactionsChanged"] == {"likes": 1, "dislikes": 0})
        await client.data(
            "mutation($s: ID!) { postComment(streamId: $s, text: \"  hello  \") { id } }", {"s": stream_id}, token=buyer.token
        )
        comment = await heard("comments", lambda r: True)
        assert comment["commentAdded"]["text"] == "hello" and comment["commentAdded"]["author"] == {"username": "buyer"}

        await client.data(
            "mutation($p: ID!, $s: ID!) { buyNow(productId: $p, quantity: 2, streamId: $s) { id } }",
            {"p": first, "s": stream_id}, token=buyer.token,
        )
        order = (await heard("orders", lambda r: True))["orderPlaced"]
        assert (order["quantity"], order["amount"], order["product"]) == (2, "5.00", {"id": first})
        await heard("updates", lambda r: {"id": first, "stock": 3} in r["streamUpdated"]["featuredProducts"])
        figures = (await heard("stats", lambda r: r["streamStats"]["orders"] == 1))["streamStats"]
        assert (figures["revenue"], figures["likes"], figures["comments"], figures["viewerCount"]) == ("5.00", 1, 1, 1)

        await client.data(
            "mutation($s: ID!, $p: ID!) { featureProduct(streamId: $s, productId: $p) { id } }",
            {"s": stream_id, "p": second}, token=seller.token,
        )
        await heard("updates", lambda r: r["streamUpdated"]["featuredProducts"][0]["id"] == second)

        await client.data(
            "mutation($id: ID!) { endStream(id: $id, action: SAVE) { stats { orders } } }", {"id": stream_id}, token=seller.token
        )
        await heard("updates", lambda r: r["streamUpdated"]["status"] == "ENDED")
        await heard("viewers", lambda r: r["viewerCount"]["count"] == 0)  # the sessions closed with it
        # Every subscription completes: each feed's task ends, none waits for ever.
        await asyncio.wait_for(asyncio.gather(*(feed.task for feed in feeds.values())), WAIT)
        await connection.close()


async def test_an_ended_stream_sends_its_final_state_and_completes(client):
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    await LiveStream.filter(id=stream.id).update(status=StreamStatus.ENDED, viewer_count=0)
    async with LivecartClient(base_url(client), seller.token) as owner:
        assert [r async for r in owner.subscribe(VIEWERS, {"s": str(stream.id)})] == [
            {"viewerCount": {"streamId": str(stream.id), "count": 0}}
        ]
        assert [r async for r in owner.subscribe(COMMENTS, {"s": str(stream.id)})] == []
        stats = [r async for r in owner.subscribe(STATS, {"s": str(stream.id)})]
        assert len(stats) == 1 and stats[0]["streamStats"]["streamId"] == str(stream.id)


async def test_owner_only_subscriptions_refuse_others_and_the_connection_goes_on(client):
    seller = await make_vendor(client)
    ann = await register(client, "ann")
    stream = await live_stream(seller)
    async with LivecartClient(base_url(client), ann.token) as viewer:
        connection = await viewer.connect()
        counts = await connection.start(VIEWERS, {"s": str(stream.id)})
        assert (await next_of(counts))["viewerCount"]["count"] == 0
        for owner_only in (ORDERS, STATS):
            with pytest.raises(LivecartError) as refused:
                await next_of(await connection.start(owner_only, {"s": str(stream.id)}))
            assert refused.value.code == "FORBIDDEN"
        await viewers_now(client, stream.id, 5)
        assert (await next_of(counts))["viewerCount"]["count"] == 5
        await connection.close()

    async with LivecartClient(base_url(client)) as anonymous:
        with pytest.raises(LivecartError) as refused:
            await next_of(anonymous.subscribe(ORDERS, {"s": str(stream.id)}))
        assert refused.value.code == "UNAUTHENTICATED"
        with pytest.raises(LivecartError) as missing:
            await next_of(anonymous.subscribe(VIEWERS, {"s": "999999"}))
        assert missing.value.code == "NOT_FOUND"


async def test_owner_follows_orders_and_coalesced_stats(client):
    from livecart.models.commerce import Order, StreamOrder

    seller = await make_vendor(client, products=1, price="5.00")
    buyer = await register(client, "buyer")
    stream = await live_stream(seller)
    async with LivecartClient(base_url(client), seller.token) as owner:
        connection = await owner.connect()
        orders = await connection.start(ORDERS, {"s": str(stream.id)})
        stats = await connection.start(STATS, {"s": str(stream.id)})
        assert (await next_of(stats))["streamStats"]["orders"] == 0
        await listening(client, stream.id, 2)

        order = await Order.create(buyer_id=buyer.id, total=Decimal("10.00"))
        row = await StreamOrder.create(
            order_id=order.id, stream_id=stream.id, product_id=seller.product_ids[0], vendor_id=seller.vendor_id,
            buyer_id=buyer.id, quantity=2, amount=Decimal("10.00"),
        )
        await LiveStream.filter(id=stream.id).update(order_count=1, items_sold=2, revenue=Decimal("10.00"))
        await publish(client, stream.id, events.order_placed(stream.id, row.id), events.stats_changed(stream.id))
        assert (await next_of(orders))["orderPlaced"] == {
            "id": str(row.id), "quantity": 2, "amount": "10.00", "buyer": {"username": "buyer"},
            "product": {"id": str(seller.product_ids[0])},
        }
        figures = (await next_of(stats))["streamStats"]
        assert figures["orders"] == 1 and figures["revenue"] == "10.00"
        await connection.close()


async def test_reactions_and_stats_are_coalesced_however_fast_they_change(client):
    from livecart.subscriptions.hub import COALESCED

    seller = await make_vendor(client)
    stream = await live_stream(seller)
    async with LivecartClient(base_url(client), seller.token) as owner:
        connection = await owner.connect()
        reactions = await connection.start(REACTIONS, {"s": str(stream.id)})
        stats = await connection.start(STATS, {"s": str(stream.id)})
        assert (await next_of(reactions))["reactionsChanged"]["likes"] == 0
        assert (await next_of(stats))["streamStats"]["likes"] == 0

        loop = asyncio.get_running_loop()
        began = loop.time()
        for likes in range(1, 51):  # fifty changes as fast as the database takes them
            await LiveStream.filter(id=stream.id).update(likes=likes)
            await publish(client, stream.id, events.reactions_changed(stream.id))
        burst = loop.time() - began

        for feed, field, (_, interval) in (
            (reactions, "reactionsChanged", COALESCED["reactions_changed"]),
            (stats, "streamStats", COALESCED["stats_changed"]),
        ):
            seen = [(await next_of(feed))[field]["likes"]]
            while seen[-1] != 50:
                seen.append((await next_of(feed))[field]["likes"])
            # One at once, then at most one per interval while it lasts, and the newest last.
            assert len(seen) <= 2 + int(burst / interval), (field, burst, seen)
        await connection.close()


async def test_the_python_clients_follow_outlives_a_dropped_connection_and_catches_up(client):
    from livecart.server.ops import WEBSOCKETS

    seller = await make_vendor(client)
    stream = await live_stream(seller)
    catch_ups: list[int] = []

    async def catch_up() -> None:
        catch_ups.append(stream.id)

    async with LivecartClient(base_url(client)) as viewer:
        counts = viewer.follow(VIEWERS, {"s": str(stream.id)}, on_reconnect=catch_up)
        assert (await next_of(counts))["viewerCount"]["count"] == 0
        # Every socket dropped under it (a restart, a load balancer's cut): the count moves meanwhile.
        sockets = list(client.http.server.app[WEBSOCKETS])
        assert len(sockets) == 1
        await asyncio.gather(*(ws.close(code=1012) for ws in sockets))
        await viewers_now(client, stream.id, 4)
        seen = (await next_of(counts))["viewerCount"]["count"]
        while seen != 4:
            seen = (await next_of(counts))["viewerCount"]["count"]
        assert catch_ups == [stream.id]  # once, when the new subscription answered
        await viewers_now(client, stream.id, 5)
        assert (await next_of(counts))["viewerCount"]["count"] == 5
        await counts.aclose()

    # An error that is not the connection's is the caller's to see, not retried.
    async with LivecartClient(base_url(client)) as stranger:
        with pytest.raises(LivecartError) as refused:
            await next_of(stranger.follow(ORDERS, {"s": str(stream.id)}))
        assert refused.value.code == "UNAUTHENTICATED"


async def test_bad_token_closes_with_4403_and_a_good_one_is_accepted(client):
    ann = await register(client, "ann")
    async with LivecartClient(base_url(client), "not-a-token") as stranger:
        with pytest.raises(LivecartError) as refused:
            await stranger.connect()
    assert "4403" in str(refused.value)
    async with LivecartClient(base_url(client), ann.token) as member:
        connection = await member.connect()
        await connection.close()


async def test_logging_out_closes_the_connections_that_token_opened(client):
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    login = 'mutation { login(username: "seller", password: "correct horse") { token } }'
    elsewhere_token = (await client.data(login))["login"]["token"]  # the same seller on another device
    async with LivecartClient(base_url(client), seller.token) as here, LivecartClient(base_url(client), elsewhere_token) as elsewhere:
        here_connection, elsewhere_connection = await here.connect(), await elsewhere.connect()
        here_stats = await here_connection.start(STATS, {"s": str(stream.id)})
        elsewhere_stats = await elsewhere_connection.start(STATS, {"s": str(stream.id)})
        for feed in (here_stats, elsewhere_stats):
            assert (await next_of(feed))["streamStats"]["viewerCount"] == 0

        assert (await client.data("mutation { logout }", token=seller.token))["logout"] is True
        with pytest.raises(LivecartError) as ended:
            await next_of(here_stats)  # the owner-only figures stop with the token
        assert ended.value.code == "CLOSED" and here_connection.close_code == 4403

        await viewers_now(client, stream.id, 2)  # the other token's connection goes on
        assert (await next_of(elsewhere_stats))["streamStats"]["viewerCount"] == 2
        await elsewhere_connection.close()


async def test_legacy_graphql_ws_protocol(client):
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    url = base_url(client).replace("http", "ws", 1) + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "a", "type": "start", "payload": {"query": VIEWERS, "variables": {"s": str(stream.id)}}}))

        async def data() -> dict:
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
                if message["type"] != "ka":  # keep-alives come every second
                    return message

        first = await data()
        assert first == {"type": "data", "id": "a", "payload": {"data": {"viewerCount": {"streamId": str(stream.id), "count": 0}}}}
        await viewers_now(client, stream.id, 2)
        assert (await data())["payload"]["data"]["viewerCount"]["count"] == 2
        await ws.send(json.dumps({"id": "a", "type": "stop"}))
        assert (await data()) == {"type": "complete", "id": "a"}


async def test_a_client_that_never_reads_is_dropped_and_memory_stays_bounded(client):
    seller = await make_vendor(client)
    ann = await register(client, "ann")
    stream = await live_stream(seller)
    row = await comment_row(stream.id, ann.id, "x" * 2000)
    view = view_of(client)
    silent = await RawWebSocket.open(base_url(client).replace("http", "ws", 1))
    silent.send({"type": "connection_init", "payload": {}})
    silent.send({"id": "1", "type": "subscribe", "payload": {"query": COMMENTS, "variables": {"s": str(stream.id)}}})
    await listening(client, stream.id)
    [connection] = list(view.connections)

    async with LivecartClient(base_url(client)) as reader:  # a client that reads, on the same stream
        comments = reader.subscribe(COMMENTS, {"s": str(stream.id)})
        first = asyncio.ensure_future(next_of(comments))
        await listening(client, stream.id, 2)
        most_queued = most_buffered = 0

        async def sample() -> bool:
            nonlocal most_queued, most_buffered
            await asyncio.sleep(0.01)  # let the subscriptions run
            most_queued = max(most_queued, connection._queued_bytes)
            transport = connection.request.transport
            most_buffered = max(most_buffered, transport.get_write_buffer_size() if transport else 0)
            return connection.overflowed

        for sent in range(1, 20_001):  # the same comment, again and again: ~2 KB a message
            await publish(client, stream.id, events.comment_added(stream.id, row.id))
            if sent % 20 == 0 and await sample():
                break
        # Through Redis, what was published may still be on its way on a loaded machine (the loop
        # above can outrun delivery): keep watching while it arrives rather than stop at the last send.
        deadline = asyncio.get_running_loop().time() + 60
        while not await sample() and asyncio.get_running_loop().time() < deadline:
            pass
        assert connection.overflowed, f"still connected after {sent} messages"
        assert await silent.read_until_closed(), "the server kept the silent client's connection"
        # Bounded: the send queue never held more than its cap, and the socket buffer stayed small.
        assert most_queued <= connection.max_bytes
        assert most_buffered <= 1 << 20, most_buffered
        await until(lambda: broker_of(client).hub.subscriber_count(f"stream:{stream.id}") == 1)
        assert (await first)["commentAdded"]["id"] == str(row.id)  # the reading client is unaffected
        await comments.aclose()
    silent.close()
