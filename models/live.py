"""Live commerce on a stream (issue 18): flash deals, live auctions, idempotent purchases and
the moments a replay's timeline is made of.

Every limit is enforced inside the database transaction that acts on it: a deal's row is
locked (FOR UPDATE on PostgreSQL; SQLite serialises writers) before its units and the buyer's
share are counted, an auction's row before a bid is weighed, and a clock ends by one
conditional UPDATE that exactly one process wins, however many sweep.
"""
from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from decimal import Decimal

from tortoise import fields
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.indexes import Index
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model

from livecart.models import outbox
from livecart.models.catalog import Product
from livecart.models.engagement import InteractionType, StreamInteraction
from livecart.models.errors import DomainError, ErrorCode, bad_input, conflict, forbidden, not_found
from livecart.models.fields import MAX_MONEY, MoneyField, plain_text, to_money
from livecart.models.stream import LiveStream, StreamProduct, StreamStatus
from livecart.models import events
from livecart.models.clock import utcnow

# ---------------------------------------------------------------- the rules, stated once

DEAL_COUNTDOWN_SECONDS = (0, 300)  # 0: opens at once; otherwise 10 to 300
DEAL_MIN_COUNTDOWN = 10
DEAL_DURATION_SECONDS = (60, 20 * 60)
AUCTION_DURATION_SECONDS = (10, 10 * 60)
AUCTION_WINDOW_SECONDS = (1, 60)
MAX_DEAL_QUANTITY = 100_000

# The increment table: a bid must beat the price by the step of the band the price is in.
INCREMENTS: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal("0.00"), Decimal("0.50")),
    (Decimal("10.00"), Decimal("1.00")),
    (Decimal("50.00"), Decimal("2.00")),
    (Decimal("100.00"), Decimal("5.00")),
    (Decimal("500.00"), Decimal("10.00")),
    (Decimal("1000.00"), Decimal("25.00")),
)


def increment_for(price: Decimal) -> Decimal:
    step = INCREMENTS[0][1]
    for floor, band_step in INCREMENTS:
        if price >= floor:
            step = band_step
    return step


class AuctionMode(str, enum.Enum):
    SUDDEN_DEATH = "sudden_death"
    COUNTER_BID = "counter_bid"


class FlashDeal(Model):
    id = fields.IntField(primary_key=True)
    stream = fields.ForeignKeyField("models.LiveStream", related_name="deals", on_delete=fields.CASCADE)
    product = fields.ForeignKeyField("models.Product", related_name="deals", on_delete=fields.RESTRICT)
    price = MoneyField()
    quantity = fields.IntField()
    sold = fields.IntField(default=0)
    per_buyer_limit = fields.IntField()
    revenue = MoneyField(default=0)
    opens_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    # Set once, by whichever process or purchase ends it first (time up or sold out).
    ended_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "flash_deals"
        indexes = (Index(fields=("stream_id", "product_id"), name="flash_deals_idx_stream_product"),)
        constraints = (
            # The database's own word on the deal's units, whatever the code does.
            CheckConstraint(
                check="sold >= 0 AND sold <= quantity AND per_buyer_limit >= 1 AND price > 0 AND revenue >= 0",
                name="flash_deals_units_valid",
            ),
        )


class DealPurchase(Model):
    """One buyer's units of one deal in one order: their sum per buyer is the per-buyer limit's count."""

    id = fields.IntField(primary_key=True)
    deal = fields.ForeignKeyField("models.FlashDeal", related_name="purchases", on_delete=fields.CASCADE)
    buyer = fields.ForeignKeyField("models.User", related_name="deal_purchases", on_delete=fields.RESTRICT)
    order = fields.ForeignKeyField("models.Order", related_name="deal_purchases", on_delete=fields.CASCADE)
    quantity = fields.IntField()
    amount = MoneyField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "deal_purchases"
        indexes = (Index(fields=("deal_id", "buyer_id"), name="deal_purchases_idx_deal_buyer"),)
        constraints = (CheckConstraint(check="quantity > 0 AND amount >= 0", name="deal_purchases_valid"),)


