"""Issue 18: flash deals, auctions, idempotent purchases, live stock and the replay's timeline,
on both backends (SQLite and the in-process broker; PostgreSQL and Redis)."""
from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import pytest

from livecart.client.livecart_client import LivecartClient
from livecart.models import hammer
from livecart.models.catalog import Product
from livecart.models.commerce import Order, OrderItem, StreamOrder
from livecart.models.live import Auction, Bid, DealPurchase, FlashDeal
from livecart.models.stream import LiveStream, SavedStream
from livecart.models.clock import utcnow
from livecart.models.user import User, issue_token
from tests.realtime_support import base_url, live_stream, next_of, until
from tests.support import make_vendor, register

DEAL = """mutation($s: ID!, $p: ID!, $price: Decimal!, $q: Int!, $l: Int!, $c: Int! = 0, $d: Int! = 120) {
  startFlashDeal(streamId: $s, productId: $p, price: $price, quantity: $q, perBuyerLimit: $l,
                 countdownSeconds: $c, durationSeconds: $d) { id price quantity left perBuyerLimit status secondsToOpen }
}"""
AUCTION = """mutation($s: ID!, $p: ID!, $price: Decimal!, $d: Int!, $m: AuctionMode!, $w: Int) {
  startAuction(streamId: $s, productId: $p, startingPrice: $price, durationSeconds: $d, mode: $m, windowSeconds: $w) {
    id price minimumBid endsAt secondsLeft closed mode windowSeconds }
}"""
BID = """mutation($a: ID!, $x: Decimal!, $max: Decimal, $k: String) {
  placeBid(auctionId: $a, amount: $x, maxAmount: $max, idempotencyKey: $k) { id amount proxy endsAt bidder { username } }
}"""
AUCTION_STATE = "query($a: ID!) { auction(id: $a) { price minimumBid closed bidCount orderId leader { username } endsAt } }"
BUY = """mutation($p: ID!, $q: Int! = 1, $s: ID, $k: String) {
  buyNow(productId: $p, quantity: $q, streamId: $s, idempotencyKey: $k) { id total items { unitPrice quantity } }
}"""
CHECKOUT = "mutation($k: String) { checkout(idempotencyKey: $k) { id total } }"
ADD = "mutation($p: ID!, $q: Int! = 1, $s: ID) { addToCart(productId: $p, quantity: $q, streamId: $s) { total } }"
STATE = """query($s: ID!) { liveCommerce(streamId: $s) {
  serverTime products { product { id } stock soldOut } deals { id left status } auction { id price } justBought { id } } }"""
LIVE = """subscription($s: ID!) { liveCommerce(streamId: $s) {
  products { product { id } stock soldOut } deals { id left } auction { id price bidCount secondsLeft }
  justBought { name } justBoughtBy } }"""


@pytest.fixture
def settings(settings):
    # Many buyers from one test address: these tests are about units and money, not rate limits.
    return settings.replace(rate_limits=False)


async def tokens(count: int, prefix: str = "buyer") -> list[str]:
    """Buyers with tokens, without hashing a password for each (argon2 is the slow part of register)."""
    out = []
    for i in range(count):
        user = await User.create(username=f"{prefix}{i}", password_hash="-")
        out.append(await issue_token(user, 3600))
    return out


async def shop(client, stock: int = 100, price: str = "30.00"):
    seller = await make_vendor(client, products=2, price=price, stock=stock)
    stream = await live_stream(seller)
    return seller, stream


# ---------------------------------------------------------------- flash deals


