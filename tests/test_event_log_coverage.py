"""Issue 15, every change subscribers hear about logs its events in its own transaction: for each
mutation, hook and clock that publishes on a stream's channel, its events are in the log with the
next numbers, and a subscriber that follows with `after:` a cursor from before the change gets it
once. A change refused, or one that changes nothing, logs nothing."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest

from livecart.client.livecart_client import LivecartClient
from livecart.models import media, outbox
from livecart.models.live import Auction, FlashDeal
from livecart.models.stream import LiveStream
from livecart.models.clock import utcnow
from livecart.resolvers.live import sweep_clocks
from livecart.server.app import create_app
from tests.realtime_support import WAIT, base_url, broker_of, listening, live_stream, pump, until
from tests.support import GraphQLClient, make_vendor, register

SECRET = "test-ingest-secret-0123456789"
QUIET = 0.5  # after what was expected: anything more (a duplicate) would arrive within this

UPDATES = """subscription($s: ID!, $a: String) { streamUpdated(streamId: $s, after: $a) {
  status broadcasting featuredProducts { id } eventCursor } }"""
CHAT = """subscription($s: ID!, $a: String) { chatUpdated(streamId: $s, after: $a) {
  slowModeSeconds holdLinksForReview pinnedComment { id } eventCursor } }"""
DELETED = "subscription($s: ID!, $a: String) { commentDeleted(streamId: $s, after: $a) { commentIds eventCursor } }"
ADDED = "subscription($s: ID!, $a: String) { commentAdded(streamId: $s, after: $a) { id eventCursor } }"
LIVE = """subscription($s: ID!, $a: String) { liveCommerce(streamId: $s, after: $a) {
  products { product { id } stock soldOut } deals { id status } auction { id bidCount closed } justBoughtBy eventCursor } }"""

CREATE = "mutation($p: [ID!]!) { createStream(title: \"On air\", productIds: $p) { id streamKey } }"
START = "mutation($i: ID!) { startStream(id: $i) { status } }"
FEATURE = "mutation($s: ID!, $p: ID!) { featureProduct(streamId: $s, productId: $p) { id } }"
END = "mutation($i: ID!) { endStream(id: $i, action: DELETE) { stream { status } } }"
POST = "mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id held } }"
SLOW = "mutation($s: ID!, $n: Int!) { setSlowMode(streamId: $s, seconds: $n) { slowModeSeconds } }"
HOLD = "mutation($s: ID!, $on: Boolean!) { setHoldLinksForReview(streamId: $s, enabled: $on) { holdLinksForReview } }"
PIN = "mutation($id: ID!) { pinComment(id: $id) { pinnedComment { id } } }"
UNPIN = "mutation($s: ID!) { unpinComment(streamId: $s) }"
BAN = "mutation($v: ID!, $u: ID!) { banUser(vendorId: $v, userId: $u, removeComments: true) { kind } }"
APPROVE = "mutation($id: ID!) { approveComment(id: $id) { id held } }"
REJECT = "mutation($id: ID!) { rejectComment(id: $id) }"
DEAL = """mutation($s: ID!, $p: ID!, $q: Int! = 2, $l: Int! = 2) {
  startFlashDeal(streamId: $s, productId: $p, price: "5.00", quantity: $q, perBuyerLimit: $l, durationSeconds: 60) { id } }"""
AUCTION = """mutation($s: ID!, $p: ID!, $w: Int) {
  startAuction(streamId: $s, productId: $p, startingPrice: "10.00", durationSeconds: 10, mode: SUDDEN_DEATH, windowSeconds: $w) { id } }"""
BID = "mutation($a: ID!, $x: Decimal!, $max: Decimal) { placeBid(auctionId: $a, amount: $x, maxAmount: $max) { id } }"
BUY = """mutation($p: ID!, $q: Int!, $s: ID) { buyNow(productId: $p, quantity: $q, streamId: $s, showMyName: true) { id } }"""


@pytest.fixture
async def client(aiohttp_client, settings, tmp_path) -> GraphQLClient:
    """The suite's app with the ingest hooks on (their secret), rate limits off."""
    app = create_app(settings.replace(media_dir=str(tmp_path / "media"), ingest_secret=SECRET, rate_limits=False))
    return GraphQLClient(await aiohttp_client(app))


