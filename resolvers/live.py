"""Flash deals, auctions, live stock and the replay's timeline (issue 18): thin over models/live.py,
publishing after each commit."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from strawberry.types import Info

from livecart.models import hammer as hammer_of
from livecart.models import live
from livecart.models.catalog import Product
from livecart.models.commerce import Purchase
from livecart.models.errors import bad_input, not_found
from livecart.models.fields import parse_id
from livecart.models.policy import owned_stream
from livecart.models.stream import LiveStream, SavedStream, StreamProduct
from livecart.models.clock import utcnow
from livecart.models.user import User
from livecart.models import events
from livecart.subscriptions.broker import Broker, publish_to_stream

log = logging.getLogger("livecart.live")


# ---------------------------------------------------------------- the seller's actions


async def start_deal(info: Info, stream_id: str, product_id: str, **values) -> live.FlashDeal:
    user = await info.context.require_user()
    stream = await owned_stream(parse_id("streamId", stream_id), user.id)
    deal = await live.start_deal(stream, parse_id("productId", product_id), **values)
    log.info("deal %s started on stream %s", deal.id, stream.id)
    await publish_to_stream(info.context.broker, stream.id, events.deal_changed(stream.id, deal.id))
    await info.context.broker.publish(events.CLOCKS_CHANNEL, events.clock_set("deal", deal.id, deal.ends_at))
    return deal


async def start_auction(info: Info, stream_id: str, product_id: str, **values) -> live.Auction:
    user = await info.context.require_user()
    stream = await owned_stream(parse_id("streamId", stream_id), user.id)
    auction = await live.start_auction(stream, parse_id("productId", product_id), **values)
    log.info("auction %s started on stream %s", auction.id, stream.id)
    await publish_to_stream(
        info.context.broker, stream.id,
        events.auction_changed(stream.id, auction.id), events.stock_changed(stream.id, auction.product_id),
    )
    await info.context.broker.publish(events.CLOCKS_CHANNEL, events.clock_set("auction", auction.id, auction.ends_at))
    return auction


async def place_bid(info: Info, auction_id: str, amount: Decimal, max_amount: Decimal | None, key: str | None) -> live.Bid:
    user = await info.context.require_user()
    outcome = await live.place_bid_once(parse_id("auctionId", auction_id), user.id, amount, max_amount, key)
    if not outcome.replayed:
        auction = outcome.auction
        await publish_to_stream(info.context.broker, auction.stream_id, events.auction_changed(auction.stream_id, auction.id))
        if outcome.clock_moved:
            await info.context.broker.publish(events.CLOCKS_CHANNEL, events.clock_set("auction", auction.id, auction.ends_at))
    return outcome.bid


async def publish_purchase(broker: Broker, purchase: Purchase) -> None:
    """After an order's commit, once per stream it told: the events the order logged there
    (models/commerce.place_order): the seller's order feed, live stock (coalesced), sold out at
    once, and the deals it ended. Never raises (publish_to_stream does not): the order is placed
    whatever happens to its announcement, and the relay delivers from the log what is not sent."""
    for stream_id in purchase.logged_stream_ids:
        await publish_to_stream(broker, stream_id)


# ---------------------------------------------------------------- the clocks


async def sweep_clocks(broker: Broker) -> bool:
    """Ends the deals and auctions whose time is up; every process runs it, and each end is won by
    one (a conditional UPDATE), which alone publishes it. True if this process ended any."""
    now = utcnow()
    ended = await live.end_due_deals(now)
    for deal in ended:
        log.info("deal %s ended (time)", deal.id)
        await publish_to_stream(broker, deal.stream_id, events.deal_changed(deal.stream_id, deal.id))
    closed = 0
    for auction_id in await live.due_auctions(now):
        hammer = await hammer_of.close_auction(auction_id, now)
        if hammer is None:
            continue  # another process (or an earlier pass) ended it
        closed += 1
        auction = hammer.auction
        log.info("auction %s closed: order %s", auction.id, hammer.order_id)
        published = [events.auction_changed(auction.stream_id, auction.id), events.stock_changed(auction.stream_id, auction.product_id)]
        if hammer.stream_order_id is not None:
            published.append(events.order_placed(auction.stream_id, hammer.stream_order_id))
        await publish_to_stream(broker, auction.stream_id, *published)
    return bool(ended or closed)


# ---------------------------------------------------------------- what the live page shows


@dataclass
class LiveState:
    stream_id: int
    products: list[Product]
    deals: list[live.FlashDeal]
    auction: live.Auction | None
    just_bought: Product | None
    just_bought_by: str | None = None  # the buyer's username, when they allowed it


async def live_state(stream_id: int, just_bought_id: int | None = None, buyer_id: int | None = None) -> LiveState:
    """Featured products with their stock (the rows checkout takes stock from), the deals running
    or counting down, and the stream's latest auction: what a live page's commerce shows."""
    if not await LiveStream.exists(id=stream_id):
        raise not_found("stream", stream_id)
    now = utcnow()
    product_ids = await StreamProduct.filter(stream_id=stream_id).order_by("-highlighted", "position").values_list("product_id", flat=True)
    rows = {p.id: p for p in await Product.filter(id__in=list(product_ids))}
    deals = await live.FlashDeal.filter(stream_id=stream_id, ended_at__isnull=True, ends_at__gt=now).order_by("opens_at", "id")
    auction = await live.Auction.filter(stream_id=stream_id).order_by("-id").first()
    just_bought = await Product.get_or_none(id=just_bought_id) if just_bought_id else None
    buyer = await User.get_or_none(id=buyer_id) if just_bought and buyer_id else None
    return LiveState(
        stream_id, [rows[i] for i in product_ids if i in rows], deals, auction, just_bought,
        buyer.username if buyer else None,
    )


async def live_state_query(stream_id: str) -> LiveState:
    return await live_state(parse_id("streamId", stream_id))


async def auction(auction_id: str) -> live.Auction | None:
    return await live.Auction.get_or_none(id=parse_id("id", auction_id))


async def deal_revenue(stream_id: int) -> Decimal:
    return await live.deal_revenue_of_stream(stream_id)


async def my_deal_units(info: Info, deal_id: int) -> int | None:
    user = await info.context.user()
    if user is None:
        return None
    return sum(await live.DealPurchase.filter(deal_id=deal_id, buyer_id=user.id).values_list("quantity", flat=True))


# ---------------------------------------------------------------- the replay


async def replay_timeline(saved_stream_id: str, start: int | None, end: int | None) -> tuple[SavedStream, live.Timeline]:
    saved = await SavedStream.get_or_none(id=parse_id("savedStreamId", saved_stream_id))
    if saved is None:
        raise not_found("saved stream", saved_stream_id)
    if start is not None and start < 0:
        raise bad_input("from", "0 or more seconds")
    if start is not None and end is not None and end < start:
        raise bad_input("to", "not before from")
    stream = await LiveStream.get(id=saved.stream_id)
    return saved, await live.timeline(stream, saved.duration_seconds, start, end)
