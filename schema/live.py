"""Live commerce in the schema (issue 18): flash deals, auctions, live stock and the shoppable replay."""
from __future__ import annotations

import datetime as dt
import enum
from collections.abc import AsyncGenerator
from decimal import Decimal
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from livecart.models import live as m
from livecart.models.fields import MAX_PAGE
from livecart.models.policy import owned_stream
from livecart.models.clock import utcnow
from livecart.resolvers import catalog as catalog_r
from livecart.resolvers import live as r
from livecart.schema.catalog import Product, ProductOnStream
from livecart.schema.commerce import IdempotencyKeyArg
from livecart.schema.cost import list_size
from livecart.schema.facts import caller_dependent, fed_by
from livecart.schema.engagement import Comment
from livecart.schema.permissions import IsAuthenticated, IsVendor
from livecart.schema.realtime import AFTER, _follow, at_cursor
from livecart.schema.scalars import EVENT_CURSOR
from livecart.schema.user import User, user_type
from livecart.models import events
from livecart.subscriptions.hub import SharedEvent
from livecart.resolvers.realtime import Step

AuctionMode = strawberry.enum(m.AuctionMode, name="AuctionMode", description=(
    "SUDDEN_DEATH: the clock never moves. COUNTER_BID: a bid in the last windowSeconds sets the clock "
    "back to windowSeconds."
))

INCREMENT_RULES = (
    "A bid must be at least the current price plus the increment of the band the price is in: "
    + "; ".join(
        f"from {floor}: {step}" for floor, step in m.INCREMENTS
    )
    + ". The first bid must be at least the starting price."
)


def _seconds_until(moment: dt.datetime, now: dt.datetime) -> float:
    return round(max(0.0, (moment - now).total_seconds()), 3)


@strawberry.type(description="One band of the auction increment table.")
class IncrementStep:
    from_price: Decimal
    increment: Decimal


@strawberry.enum
class DealStatus(enum.Enum):
    UPCOMING = "upcoming"
    OPEN = "open"
    ENDED = "ended"


@strawberry.type(description="A flash deal: the deal price for `quantity` units, at most `perBuyerLimit` per buyer.")
class FlashDeal(ProductOnStream):
    model: strawberry.Private[m.FlashDeal]

    @strawberry.field
    def price(self) -> Decimal:
        return self.model.price

    @strawberry.field
    def quantity(self) -> int:
        return self.model.quantity

    @strawberry.field
    def sold(self) -> int:
        return self.model.sold

    @strawberry.field(description="Units left at the deal price.")
    def left(self) -> int:
        return self.model.quantity - self.model.sold

    @strawberry.field
    def per_buyer_limit(self) -> int:
        return self.model.per_buyer_limit

    @strawberry.field
    def opens_at(self) -> dt.datetime:
        return self.model.opens_at

    @strawberry.field
    def ends_at(self) -> dt.datetime:
        return self.model.ends_at

    @strawberry.field
    def ended_at(self) -> dt.datetime | None:
        return self.model.ended_at

    @strawberry.field(description="By the server's clock when this answer was made.")
    def status(self) -> DealStatus:
        now = utcnow()
        if self.model.ended_at is not None or now >= self.model.ends_at or self.model.sold >= self.model.quantity:
            return DealStatus.ENDED
        return DealStatus.UPCOMING if now < self.model.opens_at else DealStatus.OPEN

    @strawberry.field(description="Seconds until it opens, by the server's clock (0 once open).")
    def seconds_to_open(self) -> float:
        return _seconds_until(self.model.opens_at, utcnow())

    @strawberry.field(description="Seconds until it ends, by the server's clock.")
    def seconds_left(self) -> float:
        return _seconds_until(self.model.ended_at or self.model.ends_at, utcnow())


@strawberry.type
class Bid:
    model: strawberry.Private[m.Bid]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.model.id))

    @strawberry.field
    def auction_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.model.auction_id))

    @strawberry.field
    async def bidder(self, info: Info) -> User:
        return await user_type(info, self.model.bidder_id)

    @strawberry.field
    def amount(self) -> Decimal:
        return self.model.amount

    @strawberry.field(description="Placed for the bidder by their maximum (proxy bid).")
    def proxy(self) -> bool:
        return self.model.proxy

    @strawberry.field(description="The auction's end after this bid.")
    def ends_at(self) -> dt.datetime:
        return self.model.ends_at

    @strawberry.field
    def created_at(self) -> dt.datetime:
        return self.model.created_at