# ---------------------------------------------------------------- what the log and a resumer show


@dataclasses.dataclass(frozen=True)
class Mark:
    """Where a stream's log stood before a change."""

    stream_id: int
    seq: int
    cursor: str


async def mark(stream_id: int) -> Mark:
    head = await outbox.head(stream_id)
    return Mark(stream_id, head.last_seq, head.cursor())


async def logged_since(before: Mark, *expected: tuple[str, dict]) -> list[dict]:
    """The events logged on the stream since `before`: exactly `expected` (each its type and the
    fields it must carry), numbered on from it."""
    found = await outbox.read(before.stream_id, before.seq)
    assert [e["type"] for e in found] == [kind for kind, _ in expected], found
    for event, (_, fields) in zip(found, expected):
        assert {key: event.get(key) for key in fields} == fields, event
    assert [e["seq"] for e in found] == list(range(before.seq + 1, before.seq + 1 + len(found)))
    return found


async def resumed(client: GraphQLClient, document: str, before: Mark, expect: int = 1, token: str | None = None) -> list[dict]:
    """What a subscriber started now with `after` = before's cursor receives: `expect` payloads,
    and whatever else comes within QUIET seconds (which the caller's assertions then refuse)."""
    async with LivecartClient(base_url(client), token) as follower:
        connection = await follower.connect()
        results = pump(await connection.start(document, {"s": str(before.stream_id), "a": before.cursor}))
        received = [await asyncio.wait_for(results.get(), WAIT) for _ in range(expect)]
        await asyncio.sleep(QUIET)
        while not results.empty():
            received.append(results.get_nowait())
        await connection.close()
    return [next(iter(payload.values())) for payload in received]


def cursors(payloads: list[dict]) -> list[str]:
    return [p["eventCursor"] for p in payloads]


# ---------------------------------------------------------------- the stream's lifecycle


async def test_starting_featuring_and_ending_a_stream_log_their_updates(client):
    seller = await make_vendor(client, products=2)
    created = (await client.data(CREATE, {"p": [str(seller.product_ids[0])]}, token=seller.token))["createStream"]
    stream_id = int(created["id"])

    before = await mark(stream_id)
    await client.data(START, {"i": created["id"]}, token=seller.token)
    (event,) = await logged_since(before, ("stream_updated", {}))
    (payload,) = await resumed(client, UPDATES, before)
    assert (payload["status"], payload["eventCursor"]) == ("LIVE", event["cursor"])

    before = await mark(stream_id)
    await client.data(FEATURE, {"s": created["id"], "p": str(seller.product_ids[1])}, token=seller.token)
    (event,) = await logged_since(before, ("stream_updated", {}))
    (payload,) = await resumed(client, UPDATES, before)
    assert payload["eventCursor"] == event["cursor"] and len(payload["featuredProducts"]) == 2

    before = await mark(stream_id)
    await client.data(END, {"i": created["id"]}, token=seller.token)
    updated, viewers = await logged_since(before, ("stream_updated", {}), ("viewers_changed", {}))
    # The update replayed, then the stream's end (as of the log's head): each once.
    payloads = await resumed(client, UPDATES, before, expect=2)
    assert cursors(payloads) == [updated["cursor"], viewers["cursor"]]
    assert {p["status"] for p in payloads} == {"ENDED"}


# ---------------------------------------------------------------- media starting and stopping


async def hook(client: GraphQLClient, which: str, **fields: str) -> int:
    response = await client.http.post(f"/ingest/{which}?secret={SECRET}", data=fields, allow_redirects=False)
    return response.status


