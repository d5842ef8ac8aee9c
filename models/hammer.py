"""An auction's close: the clock ran out, the winner gets an order at the hammer price (through
commerce, which itself takes flash deals from models/live.py: so this sits above both)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tortoise.expressions import F

from livecart.models import events, outbox
from livecart.models.catalog import Product
from livecart.models.commerce import Line, place_order
from livecart.models.fields import to_money
from livecart.models.live import Auction


@dataclass
class Hammer:
    auction: Auction
    order_id: int | None
    stream_order_id: int | None


async def close_auction(auction_id: int, now: dt.datetime) -> Hammer | None:
    """Ends the auction if its clock has run out: the conditional UPDATE is won by one caller
    only (another process sweeping, a timer, a bid), which then, in the same transaction, orders
    the unit for the winner at the hammer price, or puts it back in stock. None: not this caller's."""
    async with outbox.transaction():
        won = await Auction.filter(id=auction_id, closed_at__isnull=True, ends_at__lte=now).update(closed_at=now)
        if not won:
            return None
        auction = await Auction.get(id=auction_id)
        # The auction's end, and the stream's stock: its unit back if nobody bid, else the winner's order.
        told = [events.auction_changed(auction.stream_id, auction.id), events.stock_changed(auction.stream_id, auction.product_id)]
        if auction.leader_id is None:
            await Product.filter(id=auction.product_id).update(stock=F("stock") + 1)
            await outbox.append(auction.stream_id, *told)
            return Hammer(auction, None, None)
        # The unit was taken when the auction started: give it back for the order to take.
        await Product.filter(id=auction.product_id).update(stock=F("stock") + 1)
        purchase = await place_order(
            auction.leader_id,
            [Line(auction.product_id, 1, auction.stream_id, unit_price=to_money(auction.price))],
            deals=False, live_stock=False, told={auction.stream_id: told},
        )
        auction.order_id = purchase.order.id
        await Auction.filter(id=auction_id).update(order_id=purchase.order.id)
        stream_order = purchase.stream_orders[0].id if purchase.stream_orders else None
        return Hammer(auction, purchase.order.id, stream_order)
