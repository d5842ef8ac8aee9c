"""Carts, orders and the purchases attributed to streams."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal

from tortoise import fields
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.indexes import Index
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model

from livecart.models import live, outbox
from livecart.models import events
from livecart.models.atomic import atomic
from livecart.models.catalog import Product
from livecart.models.errors import DomainError, ErrorCode, bad_input, not_found
from livecart.models.fields import MAX_TOTAL, MoneyField, to_money
from livecart.models.stream import LiveStream, StreamProduct, StreamStatus
from livecart.models.clock import utcnow

MAX_LINE_QUANTITY = 100
MAX_CART_LINES = 50  # distinct products in one cart (so in one order): bounds Cart.items and Order.items


def total_over_limit(what: str, argument: str) -> DomainError:
    """A total the database's money column could not hold (issue 13): refused, never a crash."""
    return DomainError(
        ErrorCode.BAD_USER_INPUT,
        f"{argument}: {what} may be at most {MAX_TOTAL}",
        argument=argument,
        limit=str(MAX_TOTAL),
    )


class OrderStatus(str, enum.Enum):
    PLACED = "placed"
    CANCELLED = "cancelled"


class CartItem(Model):
    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField("models.User", related_name="cart_items", on_delete=fields.CASCADE)
    product = fields.ForeignKeyField("models.Product", related_name="cart_items", on_delete=fields.CASCADE)
    quantity = fields.IntField()
    stream = fields.ForeignKeyField("models.LiveStream", related_name="cart_items", on_delete=fields.SET_NULL, null=True)
    added_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "cart_items"
        unique_together = (("user", "product"),)
        constraints = (
            CheckConstraint(check=f"quantity BETWEEN 1 AND {MAX_LINE_QUANTITY}", name="cart_items_quantity_valid"),
        )


class Order(Model):
    id = fields.IntField(primary_key=True)
    # Orders are financial records: deleting a buyer or product never erases them.
    buyer = fields.ForeignKeyField("models.User", related_name="orders", on_delete=fields.RESTRICT)
    status = fields.CharEnumField(OrderStatus, max_length=16, default=OrderStatus.PLACED)
    total = MoneyField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "orders"
        indexes = (Index(fields=("buyer_id", "created_at"), name="orders_idx_buyer_id"),)
        constraints = (CheckConstraint(check="total >= 0", name="orders_total_not_negative"),)


class OrderItem(Model):
    id = fields.IntField(primary_key=True)
    order = fields.ForeignKeyField("models.Order", related_name="items", on_delete=fields.CASCADE)
    product = fields.ForeignKeyField("models.Product", related_name="order_items", on_delete=fields.RESTRICT)
    quantity = fields.IntField()
    unit_price = MoneyField()
    amount = MoneyField()
    stream = fields.ForeignKeyField("models.LiveStream", related_name="order_items", on_delete=fields.SET_NULL, null=True)

    class Meta:
        table = "order_items"
        indexes = (Index(fields=("order_id",), name="order_items_idx_order_id"),)
        constraints = (
            CheckConstraint(check="quantity > 0", name="order_items_quantity_positive"),
        )


class StreamOrder(Model):
    """A purchase attributed to the stream it was made on (the seller's figures)."""

    id = fields.IntField(primary_key=True)
    stream = fields.ForeignKeyField("models.LiveStream", related_name="stream_orders", on_delete=fields.CASCADE)
    order = fields.ForeignKeyField("models.Order", related_name="stream_orders", on_delete=fields.CASCADE)
    product = fields.ForeignKeyField("models.Product", related_name="stream_orders", on_delete=fields.RESTRICT)
    vendor = fields.ForeignKeyField("models.Vendor", related_name="stream_orders", on_delete=fields.RESTRICT)
    buyer = fields.ForeignKeyField("models.User", related_name="stream_orders", on_delete=fields.RESTRICT)
    quantity = fields.IntField()
    amount = MoneyField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "stream_orders"
        indexes = (
            Index(fields=("stream_id",), name="stream_orders_idx_stream_id"),
            Index(fields=("vendor_id",), name="stream_orders_idx_vendor_id"),
            Index(fields=("created_at",), name="stream_orders_idx_created_at"),
        )
        constraints = (
            CheckConstraint(check="quantity > 0", name="stream_orders_quantity_positive"),
            CheckConstraint(check="amount >= 0", name="stream_orders_amount_not_negative"),
        )


# ---------------------------------------------------------------- the cart


def check_quantity(quantity: int) -> int:
    if not 1 <= quantity <= MAX_LINE_QUANTITY:
        raise bad_input("quantity", f"1 to {MAX_LINE_QUANTITY}")
    return quantity