@strawberry.type
class AuctionBidder:
    user_id: strawberry.Private[int]
    highest_bid: Decimal
    bids: int

    @strawberry.field
    async def user(self, info: Info) -> User:
        return await user_type(info, self.user_id)


@strawberry.type(description="A live auction of one unit. " + INCREMENT_RULES)
class Auction(ProductOnStream):
    model: strawberry.Private[m.Auction]

    @strawberry.field
    def starting_price(self) -> Decimal:
        return self.model.starting_price

    @strawberry.field
    def mode(self) -> AuctionMode:
        return self.model.mode

    @strawberry.field
    def window_seconds(self) -> int:
        return self.model.window_seconds

    @strawberry.field
    def started_at(self) -> dt.datetime:
        return self.model.started_at

    @strawberry.field(description="The clock: when it ends (or ended), by the server.")
    def ends_at(self) -> dt.datetime:
        return self.model.ends_at

    @strawberry.field(description="Seconds left by the server's clock when this answer was made.")
    def seconds_left(self) -> float:
        return 0.0 if self.model.closed_at else _seconds_until(self.model.ends_at, utcnow())

    @strawberry.field
    def closed(self) -> bool:
        return self.model.closed_at is not None

    @strawberry.field(description="The standing bid; null before the first (the hammer price once closed).")
    def price(self) -> Decimal | None:
        return self.model.price

    @strawberry.field(description="The least the next bid may be (by the increment table).")
    def minimum_bid(self) -> Decimal:
        return m.minimum_bid(self.model)

    @strawberry.field
    def bid_count(self) -> int:
        return self.model.bid_count

    @strawberry.field
    async def leader(self, info: Info) -> User | None:
        return await user_type(info, self.model.leader_id) if self.model.leader_id else None

    @strawberry.field(description="The winner's order, once closed with a bid.")
    def order_id(self) -> strawberry.ID | None:
        return strawberry.ID(str(self.model.order_id)) if self.model.order_id else None

    @strawberry.field(description="Newest first: the first `limit` (1 to 100).", metadata=list_size(100, "limit", 20))
    async def bids(self, limit: int = 20) -> list[Bid]:
        limit = max(1, min(limit, 100))
        return [Bid(model=b) for b in await m.Bid.filter(auction_id=self.model.id).order_by("-id").limit(limit)]

    @strawberry.field(
        description=f"Owner only: everyone who bid, highest first (the first {MAX_PAGE}).",
        metadata=caller_dependent(list_size(MAX_PAGE)),
    )
    async def bidders(self, info: Info) -> list[AuctionBidder]:
        await owned_stream(self.model.stream_id, (await info.context.require_user()).id)  # the one policy
        rows = (await m.bidders_of(self.model.id))[:MAX_PAGE]
        return [AuctionBidder(user_id=u, highest_bid=h, bids=c) for u, h, c in rows]


@strawberry.type
class ProductStock:
    model: strawberry.Private[Any]

    @strawberry.field
    def product(self) -> Product:
        return Product.from_model(self.model)

    @strawberry.field(description="Units left, from the row checkout takes stock from.")
    def stock(self) -> int:
        return self.model.stock

    @strawberry.field
    def sold_out(self) -> bool:
        return self.model.stock == 0