async def test_media_starting_and_stopping_log_the_broadcasting_state(client):
    seller = await make_vendor(client, products=0)
    created = (await client.data(CREATE, {"p": []}, token=seller.token))["createStream"]
    stream_id = int(created["id"])
    publish = {"call": "publish", "app": "live", "name": created["streamKey"], "clientid": "7"}

    before = await mark(stream_id)
    assert await hook(client, "on_publish", **publish) == 302
    (event,) = await logged_since(before, ("stream_updated", {"stream_id": stream_id}))
    (payload,) = await resumed(client, UPDATES, before)
    assert (payload["status"], payload["broadcasting"], payload["eventCursor"]) == ("LIVE", True, event["cursor"])

    before = await mark(stream_id)
    assert await hook(client, "on_publish", **publish) == 302  # the same publisher again: no change
    assert await outbox.read(stream_id, before.seq) == []
    assert await hook(client, "on_publish_done", **{**publish, "call": "publish_done"}) == 200
    (event,) = await logged_since(before, ("stream_updated", {}))
    (payload,) = await resumed(client, UPDATES, before)
    assert (payload["broadcasting"], payload["eventCursor"]) == (False, event["cursor"])

    # A process's lost WHIP sessions, cleared at its start-up (server/whip.py), log on each stream.
    await LiveStream.filter(id=stream_id).update(broadcasting=True, publisher="whip:lost")
    before = await mark(stream_id)
    assert await media.clear_broadcasting("whip:") == [stream_id]
    await logged_since(before, ("stream_updated", {}))


# ---------------------------------------------------------------- the chat


async def moderated_stream(client: GraphQLClient):
    seller = await make_vendor(client, products=1)
    stream = await live_stream(seller)
    ann = await register(client, "ann")
    return seller, stream, ann


async def test_each_chat_setting_logs_chat_updated(client):
    seller, stream, ann = await moderated_stream(client)
    s = str(stream.id)
    comment = (await client.data(POST, {"s": s, "t": "pin me"}, token=ann.token))["postComment"]
    changes = (
        (SLOW, {"s": s, "n": 10}, {"slowModeSeconds": 10}),
        (HOLD, {"s": s, "on": True}, {"holdLinksForReview": True}),
        (PIN, {"id": comment["id"]}, {"pinnedComment": {"id": comment["id"]}}),
        (UNPIN, {"s": s}, {"pinnedComment": None}),
    )
    for document, variables, shown in changes:
        before = await mark(stream.id)
        await client.data(document, variables, token=seller.token)
        (event,) = await logged_since(before, ("chat_updated", {"stream_id": stream.id}))
        # chatUpdated resumes to the settings now, as of the change's own cursor, and only that.
        (payload,) = await resumed(client, CHAT, before)
        assert {key: payload[key] for key in shown} == shown
        assert payload["eventCursor"] == event["cursor"], document


async def test_a_ban_logs_the_removed_comments_on_each_stream(client):
    seller, stream, ann = await moderated_stream(client)
    other = await live_stream(seller, "Other")
    bob = await register(client, "bob")
    here = [(await client.data(POST, {"s": str(stream.id), "t": f"spam {i}"}, token=ann.token))["postComment"]["id"] for i in range(3)]
    there = (await client.data(POST, {"s": str(other.id), "t": "spam there"}, token=ann.token))["postComment"]["id"]
    await client.data(POST, {"s": str(stream.id), "t": "not spam"}, token=bob.token)
    marks = [await mark(stream.id), await mark(other.id)]

    await client.data(BAN, {"v": str(seller.vendor_id), "u": str(ann.id)}, token=seller.token)
    (event,) = await logged_since(marks[0], ("comment_deleted", {"comment_ids": [int(i) for i in here]}))
    (event_there,) = await logged_since(marks[1], ("comment_deleted", {"comment_ids": [int(there)]}))
    (payload,) = await resumed(client, DELETED, marks[0])
    assert payload == {"commentIds": here, "eventCursor": event["cursor"]}
    (payload,) = await resumed(client, DELETED, marks[1])
    assert payload == {"commentIds": [there], "eventCursor": event_there["cursor"]}