def out_of_stock(product: Product, wanted: int) -> DomainError:
    return DomainError(
        ErrorCode.OUT_OF_STOCK,
        f"Not enough stock of {product.name}: {product.stock} left, {wanted} asked.",
        productId=str(product.id),
        productName=product.name,
        available=product.stock,
        requested=wanted,
    )


async def _existing_product(product_id: int) -> Product:
    product = await Product.get_or_none(id=product_id)
    if product is None:
        raise not_found("product", product_id)
    return product


async def _check_stream_exists(stream_id: int | None) -> None:
    if stream_id is not None and not await LiveStream.exists(id=stream_id):
        raise not_found("stream", stream_id)


async def add_to_cart(user_id: int, product_id: int, quantity: int, stream_id: int | None = None) -> CartItem:
    """Adds to the line of that product (one line per product), remembering the stream it came from."""
    check_quantity(quantity)
    product = await _existing_product(product_id)
    await _check_stream_exists(stream_id)
    for attempt in range(2):
        try:
            async with atomic():
                line = await CartItem.filter(user_id=user_id, product_id=product_id).select_for_update().first()
                total = quantity + (line.quantity if line else 0)
                if total > MAX_LINE_QUANTITY:
                    raise bad_input("quantity", f"at most {MAX_LINE_QUANTITY} of one product in the cart")
                if total > product.stock:
                    raise out_of_stock(product, total)
                await _check_cart_after(user_id, product, line, total)
                if line is None:
                    return await CartItem.create(user_id=user_id, product_id=product_id, quantity=total, stream_id=stream_id)
                line.quantity = total
                line.stream_id = stream_id if stream_id is not None else line.stream_id
                await line.save(update_fields=("quantity", "stream_id"))
                return line
        except IntegrityError:
            # A concurrent add created the line between our read and our insert: merge into it.
            if attempt:
                raise
    raise AssertionError("unreachable")


async def _check_cart_after(user_id: int, product: Product, line: CartItem | None, quantity: int) -> None:
    """The cart with `quantity` of `product` must stay within MAX_CART_LINES lines and a total
    the money column can hold (at today's prices, as Cart.total reads it)."""
    others = await CartItem.filter(user_id=user_id).exclude(product_id=product.id).values_list("product_id", "quantity")
    if line is None and len(others) >= MAX_CART_LINES:
        raise bad_input("productId", f"a cart holds at most {MAX_CART_LINES} products")
    prices = dict(await Product.filter(id__in=[p for p, _ in others]).values_list("id", "price"))
    total = to_money(product.price) * quantity + sum((to_money(prices[p]) * q for p, q in others), Decimal("0.00"))
    if total > MAX_TOTAL:
        raise total_over_limit("the cart's total", "quantity")


async def remove_from_cart(user_id: int, product_id: int) -> None:
    await _existing_product(product_id)
    await CartItem.filter(user_id=user_id, product_id=product_id).delete()


def cart_query(user_id: int):
    return CartItem.filter(user_id=user_id).order_by("added_at", "id")


# ---------------------------------------------------------------- orders


@dataclass(frozen=True)
class Line:
    product_id: int
    quantity: int
    stream_id: int | None = None
    unit_price: Decimal | None = None  # set: this price, not the product's (an auction's hammer price)


@dataclass
class Purchase:
    """A placed order and what the events after commit need to name."""

    order: Order
    stream_orders: list[StreamOrder]
    # Live streams featuring what sold (their stock changed), read inside the transaction so
    # that nothing after the commit can fail and make a placed order look undone.
    offering_stream_ids: list[int]
    # Deals this order counted against (their units left moved) and those it sold out.
    deal_ids: list[int] = field(default_factory=list)
    sold_out_deal_ids: list[int] = field(default_factory=list)
    replayed: bool = False  # the first result of an idempotency key, returned again: nothing new happened
    # The streams whose event log this purchase wrote to: their events wait to be published.
    logged_stream_ids: list[int] = field(default_factory=list)

    @property
    def stream_ids(self) -> list[int]:
        return sorted({so.stream_id for so in self.stream_orders})

    @property
    def told_stream_ids(self) -> list[int]:
        """The live streams offering what sold, and the streams credited with it: the ones it tells."""
        return sorted({*self.offering_stream_ids, *self.stream_ids})


async def _take_stock(lines: list[Line]) -> dict[int, Product]:
    """Takes every line's quantity, or raises OUT_OF_STOCK for the first that is short.

    Each take is one conditional statement (never below zero, however many buy at once),
    and the rows are locked in product id order so concurrent checkouts cannot deadlock.
    Runs inside the caller's transaction: a short line rolls back the lines before it.
    """
    for line in sorted(lines, key=lambda line: line.product_id):
        taken = await Product.filter(id=line.product_id, stock__gte=line.quantity).update(
            stock=F("stock") - line.quantity
        )
        if not taken:
            raise out_of_stock(await _existing_product(line.product_id), line.quantity)
    # The rows are ours until commit, so these are the prices of this moment.
    return {p.id: p for p in await Product.filter(id__in=[line.product_id for line in lines])}