@strawberry.type(description="What a live page's commerce shows: stock, deals, the auction, the social line.")
class LiveCommerce:
    state: strawberry.Private[r.LiveState]
    event_cursor: str | None = strawberry.field(default=None, description=EVENT_CURSOR)

    @strawberry.field
    def stream_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.state.stream_id))

    @strawberry.field(description="The server's clock: clients count down from it, not their own.")
    def server_time(self) -> dt.datetime:
        return utcnow()

    @strawberry.field(
        description=f"Featured products, the highlighted one first (the first {MAX_PAGE}).", metadata=list_size(MAX_PAGE)
    )
    def products(self) -> list[ProductStock]:
        return [ProductStock(model=p) for p in self.state.products[:MAX_PAGE]]

    @strawberry.field(description=f"Deals counting down or open (the first {MAX_PAGE}).", metadata=list_size(MAX_PAGE))
    def deals(self) -> list[FlashDeal]:
        return [FlashDeal(model=d) for d in self.state.deals[:MAX_PAGE]]

    @strawberry.field(description="The stream's latest auction, running or closed.")
    def auction(self) -> Auction | None:
        return Auction(model=self.state.auction) if self.state.auction else None

    @strawberry.field(description='For "someone just bought ...": what the latest purchase was.')
    def just_bought(self) -> Product | None:
        return Product.from_model(self.state.just_bought) if self.state.just_bought else None

    @strawberry.field(description="Who bought it, only when the buyer allowed it (showMyName); else null: someone.")
    def just_bought_by(self) -> str | None:
        return self.state.just_bought_by


# ---------------------------------------------------------------- the replay


@strawberry.type
class TimelineComment:
    offset_seconds: int
    comment: Comment


@strawberry.type
class TimelineProduct:
    from_seconds: int
    to_seconds: int
    model: strawberry.Private[Any]

    @strawberry.field
    async def product(self, info: Info) -> Product:
        return Product.from_model(await catalog_r.product_by_id(info, self.model))


@strawberry.type
class TimelineDeal:
    from_seconds: int
    to_seconds: int
    deal: FlashDeal


@strawberry.type
class TimelineAuction:
    from_seconds: int
    to_seconds: int
    auction: Auction


@strawberry.type(description="A saved stream's moments by offset in seconds from its start; spans overlapping the range asked.")
class ReplayTimeline:
    saved_stream_id: strawberry.ID
    duration_seconds: int
    comments: list[TimelineComment] = strawberry.field(
        description=f"The first {m.MAX_TIMELINE_ITEMS} in the range.", metadata=list_size(m.MAX_TIMELINE_ITEMS)
    )
    products: list[TimelineProduct] = strawberry.field(
        description=f"The first {m.MAX_TIMELINE_ITEMS} in the range.", metadata=list_size(m.MAX_TIMELINE_ITEMS)
    )
    deals: list[TimelineDeal] = strawberry.field(
        description=f"The first {m.MAX_TIMELINE_ITEMS} in the range.", metadata=list_size(m.MAX_TIMELINE_ITEMS)
    )
    auctions: list[TimelineAuction] = strawberry.field(
        description=f"The first {m.MAX_TIMELINE_ITEMS} in the range.", metadata=list_size(m.MAX_TIMELINE_ITEMS)
    )


# ---------------------------------------------------------------- root fields


@strawberry.type
class LiveQuery:
    @strawberry.field(description="A stream's live stock, deals and auction now.")
    async def live_commerce(self, stream_id: strawberry.ID) -> LiveCommerce:
        return LiveCommerce(state=await r.live_state_query(stream_id))

    @strawberry.field
    async def auction(self, id: strawberry.ID) -> Auction | None:
        row = await r.auction(id)
        return Auction(model=row) if row else None

    @strawberry.field(description="The auction increment table. " + INCREMENT_RULES, metadata=list_size(len(m.INCREMENTS)))
    def auction_increments(self) -> list[IncrementStep]:
        return [IncrementStep(from_price=floor, increment=step) for floor, step in m.INCREMENTS]

    @strawberry.field(
        description="A replay's timeline from `fromSeconds` to `toSeconds` (inclusive; either may be left out):"
        " comments at their offset, and the products featured, deals and auctions as spans overlapping the range."
    )
    async def replay_timeline(
        self, saved_stream_id: strawberry.ID, from_seconds: int | None = None, to_seconds: int | None = None
    ) -> ReplayTimeline:
        saved, timeline = await r.replay_timeline(saved_stream_id, from_seconds, to_seconds)
        return ReplayTimeline(
            saved_stream_id=strawberry.ID(str(saved.id)),
            duration_seconds=timeline.duration,
            comments=[TimelineComment(offset_seconds=o, comment=Comment.from_model(c)) for o, c in timeline.comments],
            products=[TimelineProduct(from_seconds=s.start, to_seconds=s.end, model=s.product_id) for s in timeline.products],
            deals=[TimelineDeal(from_seconds=s.start, to_seconds=s.end, deal=FlashDeal(model=s.ref)) for s in timeline.deals],
            auctions=[
                TimelineAuction(from_seconds=s.start, to_seconds=s.end, auction=Auction(model=s.ref)) for s in timeline.auctions
            ],
        )