async def test_a_deal_takes_its_price_and_its_limits_and_the_seller_sees_deal_revenue(client):
    seller, stream = await shop(client)
    s, p, other = str(stream.id), str(seller.product_ids[0]), str(seller.product_ids[1])
    deal = (await client.data(DEAL, {"s": s, "p": p, "price": "19.99", "q": 3, "l": 2}, token=seller.token))["startFlashDeal"]
    assert (deal["price"], deal["left"], deal["status"], deal["secondsToOpen"]) == ("19.99", 3, "OPEN", 0)
    buyer, second = await tokens(2)
    order = (await client.data(BUY, {"p": p, "q": 2, "s": s}, token=buyer))["buyNow"]
    assert order["total"] == "39.98" and order["items"] == [{"unitPrice": "19.99", "quantity": 2}]
    refused = await client.error(BUY, {"p": p, "s": s}, token=buyer)
    assert refused["extensions"]["code"] == "LIMIT_EXCEEDED" and refused["extensions"]["limit"] == 2
    assert "2 per buyer" in refused["message"]
    # One left at the deal price: asking two is refused whole, one sells it out and ends the deal.
    short = await client.error(BUY, {"p": p, "q": 2, "s": s}, token=second)
    assert short["extensions"]["code"] == "OUT_OF_STOCK" and short["extensions"]["available"] == 1
    await client.data(BUY, {"p": p, "s": s}, token=second)
    row = await FlashDeal.get(id=int(deal["id"]))
    assert (row.sold, row.ended_at is not None, str(row.revenue)) == (3, True, "59.97")
    # After the deal: the product's own price, outside the deal's limits. Not bought on the stream: no deal.
    assert (await client.data(BUY, {"p": p, "s": s}, token=buyer))["buyNow"]["total"] == "30.00"
    assert (await client.data(BUY, {"p": other, "s": s}, token=buyer))["buyNow"]["total"] == "30.00"
    stats = "query($s: ID!) { stream(id: $s) { stats { revenue dealRevenue orders } } }"
    figures = (await client.data(stats, {"s": s}, token=seller.token))["stream"]["stats"]
    assert figures == {"revenue": "119.97", "dealRevenue": "59.97", "orders": 4}


async def test_deal_values_out_of_range_and_streams_not_live(client):
    seller, stream = await shop(client)
    s, p = str(stream.id), str(seller.product_ids[0])
    good = {"s": s, "p": p, "price": "5.00", "q": 10, "l": 2}
    for change, argument in (
        ({"c": 5}, "countdownSeconds"), ({"c": 301}, "countdownSeconds"), ({"d": 59}, "durationSeconds"),
        ({"d": 1201}, "durationSeconds"), ({"q": 0}, "quantity"), ({"l": 11}, "perBuyerLimit"),
        ({"l": 0}, "perBuyerLimit"), ({"price": "0"}, "price"), ({"q": 101, "l": 2}, "quantity"),
    ):
        error = await client.error(DEAL, {**good, **change}, token=seller.token)
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": argument}, change
    other = await make_vendor(client, "other", products=1)
    foreign = await client.error(DEAL, {**good, "p": str(other.product_ids[0])}, token=seller.token)
    assert foreign["extensions"]["code"] == "CONFLICT"  # not featured on this stream
    buyer = await register(client, "nobody")
    assert (await client.error(DEAL, good, token=buyer.token))["extensions"]["code"] == "FORBIDDEN"
    await client.data('mutation($id: ID!) { endStream(id: $id, action: DELETE) { stats { orders } } }', {"id": s}, token=seller.token)
    assert (await client.error(DEAL, good, token=seller.token))["extensions"]["code"] == "CONFLICT"
    assert not await FlashDeal.exists()


async def test_a_counted_down_deal_opens_at_its_time_and_ends_by_itself(client):
    seller, stream = await shop(client)
    s, p = str(stream.id), str(seller.product_ids[0])
    deal = (await client.data(DEAL, {"s": s, "p": p, "price": "1.00", "q": 5, "l": 5, "c": 10, "d": 60}, token=seller.token))["startFlashDeal"]
    assert deal["status"] == "UPCOMING" and 9 <= deal["secondsToOpen"] <= 10
    (buyer,) = await tokens(1)
    assert (await client.data(BUY, {"p": p, "s": s}, token=buyer))["buyNow"]["total"] == "30.00"  # not open yet
    # Move the clock rather than wait: open it now, then make it due and let the sweep end it.
    now = utcnow()
    await FlashDeal.filter(id=int(deal["id"])).update(opens_at=now - dt.timedelta(seconds=1))
    assert (await client.data(BUY, {"p": p, "s": s}, token=buyer))["buyNow"]["total"] == "1.00"
    await FlashDeal.filter(id=int(deal["id"])).update(ends_at=utcnow())
    row = await until_row(lambda: FlashDeal.get(id=int(deal["id"])), lambda r: r.ended_at is not None)
    assert row.sold == 1
    state = (await client.data(STATE, {"s": s}))["liveCommerce"]
    assert state["deals"] == []