async def _attribute_to_streams(order: Order, items: list[OrderItem], products: dict[int, Product]) -> list[StreamOrder]:
    """Records each item bought on a LIVE stream of its product's own seller, and adds it
    to that stream's figures. Stream rows are locked (in id order) so revenue, added in
    Python because SQLite keeps money as text, cannot lose a concurrent purchase."""
    wanted = sorted({item.stream_id for item in items if item.stream_id is not None})
    if not wanted:
        return []
    streams = {
        s.id: s
        for s in await LiveStream.filter(id__in=wanted).order_by("id").select_for_update(no_key=True)
    }
    for item in items:
        stream = streams.get(item.stream_id)
        bought_on_it = (
            stream is not None
            and stream.status == StreamStatus.LIVE
            and stream.vendor_id == products[item.product_id].vendor_id
        )
        if not bought_on_it:
            item.stream_id = None  # not bought on that stream: it gets no credit
    attributed = [item for item in items if item.stream_id is not None]
    stream_orders = [
        await StreamOrder.create(
            stream_id=item.stream_id,
            order_id=order.id,
            product_id=item.product_id,
            vendor_id=products[item.product_id].vendor_id,
            buyer_id=order.buyer_id,
            quantity=item.quantity,
            amount=item.amount,
        )
        for item in attributed
    ]
    for stream_id in sorted({item.stream_id for item in attributed}):
        mine = [item for item in attributed if item.stream_id == stream_id]
        revenue = to_money(streams[stream_id].revenue) + sum((item.amount for item in mine), Decimal("0.00"))
        if revenue > MAX_TOTAL:  # the caller's transaction rolls back the stock taken
            raise total_over_limit("a stream's revenue", "quantity")
        await LiveStream.filter(id=stream_id).update(
            order_count=F("order_count") + 1,
            items_sold=F("items_sold") + sum(item.quantity for item in mine),
            revenue=revenue,
        )
    return stream_orders


async def place_order(
    buyer_id: int, lines: list[Line], *, deals: bool = True, show_name: bool = False,
    live_stock: bool = True, told: dict[int, list[events.Event]] | None = None,
) -> Purchase:
    """Stock, order, items and stream attribution: all or nothing. Call inside an
    outbox.transaction(), which logs the purchase's events. A line bought on a stream with a
    flash deal open on its product takes the deal's price and counts against the deal's units and
    the buyer's limit (models/live.py).

    `live_stock`: tell the live streams offering what sold of their stock ("someone just bought",
    naming the buyer only with `show_name`), sell-outs and the deals it ended. `told`: events of
    the caller's own change, per stream, logged with the purchase's (before them)."""
    taken, sold_out = await live.take_deals(buyer_id, lines, utcnow()) if deals else ({}, [])
    products = await _take_stock(lines)

    def price_of(index: int, line: Line) -> Decimal:
        if index in taken:
            return to_money(taken[index].price)
        return to_money(line.unit_price if line.unit_price is not None else products[line.product_id].price)

    items = [
        OrderItem(
            product_id=line.product_id,
            quantity=line.quantity,
            unit_price=price_of(index, line),
            amount=to_money(price_of(index, line) * line.quantity),
            stream_id=line.stream_id,
        )
        for index, line in enumerate(lines)
    ]
    total = sum((item.amount for item in items), Decimal("0.00"))
    if total > MAX_TOTAL:  # the caller's transaction rolls back the stock taken
        raise total_over_limit("an order's total", "quantity" if len(lines) == 1 else "cart")
    order = await Order.create(buyer_id=buyer_id, total=total)
    stream_orders = await _attribute_to_streams(order, items, products)
    for item in items:
        item.order_id = order.id
    await OrderItem.bulk_create(items)
    await live.record_deal_purchases(buyer_id, order.id, lines, taken)
    offering = await StreamProduct.filter(
        product_id__in=list(products), stream__status=StreamStatus.LIVE
    ).values_list("stream_id", flat=True)
    purchase = Purchase(
        order=order, stream_orders=stream_orders, offering_stream_ids=sorted(set(offering)),
        deal_ids=sorted({deal.id for deal in taken.values()}), sold_out_deal_ids=sold_out,
    )
    per_stream = _purchase_events(purchase, told or {})
    if live_stock:
        sold_out_deals = [deal for deal in taken.values() if deal.id in sold_out]
        _add_live_stock(per_stream, purchase, products, sold_out_deals, buyer_id if show_name else None)
    await _log(per_stream)
    purchase.logged_stream_ids = sorted(per_stream)
    return purchase


