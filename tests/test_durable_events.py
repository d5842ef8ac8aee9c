"""Durable, resumable events (issue 15): the event log written with each change, cursors in every
payload, `after:` to resume with nothing lost and nothing twice, and what a bad cursor gets."""
from __future__ import annotations

import asyncio
import dataclasses

import pytest

from livecart.client.livecart_client import LivecartClient, LivecartError
from livecart.models import chat, engagement, outbox
from livecart.models.outbox import EventLog, EventStream
from livecart.models.user import utcnow
from tests.realtime_support import UPDATES, WAIT, base_url, broker_of, listening, live_stream, pump, until
from tests.support import make_vendor, register

COMMENTS = "subscription($s: ID!, $a: String) { commentAdded(streamId: $s, after: $a) { id text eventCursor } }"
ORDERS = "subscription($s: ID!, $a: String) { orderPlaced(streamId: $s, after: $a) { id quantity eventCursor } }"
REACTIONS = "subscription($s: ID!, $a: String) { reactionsChanged(streamId: $s, after: $a) { likes dislikes eventCursor } }"
POST = "mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id } }"
BUY = "mutation($p: ID!, $s: ID) { buyNow(productId: $p, quantity: 1, streamId: $s) { id } }"
REACT = "mutation($s: ID!, $k: ReactionKind!) { react(streamId: $s, kind: $k) { likes } }"
END = "mutation($id: ID!) { endStream(id: $id, action: DELETE) { stream { id status } } }"


@pytest.fixture
def settings(settings):
    """The suite's settings, rate limits off: the writers here comment faster than a person may."""
    return dataclasses.replace(settings, rate_limits=False)


def drain(queue: asyncio.Queue) -> list[dict]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


async def logged(stream_id: int, kind: str) -> list[dict]:
    return [e for e in await outbox.read(stream_id, 0, limit=100_000) if e["type"] == kind]


async def write_concurrently(client, stream_id: int, product_id: int, writers, rounds: int) -> None:
    """Several writers at once: each comments, reacts and now and then buys, `rounds` times."""

    async def one(account, index: int) -> None:
        for i in range(rounds):
            await client.data(POST, {"s": str(stream_id), "t": f"{account.username} {i}"}, token=account.token)
            await client.data(REACT, {"s": str(stream_id), "k": "LIKE" if (i + index) % 2 else "DISLIKE"}, token=account.token)
            if i % 3 == index % 3:
                await client.data(BUY, {"p": str(product_id), "s": str(stream_id)}, token=account.token)

    await asyncio.gather(*(one(account, index) for index, account in enumerate(writers)))


