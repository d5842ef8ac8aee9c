"""Carts, orders, purchases on streams and the seller's figures."""
from __future__ import annotations

from collections.abc import Sequence

from strawberry.types import Info

from livecart.models import commerce
from livecart.models.commerce import CartItem, Order, OrderItem, StreamOrder
from livecart.models.engagement import StreamViewer
from livecart.models.errors import not_found
from livecart.models.figures import StreamFigures
from livecart.models.figures import stream_figures as figures_of_stream
from livecart.models.fields import check_first, parse_id
from livecart.models.clock import utcnow
from livecart.resolvers import live
from livecart.resolvers.loaders import rows_by_id, rows_grouped

# ---------------------------------------------------------------- loaders


async def load_stream_orders(keys: Sequence[int]) -> list[StreamOrder | None]:
    return await rows_by_id(StreamOrder, keys)


async def load_orders_of_stream(keys: Sequence[int]) -> list[list[StreamOrder]]:
    return await rows_grouped(StreamOrder, "stream_id", keys, ("-created_at", "-id"))


async def load_items_of_order(keys: Sequence[int]) -> list[list[OrderItem]]:
    return await rows_grouped(OrderItem, "order_id", keys, ("id",))


async def load_active_viewers(keys: Sequence[int]) -> list[list[StreamViewer]]:
    """Sessions active now (a lapsed one the sweeper has not closed yet is not), first joined first."""
    rows = StreamViewer.filter(is_active=True, expires_at__gt=utcnow())
    groups: dict[int, list[StreamViewer]] = {key: [] for key in keys}
    for row in await rows.filter(stream_id__in=set(keys)).order_by("joined_at", "id"):
        groups[row.stream_id].append(row)
    return [groups[key] for key in keys]


async def stream_order_by_id(info: Info, stream_order_id: int) -> StreamOrder | None:
    # A stream order never changes once written, so the per-connection cache cannot go stale.
    return await info.context.loader(load_stream_orders).load(stream_order_id)


async def orders_of_stream(info: Info, stream_id: int, first: int) -> list[StreamOrder]:
    check_first(first)
    return (await info.context.loader(load_orders_of_stream).load(stream_id))[:first]


async def items_of_order(info: Info, order_id: int) -> list[OrderItem]:
    return await info.context.loader(load_items_of_order).load(order_id)


async def active_viewers(info: Info, stream_id: int, first: int) -> list[StreamViewer]:
    check_first(first)
    return (await info.context.loader(load_active_viewers).load(stream_id))[:first]


async def stream_figures(stream_id: int) -> StreamFigures:
    figures = await figures_of_stream(stream_id)
    if figures is None:
        raise not_found("stream", stream_id)
    return figures


# ---------------------------------------------------------------- cart and orders


def _stream_arg(stream_id: str | None) -> int | None:
    return parse_id("streamId", stream_id) if stream_id is not None else None


async def cart(info: Info) -> list[CartItem]:
    user = await info.context.require_user()
    return await commerce.cart_query(user.id)


async def add_to_cart(info: Info, product_id: str, quantity: int, stream_id: str | None) -> list[CartItem]:
    user = await info.context.require_user()
    await commerce.add_to_cart(user.id, parse_id("productId", product_id), quantity, _stream_arg(stream_id))
    return await commerce.cart_query(user.id)


async def remove_from_cart(info: Info, product_id: str) -> list[CartItem]:
    user = await info.context.require_user()
    await commerce.remove_from_cart(user.id, parse_id("productId", product_id))
    return await commerce.cart_query(user.id)


async def checkout(info: Info, idempotency_key: str | None = None, show_name: bool = False) -> Order:
    user = await info.context.require_user()
    purchase = await commerce.checkout(user.id, idempotency_key, show_name)
    await live.publish_purchase(info.context.broker, purchase)
    return purchase.order


async def buy_now(
    info: Info, product_id: str, quantity: int, stream_id: str | None, idempotency_key: str | None = None,
    show_name: bool = False,
) -> Order:
    user = await info.context.require_user()
    purchase = await commerce.buy_now(
        user.id, parse_id("productId", product_id), quantity, _stream_arg(stream_id), idempotency_key, show_name
    )
    await live.publish_purchase(info.context.broker, purchase)
    return purchase.order


async def my_orders(info: Info, first: int) -> list[Order]:
    check_first(first)
    user = await info.context.require_user()
    return await commerce.orders_of_buyer_query(user.id).limit(first)
