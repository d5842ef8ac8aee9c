"""Carts, orders, purchases on streams and the seller's figures."""
from __future__ import annotations

from collections.abc import Sequence

from strawberry.types import Info

from models import commerce
from models.commerce import StreamFigures, StreamOrder
from models.errors import not_found
from resolvers.loaders import rows_by_id


async def load_stream_orders(keys: Sequence[int]) -> list[StreamOrder | None]:
    return await rows_by_id(StreamOrder, keys)


async def stream_order_by_id(info: Info, stream_order_id: int) -> StreamOrder | None:
    # A stream order never changes once written, so the per-connection cache cannot go stale.
    return await info.context.loader(load_stream_orders).load(stream_order_id)


async def stream_figures(stream_id: int) -> StreamFigures:
    figures = await commerce.stream_figures(stream_id)
    if figures is None:
        raise not_found("stream", stream_id)
    return figures