async def test_a_dropped_subscriber_resumes_with_every_event_once_in_commit_order(client):
    seller = await make_vendor(client, products=1, stock=1000)
    stream = await live_stream(seller)
    writers = [await register(client, f"writer{i}") for i in range(4)]
    url = base_url(client)
    async with LivecartClient(url, seller.token) as owner:
        connection = await owner.connect()
        # The reactions' first payload is the counts now, with the log's cursor of now: the feeds
        # that send nothing at first start from it, so nothing falls between them.
        reactions = pump(await connection.start(REACTIONS, {"s": str(stream.id)}))
        start = (await asyncio.wait_for(reactions.get(), WAIT))["reactionsChanged"]["eventCursor"]
        assert start
        comments = pump(await connection.start(COMMENTS, {"s": str(stream.id), "a": start}))
        orders = pump(await connection.start(ORDERS, {"s": str(stream.id), "a": start}))
        await listening(client, stream.id, 3)

        writing = asyncio.ensure_future(write_concurrently(client, stream.id, seller.product_ids[0], writers, 12))
        await until(lambda: comments.qsize() >= 6, timeout=30)
        await connection.close()  # dropped while the writers go on
        before = {"comments": drain(comments), "orders": drain(orders), "reactions": drain(reactions)}
        await asyncio.sleep(0.3)

        def last_cursor(results: list[dict], field: str) -> str:
            return results[-1][field]["eventCursor"] if results else start

        again = await owner.connect()
        comments2 = pump(await again.start(COMMENTS, {"s": str(stream.id), "a": last_cursor(before["comments"], "commentAdded")}))
        orders2 = pump(await again.start(ORDERS, {"s": str(stream.id), "a": last_cursor(before["orders"], "orderPlaced")}))
        reactions2 = pump(await again.start(REACTIONS, {"s": str(stream.id), "a": last_cursor(before["reactions"], "reactionsChanged")}))
        await writing

        expected_comments = await logged(stream.id, "comment_added")
        expected_orders = await logged(stream.id, "order_placed")
        assert len(expected_comments) == 4 * 12 and len(expected_orders) == 4 * 4
        received_comments = before["comments"]
        received_orders = before["orders"]
        await until(lambda: len(received_comments) + comments2.qsize() >= len(expected_comments), timeout=30)
        await until(lambda: len(received_orders) + orders2.qsize() >= len(expected_orders), timeout=30)
        await asyncio.sleep(0.5)  # anything more (a duplicate) would arrive now
        received_comments += drain(comments2)
        received_orders += drain(orders2)
        # Exactly once, in commit order: the log's order, which its numbers give.
        assert [r["commentAdded"]["id"] for r in received_comments] == [str(e["comment_id"]) for e in expected_comments]
        assert [r["commentAdded"]["eventCursor"] for r in received_comments] == [e["cursor"] for e in expected_comments]
        assert [r["orderPlaced"]["id"] for r in received_orders] == [str(e["stream_order_id"]) for e in expected_orders]
        # Coalesced figures resume to the value now.
        row = await stream.__class__.get(id=stream.id)
        now = {"likes": row.likes, "dislikes": row.dislikes}
        await until(lambda: not reactions2.empty(), timeout=WAIT)
        seen = drain(reactions2)
        while {k: seen[-1]["reactionsChanged"][k] for k in now} != now:
            seen.append(await asyncio.wait_for(reactions2.get(), WAIT))
        await again.close()

    # The numbers of the stream's events: 1, 2, 3... with no gap and none twice.
    seqs = [e["seq"] for e in await outbox.read(stream.id, 0, limit=100_000)]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_subscribers_that_come_back_after_everyone_left_hear_only_what_follows(client):
    """While a stream has no subscriber here, its events reach nobody here; the subscribers that come
    back (several at once, so none is the channel's only one when it reads the log) start from the
    log's head: what passed meanwhile is not sent to them late as if it were news."""
    seller = await make_vendor(client)
    talker = await register(client, "talker")
    stream = await live_stream(seller)
    hub = broker_of(client).hub

    async def say(text: str) -> None:
        await client.data(POST, {"s": str(stream.id), "t": text}, token=talker.token)

    async with LivecartClient(base_url(client)) as viewer:
        connection = await viewer.connect()
        feeds = [pump(await connection.start(COMMENTS, {"s": str(stream.id)})) for _ in range(3)]
        await listening(client, stream.id, 3)
        await say("before")
        for feed in feeds:
            assert (await asyncio.wait_for(feed.get(), WAIT))["commentAdded"]["text"] == "before"
        await connection.close()
        await until(lambda: hub.subscriber_count(f"stream:{stream.id}") == 0)

        await say("while away")
        await say("while away too")
        again = await viewer.connect()
        feeds = [pump(await again.start(COMMENTS, {"s": str(stream.id)})) for _ in range(3)]
        await listening(client, stream.id, 3)
        await say("after")
        for feed in feeds:
            assert (await asyncio.wait_for(feed.get(), WAIT))["commentAdded"]["text"] == "after"
        await asyncio.sleep(0.5)  # a late delivery of what passed meanwhile would come now
        assert [drain(feed) for feed in feeds] == [[], [], []]
        await again.close()