async def test_approving_and_rejecting_held_comments_log_them(client):
    seller, stream, ann = await moderated_stream(client)
    s = str(stream.id)
    await client.data(HOLD, {"s": s, "on": True}, token=seller.token)
    held = [(await client.data(POST, {"s": s, "t": f"see www.example{i}.com"}, token=ann.token))["postComment"] for i in range(2)]
    assert all(c["held"] for c in held)

    before = await mark(stream.id)
    await client.data(APPROVE, {"id": held[0]["id"]}, token=seller.token)
    (event,) = await logged_since(before, ("comment_added", {"comment_id": int(held[0]["id"])}))
    assert await resumed(client, ADDED, before) == [{"id": held[0]["id"], "eventCursor": event["cursor"]}]

    before = await mark(stream.id)
    await client.data(REJECT, {"id": held[1]["id"]}, token=seller.token)
    (event,) = await logged_since(before, ("comment_deleted", {"comment_ids": [int(held[1]["id"])]}))
    assert await resumed(client, DELETED, before) == [{"commentIds": [held[1]["id"]], "eventCursor": event["cursor"]}]


# ---------------------------------------------------------------- live commerce


async def test_a_deal_logs_its_start_and_its_end_by_time(client):
    seller = await make_vendor(client, products=1)
    stream = await live_stream(seller)
    s, p = str(stream.id), str(seller.product_ids[0])

    before = await mark(stream.id)
    deal_id = int((await client.data(DEAL, {"s": s, "p": p}, token=seller.token))["startFlashDeal"]["id"])
    (event,) = await logged_since(before, ("deal_changed", {"deal_id": deal_id}))
    (payload,) = await resumed(client, LIVE, before)
    assert payload["eventCursor"] == event["cursor"] and payload["deals"] == [{"id": str(deal_id), "status": "OPEN"}]

    before = await mark(stream.id)
    await FlashDeal.filter(id=deal_id).update(ends_at=utcnow() - dt.timedelta(seconds=1))
    await sweep_clocks(broker_of(client))  # this process's sweeper may have won it: either logs it
    await until(lambda: FlashDeal.filter(id=deal_id, ended_at__isnull=False).exists())
    (event,) = await logged_since(before, ("deal_changed", {"deal_id": deal_id}))
    (payload,) = await resumed(client, LIVE, before)
    assert payload["eventCursor"] == event["cursor"] and payload["deals"] == []


async def test_an_auction_logs_its_start_each_bid_and_its_close(client):
    seller = await make_vendor(client, products=1)
    stream = await live_stream(seller)
    fan = await register(client, "fan")
    s, p = str(stream.id), int(seller.product_ids[0])

    before = await mark(stream.id)
    auction_id = int((await client.data(AUCTION, {"s": s, "p": str(p)}, token=seller.token))["startAuction"]["id"])
    await logged_since(before, ("auction_changed", {"auction_id": auction_id}), ("stock_changed", {"product_id": p}))

    before = await mark(stream.id)
    await client.data(BID, {"a": str(auction_id), "x": "10.00"}, token=fan.token)
    await client.data(BID, {"a": str(auction_id), "x": "10.00", "max": "50.00"}, token=fan.token)  # the leader's maximum up
    bid, raised = await logged_since(before, *[("auction_changed", {"auction_id": auction_id})] * 2)
    (payload,) = await resumed(client, LIVE, before)
    assert payload["eventCursor"] == raised["cursor"] and payload["auction"]["bidCount"] == 1

    before = await mark(stream.id)
    await Auction.filter(id=auction_id).update(ends_at=utcnow() - dt.timedelta(seconds=1))
    await sweep_clocks(broker_of(client))
    await until(lambda: Auction.filter(id=auction_id, order_id__isnull=False).exists())
    *_, last = await logged_since(
        before,
        ("auction_changed", {"auction_id": auction_id}), ("stock_changed", {"product_id": p}),
        ("order_placed", {}), ("stream_updated", {}),
    )
    (payload,) = await resumed(client, LIVE, before)
    assert payload["eventCursor"] == last["cursor"] and payload["auction"]["closed"] is True