@strawberry.type
class LiveMutation:
    @strawberry.mutation(
        description="Owner only: a flash deal on a featured product of a LIVE stream. countdownSeconds 0 (opens at once)"
        " or 10 to 300; durationSeconds 60 to 1200; perBuyerLimit 1 to quantity.",
        permission_classes=[IsVendor],
    )
    async def start_flash_deal(
        self, info: Info, stream_id: strawberry.ID, product_id: strawberry.ID, price: Decimal, quantity: int,
        per_buyer_limit: int, duration_seconds: int, countdown_seconds: int = 0,
    ) -> FlashDeal:
        deal = await r.start_deal(
            info, stream_id, product_id, price=price, quantity=quantity, per_buyer_limit=per_buyer_limit,
            countdown_seconds=countdown_seconds, duration_seconds=duration_seconds,
        )
        return FlashDeal(model=deal)

    @strawberry.mutation(
        description="Owner only: auctions one unit of a featured product of a LIVE stream (taken from stock; put back"
        " if nobody bids). durationSeconds 10 to 600; windowSeconds (COUNTER_BID only) 1 to 60.",
        permission_classes=[IsVendor],
    )
    async def start_auction(
        self, info: Info, stream_id: strawberry.ID, product_id: strawberry.ID, starting_price: Decimal,
        duration_seconds: int, mode: AuctionMode, window_seconds: int | None = None,
    ) -> Auction:
        auction = await r.start_auction(
            info, stream_id, product_id, starting_price=starting_price, duration_seconds=duration_seconds,
            mode=mode, window_seconds=window_seconds,
        )
        return Auction(model=auction)

    @strawberry.mutation(
        description="A bid of `amount` (at least the auction's minimumBid), with an optional maximum the server"
        " bids up to for you (proxy). BID_TOO_LOW carries minimumBid; AUCTION_ENDED carries endsAt. " + INCREMENT_RULES,
        permission_classes=[IsAuthenticated],
    )
    async def place_bid(
        self, info: Info, auction_id: strawberry.ID, amount: Decimal, max_amount: Decimal | None = None,
        idempotency_key: IdempotencyKeyArg = None,
    ) -> Bid:
        return Bid(model=await r.place_bid(info, auction_id, amount, max_amount, idempotency_key))


LIVE_KINDS = events.kinds_of(events.stock_changed, events.sold_out, events.deal_changed, events.auction_changed)


@strawberry.type
class LiveSubscription:
    @strawberry.subscription(
        description="The stream's live stock, deals and auction: at once, then on every bid, deal change and sell-out,"
        " and on purchases at most twice a second.",
        metadata=fed_by(LIVE_KINDS),
    )
    async def live_commerce(
        self, info: Info, stream_id: strawberry.ID, after: Annotated[str | None, strawberry.argument(description=AFTER)] = None
    ) -> AsyncGenerator[LiveCommerce, None]:
        async def state_of(event: SharedEvent) -> LiveCommerce:
            bought = event.get("product_id") if event.get("bought") else None
            key, buyer = event["stream_id"], event.get("buyer_id")
            return await event.once("live", lambda: _state(key, bought, buyer))

        async for value in _follow(info, stream_id, LIVE_KINDS, state_of, after=after, replay="none"):
            if isinstance(value, Step):
                if value.stream is not None:
                    yield at_cursor(await _state(value.stream.id, None), value.cursor)
            else:
                yield value


async def _state(stream_id: int, bought: int | None, buyer: int | None = None) -> LiveCommerce:
    return LiveCommerce(state=await r.live_state(stream_id, bought, buyer))