async def test_a_stream_that_ends_as_a_subscriber_starts_ends_its_subscription(client, monkeypatch):
    """A subscriber reads the log's head before the stream's row: a change committed in between is
    in the row it starts from or after the head (news), never neither. Here the stream ends just
    before the head is read; read the other way round, the row said LIVE, the ending counted as part
    of the start, and the subscription stayed open on an ended stream."""
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    real_head = outbox.head
    ended = False

    async def head_just_after_the_end(stream_id, *args, **kwargs):
        nonlocal ended
        if stream_id == stream.id and not ended:
            ended = True
            await client.data(END, {"id": str(stream.id)}, token=seller.token)
        return await real_head(stream_id, *args, **kwargs)

    monkeypatch.setattr(outbox, "head", head_just_after_the_end)
    async with LivecartClient(base_url(client)) as viewer:
        connection = await viewer.connect()
        updates = pump(await connection.start(UPDATES, {"s": str(stream.id)}))
        await asyncio.wait_for(updates.task, WAIT)  # the server completed it
        assert ended and [u["streamUpdated"]["status"] for u in drain(updates)] in ([], ["ENDED"])
        await connection.close()


async def test_concurrent_writers_never_share_or_skip_a_number(client):
    seller = await make_vendor(client, products=1)
    stream = await live_stream(seller)
    people = [await register(client, f"fan{i}") for i in range(10)]
    await asyncio.gather(*(
        chat.post_comment(stream.id, people[i % 10].id, f"comment {i}") for i in range(200)
    ))
    rows = await EventLog.filter(stream_id=stream.id).order_by("seq").values_list("seq", "type")
    comments = [seq for seq, kind in rows if kind == "comment_added"]
    assert len(comments) == 200
    assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1))
    assert (await EventStream.get(stream_id=stream.id)).last_seq == len(rows)


async def test_a_rolled_back_change_logs_nothing(client):
    seller = await make_vendor(client, products=1)
    stream = await live_stream(seller)
    ann = await register(client, "ann")
    await chat.post_comment(stream.id, ann.id, "kept")
    head = await outbox.head(stream.id)
    with pytest.raises(Exception):
        await chat.post_comment(stream.id, ann.id, "x" * 10_000)  # refused: too long
    await chat.post_comment(stream.id, ann.id, "kept too")
    assert [e["seq"] for e in await outbox.read(stream.id, 0)] == list(range(1, head.last_seq + 2))


async def _error_of(owner: LivecartClient, document: str, variables: dict) -> LivecartError:
    with pytest.raises(LivecartError) as caught:
        async for _ in owner.subscribe(document, variables):
            break
    return caught.value


async def test_bad_cursors_are_refused_and_an_expired_one_names_the_oldest_kept(client):
    seller = await make_vendor(client, products=1)
    stream = await live_stream(seller)
    other = await live_stream(seller, "Other")
    ann = await register(client, "ann")
    for i in range(5):
        await chat.post_comment(stream.id, ann.id, f"c{i}")
    await chat.post_comment(other.id, ann.id, "elsewhere")
    first_cursor = (await logged(stream.id, "comment_added"))[0]["cursor"]
    other_cursor = (await outbox.read(other.id, 0))[0]["cursor"]
    async with LivecartClient(base_url(client)) as viewer:
        for bad in ("nonsense", "ZXYx", outbox.encode_cursor(stream.id, 3, "feedbeef"), outbox.encode_cursor(stream.id, 999, "x")):
            error = await _error_of(viewer, COMMENTS, {"s": str(stream.id), "a": bad})
            assert error.code == "BAD_USER_INPUT", bad
        error = await _error_of(viewer, COMMENTS, {"s": str(stream.id), "a": other_cursor})
        assert error.code == "BAD_USER_INPUT" and "another stream" in str(error)

        # A replay from a cursor still kept: the comments after it.
        results = viewer.subscribe(COMMENTS, {"s": str(stream.id), "a": first_cursor})
        texts = [(await asyncio.wait_for(anext(results), WAIT))["commentAdded"]["text"] for _ in range(4)]
        assert texts == ["c1", "c2", "c3", "c4"]
        await results.aclose()

        # Pruned (retention 0, keep 2): the first cursor is older than what is kept.
        removed = await outbox.prune(utcnow(), retention_seconds=0, keep=2, batch=2)
        assert removed >= 3
        error = await _error_of(viewer, COMMENTS, {"s": str(stream.id), "a": first_cursor})
        assert error.code == "CURSOR_EXPIRED"
        oldest = error.errors[0]["extensions"]["oldestCursor"]
        results = viewer.subscribe(COMMENTS, {"s": str(stream.id), "a": oldest})
        assert (await asyncio.wait_for(anext(results), WAIT))["commentAdded"]["text"] == "c3"
        await results.aclose()