async def test_a_purchase_logs_live_stock_sell_outs_and_the_deal_it_ended_and_tells_each_once(client):
    seller = await make_vendor(client, products=1, stock=2)
    stream = await live_stream(seller)
    buyer = await register(client, "buyer")
    s, p = str(stream.id), int(seller.product_ids[0])
    deal_id = int((await client.data(DEAL, {"s": s, "p": str(p)}, token=seller.token))["startFlashDeal"]["id"])
    before = await mark(stream.id)
    async with LivecartClient(base_url(client)) as watcher:
        # Watching live through the purchase: its stream update once (with its number), not twice.
        connection = await watcher.connect()
        live_updates = pump(await connection.start(UPDATES, {"s": s, "a": before.cursor}))
        await listening(client, stream.id)
        await client.data(BUY, {"p": str(p), "q": 2, "s": s}, token=buyer.token)
        events = await logged_since(
            before,
            ("order_placed", {}), ("stream_updated", {}),
            ("stock_changed", {"product_id": p, "bought": True, "buyer_id": buyer.id}),
            ("sold_out", {"product_id": p}),  # the product's stock
            ("sold_out", {"product_id": p}), ("deal_changed", {"deal_id": deal_id}),  # the deal's units
        )
        update = (await asyncio.wait_for(live_updates.get(), WAIT))["streamUpdated"]
        await asyncio.sleep(QUIET)
        assert update["eventCursor"] == events[1]["cursor"] and live_updates.empty()
        await connection.close()
    (payload,) = await resumed(client, LIVE, before)
    assert payload["eventCursor"] == events[-1]["cursor"]
    assert payload["products"] == [{"product": {"id": str(p)}, "stock": 0, "soldOut": True}] and payload["deals"] == []
    (payload,) = await resumed(client, UPDATES, before)
    assert payload["eventCursor"] == events[1]["cursor"]


# ---------------------------------------------------------------- nothing changed: nothing logged


async def test_refused_changes_and_changes_of_nothing_log_nothing(client):
    seller, stream, ann = await moderated_stream(client)
    s, v, p = str(stream.id), str(seller.vendor_id), str(seller.product_ids[0])
    auction_id = (await client.data(AUCTION, {"s": s, "p": p}, token=seller.token))["startAuction"]["id"]
    before = await mark(stream.id)

    refused = (
        (SLOW, {"s": s, "n": 2}, "BAD_USER_INPUT"),
        (DEAL, {"s": s, "p": p, "q": 0}, "BAD_USER_INPUT"),
        (AUCTION, {"s": s, "p": p, "w": 5}, "BAD_USER_INPUT"),
        (AUCTION, {"s": s, "p": p}, "CONFLICT"),  # one is running: refused inside its transaction
        (BID, {"a": auction_id, "x": "1.00"}, "BID_TOO_LOW"),  # refused inside its transaction
        (BAN, {"v": v, "u": str(seller.id)}, "BAD_USER_INPUT"),
        (BUY, {"p": p, "q": 0, "s": s}, "BAD_USER_INPUT"),
    )
    for document, variables, code in refused:
        token = ann.token if document is BID else seller.token
        error = await client.error(document, variables, token=token)
        assert error["extensions"]["code"] == code, (document, error)
    assert (await client.data(UNPIN, {"s": s}, token=seller.token))["unpinComment"] is False  # nothing pinned
    assert await hook(client, "on_publish", call="publish", name="k" * 43, clientid="1") == 403  # an unknown key
    assert await outbox.read(stream.id, before.seq) == []

    # A refusal took no number with it: the next change has the next one.
    await client.data(SLOW, {"s": s, "n": 3}, token=seller.token)
    await logged_since(before, ("chat_updated", {}))