def _purchase_events(purchase: Purchase, told: dict[int, list[events.Event]]) -> dict[int, list[events.Event]]:
    """The caller's events, then the seller's order feed and the stream's stock (stream_updated)
    on every live stream offering what sold."""
    per_stream = {stream_id: list(told_there) for stream_id, told_there in told.items()}
    for stream_id in purchase.told_stream_ids:
        orders = [events.order_placed(stream_id, so.id) for so in purchase.stream_orders if so.stream_id == stream_id]
        per_stream.setdefault(stream_id, []).extend([*orders, events.stream_updated(stream_id)])
    return per_stream


def _add_live_stock(
    per_stream: dict[int, list[events.Event]], purchase: Purchase, products: dict[int, Product],
    sold_out_deals: list, named_buyer: int | None,
) -> None:
    """Live commerce (issue 18): each product's stock moved on every stream offering it or credited
    with it, a product now at 0 sold out at once, and each deal this order sold out ended."""
    for stream_id in purchase.told_stream_ids:
        there = per_stream.setdefault(stream_id, [])
        for product_id in sorted(products):
            there.append(events.stock_changed(stream_id, product_id, bought=True, buyer_id=named_buyer))
            if products[product_id].stock == 0:  # the rows were read after the stock was taken
                there.append(events.sold_out(stream_id, product_id))
    for deal in sorted(sold_out_deals, key=lambda d: d.id):
        per_stream.setdefault(deal.stream_id, []).extend(
            [events.sold_out(deal.stream_id, deal.product_id), events.deal_changed(deal.stream_id, deal.id)]
        )


async def _log(per_stream: dict[int, list[events.Event]]) -> None:
    """Streams in id order: their counter rows are locked in that order, like the stream rows before them."""
    for stream_id in sorted(per_stream):
        await outbox.append(stream_id, *per_stream[stream_id])


async def _replay(buyer_id: int, key: str | None, operation: str) -> Purchase | None:
    """The first result of an idempotency key already used by this buyer, if any."""
    if key is None:
        return None
    row = await live.remembered(buyer_id, key, operation)
    if row is None or row.order_id is None:
        return None
    return Purchase(order=await Order.get(id=row.order_id), stream_orders=[], offering_stream_ids=[], replayed=True)


async def _once(buyer_id: int, key: str | None, operation: str, act) -> Purchase:
    """Runs `act` (a transaction) once per key: the key is claimed inside the same transaction,
    so a concurrent request with the same key waits for it, then returns its result."""
    key = live.check_key(key)
    earlier = await _replay(buyer_id, key, operation)
    if earlier is not None:
        return earlier
    try:
        return await act(key)
    except live.DUPLICATE:
        earlier = await _replay(buyer_id, key, operation) if key is not None else None
        if earlier is None:
            raise
        return earlier


async def checkout(buyer_id: int, idempotency_key: str | None = None, show_name: bool = False) -> Purchase:
    """Orders the whole cart in one transaction: every line or none, and the cart emptied.
    `show_name`: the live streams' "just bought" line names the buyer."""
    return await _once(buyer_id, idempotency_key, "checkout", lambda key: _checkout(buyer_id, key, show_name))


async def _claim(buyer_id: int, key: str | None, operation: str):
    return await live.claim_key(buyer_id, key, operation) if key is not None else None


async def _checkout(buyer_id: int, key: str | None, show_name: bool) -> Purchase:
    async with outbox.transaction():
        claim = await _claim(buyer_id, key, "checkout")
        # Locking the cart lines makes a second concurrent checkout of this cart wait, then find it empty.
        cart = await CartItem.filter(user_id=buyer_id).order_by("product_id").select_for_update()
        if not cart:
            raise bad_input("cart", "is empty")
        purchase = await place_order(
            buyer_id, [Line(line.product_id, line.quantity, line.stream_id) for line in cart], show_name=show_name
        )
        await CartItem.filter(id__in=[line.id for line in cart]).delete()
        if claim is not None:
            await type(claim).filter(id=claim.id).update(order_id=purchase.order.id)
    return purchase


async def buy_now(
    buyer_id: int, product_id: int, quantity: int, stream_id: int | None = None, idempotency_key: str | None = None,
    show_name: bool = False,
) -> Purchase:
    """Orders one product at once, without touching the cart (`show_name`: as checkout)."""
    check_quantity(quantity)
    await _check_stream_exists(stream_id)

    async def act(key: str | None) -> Purchase:
        async with outbox.transaction():
            claim = await _claim(buyer_id, key, "buyNow")
            purchase = await place_order(buyer_id, [Line(product_id, quantity, stream_id)], show_name=show_name)
            if claim is not None:
                await type(claim).filter(id=claim.id).update(order_id=purchase.order.id)
            return purchase

    return await _once(buyer_id, idempotency_key, "buyNow", act)


def orders_of_buyer_query(buyer_id: int):
    return Order.filter(buyer_id=buyer_id).order_by("-created_at", "-id")