async def test_the_python_clients_follow_resumes_from_its_last_cursor_and_reloads_once_if_expired(client):
    from livecart.server.ops import WEBSOCKETS

    seller = await make_vendor(client, products=1)
    stream = await live_stream(seller)
    ann = await register(client, "ann")
    reloads: list[int] = []

    async def reload() -> None:
        reloads.append(stream.id)

    async def drop_every_socket() -> None:
        await asyncio.gather(*(ws.close(code=1012) for ws in list(client.http.server.app[WEBSOCKETS])))

    async with LivecartClient(base_url(client)) as viewer:
        # follow() resumes a document that declares $after and selects eventCursor.
        document = "subscription($s: ID!, $after: String) { commentAdded(streamId: $s, after: $after) { text eventCursor } }"
        comments = viewer.follow(document, {"s": str(stream.id)}, on_reconnect=reload)
        first = asyncio.ensure_future(anext(comments))
        await listening(client, stream.id)
        await chat.post_comment(stream.id, ann.id, "before")
        assert (await asyncio.wait_for(first, WAIT))["commentAdded"]["text"] == "before"

        await drop_every_socket()
        for text in ("while away 1", "while away 2"):
            await chat.post_comment(stream.id, ann.id, text)
        texts = [(await asyncio.wait_for(anext(comments), WAIT * 2))["commentAdded"]["text"] for _ in range(2)]
        assert texts == ["while away 1", "while away 2"] and reloads == []  # resumed: nothing to reload

        # Away longer than the log keeps: CURSOR_EXPIRED, one reload, then live again.
        await drop_every_socket()
        for i in range(4):
            await chat.post_comment(stream.id, ann.id, f"pruned {i}")
        await outbox.prune(utcnow(), retention_seconds=0, keep=1, batch=10)
        following = asyncio.ensure_future(anext(comments))
        await until(lambda: reloads == [stream.id], timeout=WAIT * 2)
        await listening(client, stream.id)
        await chat.post_comment(stream.id, ann.id, "after the reload")
        assert (await asyncio.wait_for(following, WAIT))["commentAdded"]["text"] == "after the reload"
        await comments.aclose()


async def test_a_subscriber_too_slow_to_keep_up_is_told_where_to_resume_and_let_go(client):
    from livecart.models import events
    from livecart.subscriptions.hub import LOCAL_QUEUE_SIZE
    from tests.realtime_support import publish

    seller = await make_vendor(client, products=1)
    stream = await live_stream(seller)
    async with LivecartClient(base_url(client)) as viewer:
        start = (await outbox.head(stream.id)).cursor()
        results = viewer.subscribe(COMMENTS, {"s": str(stream.id), "a": start})
        waiting = asyncio.ensure_future(anext(results))
        await listening(client, stream.id)
        # More events than its inbox holds, all at once (no await between them yields to it).
        await publish(client, stream.id, *(events.comment_added(stream.id, 10_000 + i) for i in range(LOCAL_QUEUE_SIZE + 5)))
        with pytest.raises(LivecartError) as told:
            await asyncio.wait_for(waiting, WAIT)
        assert told.value.code == "LAGGED"
        assert told.value.errors[0]["extensions"]["cursor"] == start  # nothing was delivered: resume from there