class Auction(Model):
    id = fields.IntField(primary_key=True)
    stream = fields.ForeignKeyField("models.LiveStream", related_name="auctions", on_delete=fields.CASCADE)
    product = fields.ForeignKeyField("models.Product", related_name="auctions", on_delete=fields.RESTRICT)
    starting_price = MoneyField()
    mode = fields.CharEnumField(AuctionMode, max_length=16)
    window_seconds = fields.IntField(default=0)
    started_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    price = MoneyField(null=True)  # the standing bid; null before the first
    leader = fields.ForeignKeyField("models.User", related_name="leading", on_delete=fields.RESTRICT, null=True)
    leader_max = MoneyField(null=True)  # the leader's proxy maximum: never shown to others
    bid_count = fields.IntField(default=0)
    closed_at = fields.DatetimeField(null=True)
    order = fields.ForeignKeyField("models.Order", related_name="auctions", on_delete=fields.RESTRICT, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "auctions"
        indexes = (Index(fields=("stream_id",), name="auctions_idx_stream_id"),)
        constraints = (
            CheckConstraint(
                check="mode IN ('sudden_death', 'counter_bid') AND starting_price > 0"
                " AND (price IS NULL OR price >= starting_price) AND (leader_id IS NULL) = (price IS NULL)",
                name="auctions_valid",
            ),
        )


class Bid(Model):
    id = fields.IntField(primary_key=True)
    auction = fields.ForeignKeyField("models.Auction", related_name="bids", on_delete=fields.CASCADE)
    bidder = fields.ForeignKeyField("models.User", related_name="bids", on_delete=fields.RESTRICT)
    amount = MoneyField()
    max_amount = MoneyField()
    proxy = fields.BooleanField(default=False)  # placed by the system for the bidder, up to their maximum
    ends_at = fields.DatetimeField()  # the clock after this bid
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "bids"
        indexes = (Index(fields=("auction_id", "id"), name="bids_idx_auction"),)


class IdempotencyKey(Model):
    """A key a buyer sent with a purchase or a bid, and what it did: the first result, returned again."""

    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField("models.User", related_name="idempotency_keys", on_delete=fields.CASCADE)
    key = fields.CharField(max_length=100)
    operation = fields.CharField(max_length=16)
    order = fields.ForeignKeyField("models.Order", related_name="idempotency_keys", on_delete=fields.CASCADE, null=True)
    bid = fields.ForeignKeyField("models.Bid", related_name="idempotency_keys", on_delete=fields.CASCADE, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "idempotency_keys"
        unique_together = (("user", "key"),)


class StreamMoment(Model):
    """A moment of a stream for its replay's timeline that no other row dates: a product featured."""

    id = fields.IntField(primary_key=True)
    stream = fields.ForeignKeyField("models.LiveStream", related_name="moments", on_delete=fields.CASCADE)
    kind = fields.CharField(max_length=16)
    product = fields.ForeignKeyField("models.Product", related_name="moments", on_delete=fields.CASCADE, null=True)
    at = fields.DatetimeField()

    class Meta:
        table = "stream_moments"
        indexes = (Index(fields=("stream_id", "at"), name="stream_moments_idx_stream_at"),)


# ---------------------------------------------------------------- shared checks


def _seconds(argument: str, value: int, bounds: tuple[int, int]) -> int:
    low, high = bounds
    if not low <= value <= high:
        raise bad_input(argument, f"{low} to {high} seconds")
    return value


def _price(argument: str, value) -> Decimal:
    try:
        price = to_money(value)
    except (TypeError, ValueError):
        raise bad_input(argument, "not an amount of money") from None
    if not Decimal("0.01") <= price <= MAX_MONEY:
        raise bad_input(argument, f"must be positive and at most {MAX_MONEY}")
    return price


async def _live_featured(stream: LiveStream, product_id: int) -> None:
    """CONFLICT unless the stream is LIVE and offers the product (checked under the stream's row lock)."""
    locked = await LiveStream.filter(id=stream.id).select_for_update(no_key=True).first()
    if locked is None or locked.status != StreamStatus.LIVE:
        raise conflict(f"Only a live stream runs deals and auctions; this one is {locked.status.value if locked else 'gone'}.")
    if not await StreamProduct.exists(stream_id=stream.id, product_id=product_id):
        raise conflict(f"Product {product_id} is not featured on this stream.")


# ---------------------------------------------------------------- flash deals


def deal_is_open(deal: FlashDeal, now: dt.datetime) -> bool:
    return deal.ended_at is None and deal.opens_at <= now < deal.ends_at and deal.sold < deal.quantity


async def start_deal(
    stream: LiveStream, product_id: int, *, price, quantity: int, per_buyer_limit: int,
    countdown_seconds: int, duration_seconds: int,
) -> FlashDeal:
    price = _price("price", price)
    if not 1 <= quantity <= MAX_DEAL_QUANTITY:
        raise bad_input("quantity", f"1 to {MAX_DEAL_QUANTITY}")
    if not 1 <= per_buyer_limit <= quantity:
        raise bad_input("perBuyerLimit", "1 to the deal's quantity")
    if countdown_seconds != 0:
        _seconds("countdownSeconds", countdown_seconds, (DEAL_MIN_COUNTDOWN, DEAL_COUNTDOWN_SECONDS[1]))
    _seconds("durationSeconds", duration_seconds, DEAL_DURATION_SECONDS)
    product = await Product.get_or_none(id=product_id)
    if product is None:
        raise not_found("product", product_id)
    if quantity > product.stock:
        raise bad_input("quantity", f"at most the {product.stock} in stock")
    now = utcnow()
    async with outbox.transaction():
        await _live_featured(stream, product_id)
        if await FlashDeal.exists(stream_id=stream.id, product_id=product_id, ended_at__isnull=True, ends_at__gt=now):
            raise conflict("This product already has a deal running on this stream.")
        opens_at = now + dt.timedelta(seconds=countdown_seconds)
        deal = await FlashDeal.create(
            stream_id=stream.id, product_id=product_id, price=price, quantity=quantity,
            per_buyer_limit=per_buyer_limit, opens_at=opens_at,
            ends_at=opens_at + dt.timedelta(seconds=duration_seconds),
        )
        await outbox.append(stream.id, events.deal_changed(stream.id, deal.id))
        return deal


def over_limit(deal: FlashDeal, bought: int, wanted: int) -> DomainError:
    return DomainError(
        ErrorCode.LIMIT_EXCEEDED,
        f"This deal allows {deal.per_buyer_limit} per buyer; you have {bought} and asked {wanted} more.",
        limit=deal.per_buyer_limit, bought=bought, requested=wanted, dealId=str(deal.id),
    )


async def take_deals(buyer_id: int, lines: list, now: dt.datetime) -> tuple[dict[int, FlashDeal], list[int]]:
    """For each line bought on a stream with a deal open on its product: the deal (its price is
    the line's), after counting the units against the deal and the buyer's limit under the deal's
    row lock. Runs inside the order's transaction, before stock is taken (locks: deals in id
    order, then products in id order, so concurrent orders cannot deadlock).

    Returns ({line index: deal}, ids of the deals this sold out)."""
    wanted = {(line.stream_id, line.product_id) for line in lines if line.stream_id is not None}
    if not wanted:
        return {}, []
    candidates = await FlashDeal.filter(
        stream_id__in={s for s, _ in wanted}, product_id__in={p for _, p in wanted},
        ended_at__isnull=True, opens_at__lte=now, ends_at__gt=now, stream__status=StreamStatus.LIVE,
    ).order_by("id").values_list("id", flat=True)
    if not candidates:
        return {}, []
    deals = {
        d.id: d for d in await FlashDeal.filter(id__in=list(candidates)).order_by("id").select_for_update()
    }
    taken: dict[int, FlashDeal] = {}
    sold_out: list[int] = []
    for index, line in enumerate(lines):
        deal = next(
            (d for d in deals.values()
             if (d.stream_id, d.product_id) == (line.stream_id, line.product_id) and deal_is_open(d, now)),
            None,
        )
        if deal is None:
            continue
        bought = sum(await DealPurchase.filter(deal_id=deal.id, buyer_id=buyer_id).values_list("quantity", flat=True))
        if bought + line.quantity > deal.per_buyer_limit:
            raise over_limit(deal, bought, line.quantity)
        left = deal.quantity - deal.sold
        if line.quantity > left:
            raise DomainError(
                ErrorCode.OUT_OF_STOCK, f"Only {left} left at the deal price; {line.quantity} asked.",
                productId=str(deal.product_id), available=left, requested=line.quantity, dealId=str(deal.id),
            )
        # The conditional update is the database's own guard beside the lock: never past the quantity.
        updated = await FlashDeal.filter(id=deal.id, sold__lte=deal.quantity - line.quantity).update(
            sold=F("sold") + line.quantity,
            revenue=to_money(deal.revenue) + to_money(deal.price) * line.quantity,
            **({"ended_at": now} if deal.sold + line.quantity == deal.quantity else {}),
        )
        if not updated:
            raise AssertionError("a locked deal's units changed under us")
        deal.sold += line.quantity
        deal.revenue = to_money(deal.revenue) + to_money(deal.price) * line.quantity
        if deal.sold == deal.quantity:
            deal.ended_at = now
            sold_out.append(deal.id)
        taken[index] = deal
    return taken, sold_out


async def record_deal_purchases(buyer_id: int, order_id: int, lines: list, taken: dict[int, FlashDeal]) -> None:
    for index, deal in taken.items():
        quantity = lines[index].quantity
        await DealPurchase.create(
            deal_id=deal.id, buyer_id=buyer_id, order_id=order_id, quantity=quantity,
            amount=to_money(deal.price) * quantity,
        )


async def end_due_deals(now: dt.datetime) -> list[FlashDeal]:
    """Marks deals whose time is up as ended: each by a conditional UPDATE only one process wins,
    which logs the deal's end in the same transaction."""
    ended = []
    for deal in await FlashDeal.filter(ended_at__isnull=True, ends_at__lte=now):
        if await _end_deal(deal):
            ended.append(deal)
    return ended


async def _end_deal(deal: FlashDeal) -> bool:
    async with outbox.transaction():
        if not await FlashDeal.filter(id=deal.id, ended_at__isnull=True).update(ended_at=deal.ends_at):
            return False  # another process (or a purchase that sold it out) ended it
        await outbox.append(deal.stream_id, events.deal_changed(deal.stream_id, deal.id))
    deal.ended_at = deal.ends_at
    return True


async def deal_revenue_of_stream(stream_id: int) -> Decimal:
    return sum(
        (to_money(v) for v in await FlashDeal.filter(stream_id=stream_id).values_list("revenue", flat=True)),
        Decimal("0.00"),
    )


# ---------------------------------------------------------------- auctions


async def start_auction(
    stream: LiveStream, product_id: int, *, starting_price, duration_seconds: int,
    mode: AuctionMode, window_seconds: int | None,
) -> Auction:
    """One unit of the product, taken from stock now (so the winner's order cannot fail), put back
    if nobody bids."""
    starting_price = _price("startingPrice", starting_price)
    _seconds("durationSeconds", duration_seconds, AUCTION_DURATION_SECONDS)
    if mode == AuctionMode.COUNTER_BID:
        if window_seconds is None:
            raise bad_input("windowSeconds", "a counter-bid auction needs its window")
        _seconds("windowSeconds", window_seconds, AUCTION_WINDOW_SECONDS)
        if window_seconds > duration_seconds:
            raise bad_input("windowSeconds", "at most the auction's duration")
    elif window_seconds:
        raise bad_input("windowSeconds", "only a counter-bid auction has a window")
    if not await Product.exists(id=product_id):
        raise not_found("product", product_id)
    now = utcnow()
    async with outbox.transaction():
        # The unit first, then the stream's row: purchases lock products before streams too, so the
        # two can never wait on each other in a cycle.
        if not await Product.filter(id=product_id, stock__gte=1).update(stock=F("stock") - 1):
            raise DomainError(ErrorCode.OUT_OF_STOCK, "No unit left to auction.", productId=str(product_id), available=0, requested=1)
        await _live_featured(stream, product_id)
        if await Auction.exists(stream_id=stream.id, closed_at__isnull=True):
            raise conflict("An auction is already running on this stream.")
        auction = await Auction.create(
            stream_id=stream.id, product_id=product_id, starting_price=starting_price, mode=mode,
            window_seconds=window_seconds or 0, started_at=now,
            ends_at=now + dt.timedelta(seconds=duration_seconds),
        )
        # The unit it took is the stream's live stock too.
        await outbox.append(stream.id, events.auction_changed(stream.id, auction.id), events.stock_changed(stream.id, product_id))
        return auction


def minimum_bid(auction: Auction) -> Decimal:
    if auction.price is None:
        return to_money(auction.starting_price)
    price = to_money(auction.price)
    return price + increment_for(price)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class BidOutcome:
    bid: Bid
    auction: Auction
    bids: list[Bid]  # every row this bid wrote (the bidder's, and a proxy bid for the leader if any)
    replayed: bool = False  # the first result of an idempotency key, returned again
    clock_moved: bool = False  # a bid in the counter-bid window set the clock back


async def place_bid_once(auction_id: int, bidder_id: int, amount, max_amount=None, key: str | None = None) -> BidOutcome:
    """place_bid, acting once per idempotency key (see claim_key)."""
    key = check_key(key)

    async def earlier() -> BidOutcome | None:
        row = await remembered(bidder_id, key, "placeBid") if key is not None else None
        if row is None or row.bid_id is None:
            return None
        bid = await Bid.get(id=row.bid_id)
        return BidOutcome(bid, await Auction.get(id=bid.auction_id), [], replayed=True)

    first = await earlier()
    if first is not None:
        return first
    try:
        return await place_bid(auction_id, bidder_id, amount, max_amount, key)
    except DUPLICATE:
        first = await earlier()
        if first is None:
            raise
        return first


async def place_bid(auction_id: int, bidder_id: int, amount, max_amount=None, key: str | None = None) -> BidOutcome:
    """Weighs one bid under the auction's row lock, by the server's clock.

    Proxy bidding: the leader's maximum is kept; a lower bid is answered at once for the leader
    (up to their maximum, one increment above the challenger), a higher one takes the lead at
    one increment above the old maximum (or the bid itself, if higher). Equal maximums go to the
    earlier bid: ties resolve by commit order. A bid in the last window seconds of a counter-bid
    auction sets the clock to window seconds from now."""
    amount = _price("amount", amount)
    ceiling = _price("maxAmount", max_amount) if max_amount is not None else amount
    if ceiling < amount:
        raise bad_input("maxAmount", "at least the bid")
    async with outbox.transaction():
        claim = await claim_key(bidder_id, key, "placeBid") if key is not None else None
        auction = await Auction.filter(id=auction_id).select_for_update().first()
        if auction is None:
            raise not_found("auction", auction_id)
        now = utcnow()
        if auction.closed_at is not None or now >= auction.ends_at:
            raise DomainError(
                ErrorCode.AUCTION_ENDED, f"This auction ended at {_iso(auction.ends_at)}.", endsAt=_iso(auction.ends_at)
            )
        if auction.leader_id == bidder_id:
            # The leader raises their own maximum: the price stays, nothing is pushed as a new price.
            if ceiling <= to_money(auction.leader_max):
                raise bad_input("maxAmount", f"above your current maximum {auction.leader_max}")
            auction.leader_max = ceiling
            await auction.save(update_fields=("leader_max",))
            # No new bid: the standing one (theirs) is the answer, with the higher maximum behind it.
            bid = await Bid.filter(auction_id=auction.id, bidder_id=bidder_id).order_by("-id").first()
            if claim is not None:
                await IdempotencyKey.filter(id=claim.id).update(bid_id=bid.id)
            # Told like any bid (as it always was): subscribers read the auction again and see the same.
            await outbox.append(auction.stream_id, events.auction_changed(auction.stream_id, auction.id))
            return BidOutcome(bid, auction, [])
        least = minimum_bid(auction)
        if amount < least:
            raise DomainError(
                ErrorCode.BID_TOO_LOW, f"The next bid must be at least {least}.", minimumBid=format(least, "f")
            )
        clock_moved = False
        if auction.mode == AuctionMode.COUNTER_BID and (auction.ends_at - now).total_seconds() < auction.window_seconds:
            auction.ends_at = now + dt.timedelta(seconds=auction.window_seconds)
            clock_moved = True
        rows: list[Bid] = []
        if auction.leader_id is None or ceiling > to_money(auction.leader_max):
            old_max = to_money(auction.leader_max) if auction.leader_id is not None else None
            price = amount if old_max is None else max(amount, min(ceiling, old_max + increment_for(old_max)))
            mine = await Bid.create(auction_id=auction.id, bidder_id=bidder_id, amount=price,
                                    max_amount=ceiling, ends_at=auction.ends_at)
            rows.append(mine)
            auction.price, auction.leader_id, auction.leader_max = price, bidder_id, ceiling
        else:
            # The leader's maximum answers: the challenger's bid stands in the history, then the leader's.
            mine = await Bid.create(auction_id=auction.id, bidder_id=bidder_id, amount=amount,
                                    max_amount=ceiling, ends_at=auction.ends_at)
            leader_max = to_money(auction.leader_max)
            answer = max(amount, min(leader_max, ceiling + increment_for(ceiling)))
            rows += [mine, await Bid.create(auction_id=auction.id, bidder_id=auction.leader_id, amount=answer,
                                            max_amount=leader_max, proxy=True, ends_at=auction.ends_at)]
            auction.price = answer
        auction.bid_count += len(rows)
        await auction.save(update_fields=("price", "leader_id", "leader_max", "bid_count", "ends_at"))
        if claim is not None:
            await IdempotencyKey.filter(id=claim.id).update(bid_id=mine.id)
        await outbox.append(auction.stream_id, events.auction_changed(auction.stream_id, auction.id))
        return BidOutcome(mine, auction, rows, clock_moved=clock_moved)


async def due_auctions(now: dt.datetime) -> list[int]:
    return list(await Auction.filter(closed_at__isnull=True, ends_at__lte=now).values_list("id", flat=True))


async def bidders_of(auction_id: int) -> list[tuple[int, Decimal, int]]:
    """(bidder id, their highest bid shown, bids) per bidder, highest first."""
    best: dict[int, tuple[Decimal, int]] = {}
    for bidder_id, amount in await Bid.filter(auction_id=auction_id).values_list("bidder_id", "amount"):
        high, count = best.get(bidder_id, (Decimal("0.00"), 0))
        best[bidder_id] = (max(high, to_money(amount)), count + 1)
    return sorted(((b, h, c) for b, (h, c) in best.items()), key=lambda row: (-row[1], row[0]))


# ---------------------------------------------------------------- idempotency

MAX_KEY_LENGTH = 100


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = plain_text("idempotencyKey", key)
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise bad_input("idempotencyKey", f"1 to {MAX_KEY_LENGTH} characters")
    return key


async def remembered(user_id: int, key: str, operation: str) -> IdempotencyKey | None:
    row = await IdempotencyKey.get_or_none(user_id=user_id, key=key)
    if row is not None and row.operation != operation:
        raise conflict(f"This idempotency key was used for {row.operation}.")
    return row


async def claim_key(user_id: int, key: str, operation: str) -> IdempotencyKey:
    """Inside the operation's transaction, before it acts: a concurrent request with the same key
    waits on the unique index until this one commits, then fails (IntegrityError) and reads our
    result; if this one rolls back, it goes ahead."""
    return await IdempotencyKey.create(user_id=user_id, key=key, operation=operation)


DUPLICATE = IntegrityError


# ---------------------------------------------------------------- featuring, and the replay's timeline


async def feature_product(stream: LiveStream, product_id: int) -> LiveStream:
    """Offers the product on the stream if it is not yet, and makes it the one highlighted."""
    product = await Product.get_or_none(id=product_id)
    if product is None:
        raise not_found("product", product_id)
    if product.vendor_id != stream.vendor_id:
        raise forbidden(f"Product {product_id} belongs to another vendor.")
    async with outbox.transaction():
        # The stream row lock serialises featuring on one stream, so positions stay distinct
        # and exactly one product is highlighted.
        locked = await LiveStream.filter(id=stream.id).select_for_update(no_key=True).first()
        if locked.status == StreamStatus.ENDED:
            raise conflict("An ended stream cannot feature products.")
        links = await StreamProduct.filter(stream_id=stream.id)
        await StreamProduct.filter(stream_id=stream.id, highlighted=True).update(highlighted=False)
        if any(link.product_id == product_id for link in links):
            await StreamProduct.filter(stream_id=stream.id, product_id=product_id).update(highlighted=True)
        else:
            position = max((link.position for link in links), default=-1) + 1
            await StreamProduct.create(stream_id=stream.id, product_id=product_id, position=position, highlighted=True)
        await record_featured(stream.id, product_id)  # the replay's timeline: what was on screen when
        await outbox.append(stream.id, events.stream_updated(stream.id))
    return locked




async def record_featured(stream_id: int, product_id: int) -> None:
    await StreamMoment.create(stream_id=stream_id, kind="featured", product_id=product_id, at=utcnow())


@dataclass
class Span:
    start: int
    end: int
    product_id: int
    ref: Model | None = None


# Each list of a timeline holds at most this many (the earliest in the range asked): a page asks
# for narrower ranges as the video plays, and the query cost limit counts on the bound.
MAX_TIMELINE_ITEMS = 100


@dataclass
class Timeline:
    duration: int
    comments: list[tuple[int, object]]  # (offset, comment row)
    products: list[Span]
    deals: list[Span]
    auctions: list[Span]


def _offset(start: dt.datetime, moment: dt.datetime, duration: int) -> int:
    return max(0, min(duration, int((moment - start).total_seconds())))


async def timeline(stream: LiveStream, duration: int, start: int | None, end: int | None) -> Timeline:
    """What was on screen from `start` to `end` seconds (inclusive; None: the edge): comments by
    their offset, and featured products, deals and auctions as spans that overlap the range.
    A span still open when the stream ended (a deal the sweep never closed) ends at the duration."""
    begin = stream.started_at
    low = 0 if start is None else max(0, start)
    high = duration if end is None else min(duration, end)
    if begin is None:
        return Timeline(duration, [], [], [], [])
    comments = [
        (_offset(begin, row.created_at, duration), row)
        for row in await StreamInteraction.filter(
            stream_id=stream.id, interaction_type=InteractionType.COMMENT, deleted_at__isnull=True,
            created_at__gte=begin + dt.timedelta(seconds=low),
            created_at__lt=begin + dt.timedelta(seconds=high + 1),
        ).order_by("created_at", "id").limit(MAX_TIMELINE_ITEMS)
    ]
    moments = await StreamMoment.filter(stream_id=stream.id, kind="featured").order_by("at", "id")
    firsts = await StreamProduct.filter(stream_id=stream.id).order_by("position")
    products: list[Span] = []
    # Before any Feature, the stream shows its first product from the start.
    marks = ([(0, firsts[0].product_id)] if firsts and (not moments or moments[0].at > begin) else [])
    marks += [(_offset(begin, m.at, duration), m.product_id) for m in moments]
    for i, (offset, product_id) in enumerate(marks):
        until = marks[i + 1][0] if i + 1 < len(marks) else duration
        products.append(Span(offset, until, product_id))

    def capped(moment: dt.datetime | None) -> int:
        return duration if moment is None else _offset(begin, moment, duration)

    deals = [
        Span(capped(d.opens_at), capped(d.ended_at or d.ends_at), d.product_id, d)
        for d in await FlashDeal.filter(stream_id=stream.id).order_by("opens_at", "id")
    ]
    auctions = [
        Span(capped(a.started_at), capped(a.closed_at or a.ends_at), a.product_id, a)
        for a in await Auction.filter(stream_id=stream.id).order_by("started_at", "id")
    ]

    def overlapping(spans: list[Span]) -> list[Span]:
        return [s for s in spans if s.start <= high and s.end >= low][:MAX_TIMELINE_ITEMS]

    return Timeline(duration, comments, overlapping(products), overlapping(deals), overlapping(auctions))
