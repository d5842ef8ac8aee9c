"""Carts, orders and the seller's figures in the schema."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry
from strawberry.types import Info

from models import commerce as m
from resolvers import catalog as catalog_r
from resolvers import commerce as r
from schema.catalog import Product
from schema.user import User, user_type


@strawberry.type
class StreamStats:
    stream_id: strawberry.ID
    duration_seconds: int
    viewer_count: int = strawberry.field(description="Viewer sessions active now.")
    unique_viewers: int = strawberry.field(
        description="Distinct viewers over the whole stream (a user counts once; each anonymous session once)."
    )
    peak_viewers: int = strawberry.field(description="The most viewer sessions active at one time.")
    likes: int
    dislikes: int
    comments: int
    orders: int = strawberry.field(description="Orders that bought on this stream.")
    items_sold: int
    revenue: Decimal

    @classmethod
    def from_figures(cls, figures: m.StreamFigures) -> "StreamStats":
        return cls(
            stream_id=strawberry.ID(str(figures.stream_id)),
            duration_seconds=figures.duration_seconds,
            viewer_count=figures.viewer_count,
            unique_viewers=figures.unique_viewers,
            peak_viewers=figures.peak_viewers,
            likes=figures.likes,
            dislikes=figures.dislikes,
            comments=figures.comments,
            orders=figures.orders,
            items_sold=figures.items_sold,
            revenue=figures.revenue,
        )


async def stream_stats(info: Info, stream_id: int) -> StreamStats:
    """The stream's figures now, from the counters on its row (one statement; NOT_FOUND if no such stream)."""
    return StreamStats.from_figures(await r.stream_figures(int(stream_id)))


@strawberry.type
class StreamOrder:
    model: strawberry.Private[m.StreamOrder]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.model.id))

    @strawberry.field
    def order_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.model.order_id))

    @strawberry.field
    def stream_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.model.stream_id))

    @strawberry.field
    async def product(self, info: Info) -> Product:
        return Product.from_model(await catalog_r.product_by_id(info, self.model.product_id))

    @strawberry.field
    def quantity(self) -> int:
        return self.model.quantity

    @strawberry.field
    def amount(self) -> Decimal:
        return self.model.amount

    @strawberry.field
    async def buyer(self, info: Info) -> User:
        return await user_type(info, self.model.buyer_id)

    @strawberry.field
    def created_at(self) -> dt.datetime:
        return self.model.created_at


async def stream_order_by_id(info: Info, id: int) -> StreamOrder | None:
    """A purchase attributed to a stream, batched with the others asked for in the same tick."""
    row = await r.stream_order_by_id(info, int(id))
    return StreamOrder(model=row) if row else None


@strawberry.type
class OwnerFields:
    """LiveStream's owner-only fields (stats, active viewers, orders, stream key), mixed into LiveStream."""