async def until_row(read, done, timeout: float = 10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        row = await read()
        if done(row):
            return row
        assert asyncio.get_running_loop().time() < deadline, "not reached in time"
        await asyncio.sleep(0.05)


async def test_two_hundred_concurrent_buyers_on_twenty_units_with_a_limit_of_two(client):
    seller, stream = await shop(client, stock=500)
    s, p = str(stream.id), str(seller.product_ids[0])
    deal = (await client.data(DEAL, {"s": s, "p": p, "price": "7.77", "q": 20, "l": 2}, token=seller.token))["startFlashDeal"]
    buyers = await tokens(200)
    # Every fifth buyer tries three times, asking two each time; the others once, for one or two.
    attempts = [(token, 2 if i % 5 == 0 else 1 + i % 2) for i, token in enumerate(buyers) for _ in range(3 if i % 5 == 0 else 1)]
    bodies = await asyncio.gather(*(client.execute(BUY, {"p": p, "q": q, "s": s}, token=t) for t, q in attempts))
    codes = {b["errors"][0]["extensions"]["code"] for b in bodies if b.get("errors")}
    assert codes <= {"OUT_OF_STOCK", "LIMIT_EXCEEDED"}
    placed = [b["data"]["buyNow"]["items"][0] for b in bodies if not b.get("errors")]
    # Exactly 20 at the deal price; once sold out the deal is over, and later orders pay the price.
    assert sum(item["quantity"] for item in placed if item["unitPrice"] == "7.77") == 20
    assert {item["unitPrice"] for item in placed} <= {"7.77", "30.00"}
    per_buyer: dict[int, int] = {}
    for purchase in await DealPurchase.all():
        per_buyer[purchase.buyer_id] = per_buyer.get(purchase.buyer_id, 0) + purchase.quantity
    assert sum(per_buyer.values()) == 20 and max(per_buyer.values()) <= 2
    row = await FlashDeal.get(id=int(deal["id"]))
    assert (row.sold, str(row.revenue), row.ended_at is not None) == (20, "155.40", True)
    sold = sum(item["quantity"] for item in placed)
    assert (await Product.get(id=int(p))).stock == 500 - sold
    stream_row = await LiveStream.get(id=stream.id)
    assert stream_row.items_sold == sold
    assert stream_row.revenue == Decimal("155.40") + Decimal("30.00") * (sold - 20)


# ---------------------------------------------------------------- idempotency


async def test_a_repeated_key_buys_once_also_when_the_requests_race(client):
    seller, stream = await shop(client, stock=50)
    p, s = str(seller.product_ids[0]), str(stream.id)
    buyer, other = await tokens(2)
    first = (await client.data(BUY, {"p": p, "s": s, "k": "order-1"}, token=buyer))["buyNow"]
    again = (await client.data(BUY, {"p": p, "s": s, "k": "order-1"}, token=buyer))["buyNow"]
    assert again == first and (await Product.get(id=int(p))).stock == 49
    # Another buyer's same key is theirs; the same key for another operation is a CONFLICT.
    assert (await client.data(BUY, {"p": p, "k": "order-1"}, token=other))["buyNow"]["id"] != first["id"]
    assert (await client.error(CHECKOUT, {"k": "order-1"}, token=buyer))["extensions"]["code"] == "CONFLICT"
    for key in ("", "x" * 101):
        assert (await client.error(BUY, {"p": p, "k": key}, token=buyer))["extensions"]["argument"] == "idempotencyKey"

    orders_before = await Order.all().count()
    raced = await asyncio.gather(*(client.execute(BUY, {"p": p, "q": 2, "s": s, "k": "race"}, token=buyer) for _ in range(8)))
    assert not any(b.get("errors") for b in raced), raced
    assert len({b["data"]["buyNow"]["id"] for b in raced}) == 1
    assert await Order.all().count() == orders_before + 1 and (await Product.get(id=int(p))).stock == 46

    await client.data(ADD, {"p": p, "q": 3, "s": s}, token=other)
    checkouts = await asyncio.gather(*(client.execute(CHECKOUT, {"k": "cart-1"}, token=other) for _ in range(4)))
    assert len({b["data"]["checkout"]["id"] for b in checkouts}) == 1 and (await Product.get(id=int(p))).stock == 43

    # A key whose first try failed did nothing: it may be used again.
    assert (await client.error(BUY, {"p": p, "q": 99, "k": "big"}, token=buyer))["extensions"]["code"] == "OUT_OF_STOCK"
    assert (await client.data(BUY, {"p": p, "k": "big"}, token=buyer))["buyNow"]["total"] == "30.00"


# ---------------------------------------------------------------- auctions


async def test_auction_rules_increments_proxy_bids_and_the_hammer(client):
    seller, stream = await shop(client, stock=5)
    s, p = str(stream.id), str(seller.product_ids[0])
    for change, argument in (({"d": 9}, "durationSeconds"), ({"d": 601}, "durationSeconds"), ({"price": "-1"}, "startingPrice"),
                             ({"m": "COUNTER_BID", "w": None}, "windowSeconds"), ({"w": 5}, "windowSeconds")):
        values = {"s": s, "p": p, "price": "10.00", "d": 60, "m": "SUDDEN_DEATH", **change}
        assert (await client.error(AUCTION, values, token=seller.token))["extensions"] == {"code": "BAD_USER_INPUT", "argument": argument}
    auction = (await client.data(AUCTION, {"s": s, "p": p, "price": "10.00", "d": 60, "m": "SUDDEN_DEATH"}, token=seller.token))["startAuction"]
    assert (auction["price"], auction["minimumBid"], auction["closed"]) == (None, "10.00", False)
    assert (await Product.get(id=int(p))).stock == 4  # the unit is held for the winner
    a = auction["id"]
    ann, bob, cat = await tokens(3, "bidder")
    low = await client.error(BID, {"a": a, "x": "9.99"}, token=ann)
    assert low["extensions"] == {"code": "BID_TOO_LOW", "minimumBid": "10.00"}
    await client.data(BID, {"a": a, "x": "10.00", "max": "25.00"}, token=ann)  # a proxy maximum
    # 10.00 is in the band from 10.00 (increment 1.00): the next bid is at least 11.00.
    assert (await client.error(BID, {"a": a, "x": "10.50"}, token=bob))["extensions"]["minimumBid"] == "11.00"
    await client.data(BID, {"a": a, "x": "15.00"}, token=bob)  # ann's maximum answers at once
    state = (await client.data(AUCTION_STATE, {"a": a}))["auction"]
    assert (state["price"], state["leader"]["username"], state["minimumBid"]) == ("16.00", "bidder0", "17.00")
    await client.data(BID, {"a": a, "x": "17.00", "max": "40.00"}, token=cat)  # over ann's maximum: cat leads
    state = (await client.data(AUCTION_STATE, {"a": a}))["auction"]
    assert (state["price"], state["leader"]["username"]) == ("26.00", "bidder2")  # ann's 25.00 + 1.00
    # The leader raising their own maximum is no new bid: the price stays, their bid stands.
    raised = (await client.data(BID, {"a": a, "x": "26.00", "max": "60.00"}, token=cat))["placeBid"]
    assert raised["amount"] == "26.00" and (await client.data(AUCTION_STATE, {"a": a}))["auction"]["bidCount"] == 4
    assert (await Auction.get(id=int(a))).leader_max == Decimal("60.00")
    await Auction.filter(id=int(a)).update(leader_max=Decimal("40.00"))
    # One auction at a time on a stream; none on a product not featured there.
    other = await make_vendor(client, "other", products=1)
    busy = {"s": s, "p": str(seller.product_ids[1]), "price": "1.00", "d": 60, "m": "SUDDEN_DEATH"}
    assert (await client.error(AUCTION, busy, token=seller.token))["extensions"]["code"] == "CONFLICT"
    assert (await client.error(AUCTION, {**busy, "p": str(other.product_ids[0])}, token=seller.token))["extensions"]["code"] == "CONFLICT"
    bidders = "query($a: ID!) { auction(id: $a) { bidders { user { username } highestBid bids } } }"
    board = (await client.data(bidders, {"a": a}, token=seller.token))["auction"]["bidders"]
    assert [b["user"]["username"] for b in board] == ["bidder2", "bidder0", "bidder1"]
    assert (await client.error(bidders, {"a": a}, token=ann))["extensions"]["code"] == "FORBIDDEN"

    # The clock runs out: the sweep (or two callers at once) closes it exactly once.
    ends = utcnow()
    await Auction.filter(id=int(a)).update(ends_at=ends)
    ended = await client.error(BID, {"a": a, "x": "50.00"}, token=bob)
    assert ended["extensions"]["code"] == "AUCTION_ENDED" and ended["extensions"]["endsAt"].startswith(ends.strftime("%Y-%m-%dT%H:%M"))
    results = await asyncio.gather(hammer.close_auction(int(a), utcnow()), hammer.close_auction(int(a), utcnow()))
    state = await until_row(lambda: Auction.get(id=int(a)), lambda r: r.order_id is not None)
    assert sum(1 for r in results if r is not None) <= 1
    order = await Order.get(id=state.order_id)
    assert str(order.total) == "26.00" and order.buyer_id == (await User.get(username="bidder2")).id
    assert await Order.filter(buyer_id=order.buyer_id).count() == 1
    assert (await Product.get(id=int(p))).stock == 4 and await StreamOrder.filter(order_id=order.id).count() == 1
    assert (await client.data(AUCTION_STATE, {"a": a}))["auction"]["closed"] is True


async def test_counter_bid_window_resets_the_clock_and_nobody_bidding_returns_the_unit(client):
    seller, stream = await shop(client, stock=2)
    s, p = str(stream.id), str(seller.product_ids[0])
    auction = (await client.data(AUCTION, {"s": s, "p": p, "price": "1.00", "d": 60, "m": "COUNTER_BID", "w": 10}, token=seller.token))["startAuction"]
    a = int(auction["id"])
    ann, bob = await tokens(2)
    # With plenty of time left a bid leaves the clock; with 3 s left it sets it to 10 s from now.
    bid = (await client.data(BID, {"a": str(a), "x": "1.00"}, token=ann))["placeBid"]
    assert bid["endsAt"] == auction["endsAt"]
    await Auction.filter(id=a).update(ends_at=utcnow() + dt.timedelta(seconds=3))
    before = utcnow()
    bid = (await client.data(BID, {"a": str(a), "x": "5.00", "k": "late"}, token=bob))["placeBid"]
    ends = dt.datetime.fromisoformat(bid["endsAt"])
    assert before + dt.timedelta(seconds=9) < ends <= utcnow() + dt.timedelta(seconds=10)
    # A repeated key bids once.
    assert (await client.data(BID, {"a": str(a), "x": "5.00", "k": "late"}, token=bob))["placeBid"]["id"] == bid["id"]
    assert await Bid.filter(auction_id=a).count() == 2

    # Sudden death with no bid: the unit goes back to stock when it closes; no order.
    await Auction.filter(id=a).update(closed_at=utcnow(), ends_at=utcnow())  # out of the way
    quiet = (await client.data(AUCTION, {"s": s, "p": p, "price": "1.00", "d": 10, "m": "SUDDEN_DEATH"}, token=seller.token))["startAuction"]
    await Auction.filter(id=int(quiet["id"])).update(ends_at=utcnow())
    row = await until_row(lambda: Auction.get(id=int(quiet["id"])), lambda r: r.closed_at is not None)
    assert row.order_id is None and (await Product.get(id=int(p))).stock == 1


# ---------------------------------------------------------------- live stock pushed


async def test_live_stock_deals_and_bids_are_pushed(client):
    seller, stream = await shop(client, stock=3)
    s, p = str(stream.id), str(seller.product_ids[0])
    (buyer,) = await tokens(1)
    async with LivecartClient(base_url(client)) as viewer:
        updates = viewer.subscribe(LIVE, {"s": s})
        first = (await next_of(updates))["liveCommerce"]
        assert [x["stock"] for x in first["products"]] == [3, 3] and first["auction"] is None
        await client.data(BUY, {"p": p, "q": 3, "s": s}, token=buyer)
        seen = []
        while not any(x["soldOut"] for x in (seen[-1]["products"] if seen else [])):
            seen.append((await next_of(updates))["liveCommerce"])
        assert seen[-1]["products"][0]["stock"] == 0
        assert any(state["justBought"] == {"name": "Product 0"} for state in seen)
        assert all(state["justBoughtBy"] is None for state in seen)  # "someone", unless they allow it
        named = "mutation($p: ID!, $s: ID) { buyNow(productId: $p, streamId: $s, showMyName: true) { id } }"
        await client.data(named, {"p": str(seller.product_ids[1]), "s": s}, token=buyer)
        state = (await next_of(updates))["liveCommerce"]
        while state["justBoughtBy"] is None:
            state = (await next_of(updates))["liveCommerce"]
        assert (state["justBoughtBy"], state["justBought"]) == ("buyer0", {"name": "Product 1"})
        await Product.filter(id=int(p)).update(stock=5)
        await client.data(DEAL, {"s": s, "p": p, "price": "2.00", "q": 4, "l": 2}, token=seller.token)
        state = (await next_of(updates))["liveCommerce"]
        while not state["deals"]:
            state = (await next_of(updates))["liveCommerce"]
        assert state["deals"][0]["left"] == 4
        auction = (await client.data(AUCTION, {"s": s, "p": str(seller.product_ids[1]), "price": "3.00", "d": 60, "m": "SUDDEN_DEATH"}, token=seller.token))["startAuction"]
        await client.data(BID, {"a": auction["id"], "x": "3.00"}, token=buyer)
        state = (await next_of(updates))["liveCommerce"]
        while not (state["auction"] and state["auction"]["bidCount"] == 1):
            state = (await next_of(updates))["liveCommerce"]
        assert state["auction"]["price"] == "3.00" and state["auction"]["secondsLeft"] > 0
        await updates.aclose()


# ---------------------------------------------------------------- the replay's timeline


async def test_the_replay_timeline_by_offset_and_range(client):
    seller, stream = await shop(client)
    s, first, second = str(stream.id), str(seller.product_ids[0]), str(seller.product_ids[1])
    await client.data("mutation($s: ID!, $p: ID!) { featureProduct(streamId: $s, productId: $p) { id } }", {"s": s, "p": second}, token=seller.token)
    deal = (await client.data(DEAL, {"s": s, "p": second, "price": "2.00", "q": 4, "l": 2, "d": 1200}, token=seller.token))["startFlashDeal"]
    buyer = await register(client, "chatter")
    for text in ("hello", "later"):
        await client.data("mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id } }", {"s": s, "t": text}, token=buyer.token)
    # Place the moments on the clock: the stream began 100 s ago, "later" came at 60 s, the feature at 30 s.
    from livecart.models.engagement import StreamInteraction
    from livecart.models.live import StreamMoment

    start = utcnow() - dt.timedelta(seconds=100)
    await LiveStream.filter(id=stream.id).update(started_at=start)
    await StreamInteraction.filter(comment_text="hello").update(created_at=start + dt.timedelta(seconds=5))
    await StreamInteraction.filter(comment_text="later").update(created_at=start + dt.timedelta(seconds=60))
    await StreamMoment.filter(stream_id=stream.id).update(at=start + dt.timedelta(seconds=30))
    await FlashDeal.filter(id=int(deal["id"])).update(opens_at=start + dt.timedelta(seconds=40))
    ended = await client.data('mutation($id: ID!) { endStream(id: $id, action: SAVE) { savedStream { id durationSeconds } } }', {"id": s}, token=seller.token)
    saved = ended["endStream"]["savedStream"]
    assert 99 <= saved["durationSeconds"] <= 115  # the requests since `start` take a while on a loaded machine
    timeline = """query($id: ID!, $f: Int, $t: Int) { replayTimeline(savedStreamId: $id, fromSeconds: $f, toSeconds: $t) {
      durationSeconds comments { offsetSeconds comment { text } } products { fromSeconds toSeconds product { id } }
      deals { fromSeconds toSeconds deal { id } } } }"""
    whole = (await client.data(timeline, {"id": saved["id"]}))["replayTimeline"]
    duration = whole["durationSeconds"]
    assert [(c["offsetSeconds"], c["comment"]["text"]) for c in whole["comments"]] == [(5, "hello"), (60, "later")]
    assert [(x["fromSeconds"], x["toSeconds"], x["product"]["id"]) for x in whole["products"]] == [(0, 30, first), (30, duration, second)]
    # The deal never closed (its 20 minutes outlast the stream): it ends at the stream's end, not later.
    assert [(d["fromSeconds"], d["toSeconds"]) for d in whole["deals"]] == [(40, duration)]
    early = (await client.data(timeline, {"id": saved["id"], "f": 0, "t": 20}))["replayTimeline"]
    assert [c["comment"]["text"] for c in early["comments"]] == ["hello"] and early["deals"] == []
    assert [x["product"]["id"] for x in early["products"]] == [first]
    assert (await client.error(timeline, {"id": saved["id"], "f": 20, "t": 10}))["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await client.error(timeline, {"id": "999"}))["extensions"]["code"] == "NOT_FOUND"
    assert await SavedStream.exists(id=int(saved["id"]))
    assert Decimal(whole["durationSeconds"]) == Decimal(duration)
    assert await OrderItem.all().count() == 0


# ---------------------------------------------------------------- product images

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
SET_IMAGE = "mutation($p: ID!, $i: Upload, $u: String) { setProductImage(productId: $p, image: $i, imageUrl: $u) { imageUrl } }"


async def upload(client, token: str, product: str, data: bytes, filename: str = "mug.png"):
    import json

    import aiohttp

    form = aiohttp.FormData()
    form.add_field("operations", json.dumps({"query": SET_IMAGE, "variables": {"p": product, "i": None}}))
    form.add_field("map", json.dumps({"0": ["variables.i"]}))
    form.add_field("0", data, filename=filename, content_type="image/png")
    response = await client.http.post("/graphql", data=form, headers={"Authorization": f"Bearer {token}"})
    return response.status, await response.json()


@pytest.fixture
def image_settings(settings, tmp_path):
    return settings.replace(image_dir=str(tmp_path / "images"), image_max_bytes=1000)


async def test_product_images_upload_within_limits_or_an_https_url(aiohttp_client, image_settings, tmp_path):
    from livecart.server.app import create_app
    from tests.support import GraphQLClient

    client = GraphQLClient(await aiohttp_client(create_app(image_settings)))
    seller = await make_vendor(client, products=1)
    other = await make_vendor(client, "other", products=0)
    product = str(seller.product_ids[0])
    status, body = await upload(client, seller.token, product, PNG)
    assert status == 200 and not body.get("errors"), body
    url = body["data"]["setProductImage"]["imageUrl"]
    assert url.startswith("/images/") and url.endswith(".png")
    served = await client.http.get(url)
    assert served.status == 200 and await served.read() == PNG
    stored = sorted(p.name for p in (tmp_path / "images").iterdir())

    # Too large, or not an image (whatever the client calls it): BAD_USER_INPUT, nothing stored.
    for data, why in ((PNG + b"\x00" * 1000, "too large"), (b"<svg onload=alert(1)>", "type")):
        status, body = await upload(client, seller.token, product, data, "x.png")
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", why
        assert body["errors"][0]["extensions"]["argument"] == "image"
    too_large = (await upload(client, seller.token, product, PNG + b"\x00" * 1000))[1]["errors"][0]
    assert too_large["extensions"]["limit"] == 1000
    # A request far over the limit is refused before its body is read.
    status, body = await upload(client, seller.token, product, PNG + b"\x00" * 200_000)
    assert status == 413 and body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "argument": "image", "limit": 1000}
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == stored
    assert (await Product.get(id=int(product))).image_url == url

    # Or an https URL; not http, not a path, not both, and only the seller's own product.
    for bad in ("http://img.test/a.png", "/images/x.png", "https://", "javascript:alert(1)"):
        error = await client.error(SET_IMAGE, {"p": product, "u": bad}, token=seller.token)
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "imageUrl"}, bad
    assert (await client.error(SET_IMAGE, {"p": product}, token=seller.token))["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await client.error(SET_IMAGE, {"p": product, "u": "https://img.test/a.png"}, token=other.token))["extensions"]["code"] == "FORBIDDEN"
    done = await client.data(SET_IMAGE, {"p": product, "u": "https://img.test/a.png"}, token=seller.token)
    assert done["setProductImage"]["imageUrl"] == "https://img.test/a.png"


async def test_answers_read_off_the_clock_are_never_a_shared_cached_answer(client):
    seller, stream = await shop(client)
    clocked = {"query": "query($s: ID!) { liveCommerce(streamId: $s) { serverTime } }", "variables": {"s": str(stream.id)}}
    plain = {"query": "query($s: ID!) { liveCommerce(streamId: $s) { products { stock } } }", "variables": {"s": str(stream.id)}}
    seen = {}
    for name, body in (("clocked", clocked), ("plain", plain)):
        headers = []
        for _ in range(5):
            response = await client.http.post("/graphql", json=body)
            headers.append(response.headers.get("X-Livecart-Cache"))
        seen[name] = headers
    # The same document without the clock is shared (some answer is a hit, unless every one of five
    # raced a write); with it, never.
    assert seen["clocked"] == [None] * 5 and {"hit", "shared"} & set(seen["plain"]), seen
