"""Carts, orders and the seller's figures in the schema."""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.permission import BasePermission
from strawberry.types import Info

from livecart.schema.scalars import EVENT_CURSOR
from livecart.models import commerce as m
from livecart.models import policy
from livecart.models.figures import StreamFigures
from livecart.models.fields import MAX_PAGE, MAX_TOTAL
from livecart.resolvers import catalog as catalog_r
from livecart.resolvers import commerce as r
from livecart.resolvers import engagement as engagement_r
from livecart.resolvers import user as user_r
from livecart.schema.catalog import Product, ProductOnStream
from livecart.schema.cost import list_size
from livecart.schema.facts import caller_dependent
from livecart.schema.engagement import Viewer
from livecart.schema.permissions import IsAuthenticated
from livecart.schema.user import User, user_type

if TYPE_CHECKING:
    from livecart.schema.stream import LiveStream, SavedStream


@strawberry.type
class StreamStats:
    event_cursor: str | None = strawberry.field(default=None, description=EVENT_CURSOR)
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
    revenue: Decimal = strawberry.field(description=f"At most {MAX_TOTAL}: a purchase that would pass it is refused.")

    @strawberry.field(description="Of revenue, what flash deals brought in (at their deal prices).")
    async def deal_revenue(self) -> Decimal:
        from livecart.resolvers import live as live_r

        return await live_r.deal_revenue(int(self.stream_id))

    @classmethod
    def from_figures(cls, figures: StreamFigures) -> "StreamStats":
        # The same fields by name (the domain's dataclass is the source); only the id changes type.
        values = dataclasses.asdict(figures)
        return cls(**{**values, "stream_id": strawberry.ID(str(figures.stream_id))})


async def stream_stats(info: Info, stream_id: int) -> StreamStats:
    """The stream's figures now, from the counters on its row (one statement; NOT_FOUND if no such stream)."""
    return StreamStats.from_figures(await r.stream_figures(int(stream_id)))


@strawberry.type
class StreamOrder(ProductOnStream):
    event_cursor: str | None = strawberry.field(default=None, description=EVENT_CURSOR)
    model: strawberry.Private[m.StreamOrder]

    @strawberry.field
    def order_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.model.order_id))

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


class OwnerOnly(BasePermission):
    """Only the seller of the stream (or replay) the field belongs to; anyone else gets null and
    FORBIDDEN there (UNAUTHENTICATED when anonymous) while the rest of the answer stands."""

    depends_on_caller = True  # its fields' answers are never shared between callers (schema/facts.py)

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        user = await info.context.require_user()
        vendor = await user_r.vendor_of_user(info, user.id)
        policy.check_acts_for(vendor, source.model.vendor_id, "Only the stream's seller may see this.")
        return True


@strawberry.type
class OwnerFields:
    """LiveStream's owner-only fields (stats, active viewers, orders, stream key), mixed into LiveStream.

    Figures come from the counters on the stream row already loaded, and the rest through
    per-request DataLoaders, so a list of streams costs a constant number of statements.
    """

    model: strawberry.Private[Any]

    @strawberry.field(description="Owner only.", permission_classes=[OwnerOnly])
    async def stats(self, info: Info) -> StreamStats | None:
        viewer_count = await engagement_r.viewer_count(info, self.model.id)
        return StreamStats.from_figures(StreamFigures.of(self.model, viewer_count=viewer_count))

    @strawberry.field(
        description=f"Owner only: viewer sessions active now, first joined first: the first `first` (1 to {MAX_PAGE}).",
        permission_classes=[OwnerOnly],
        metadata=list_size(MAX_PAGE, "first", MAX_PAGE),
    )
    async def active_viewers(self, info: Info, first: int = MAX_PAGE) -> list[Viewer] | None:
        return [Viewer.from_model(row) for row in await r.active_viewers(info, self.model.id, first)]

    @strawberry.field(
        description=f"Owner only: purchases attributed to this stream, newest first: the first `first` (1 to {MAX_PAGE}).",
        permission_classes=[OwnerOnly],
        metadata=list_size(MAX_PAGE, "first", MAX_PAGE),
    )
    async def orders(self, info: Info, first: int = MAX_PAGE) -> list[StreamOrder] | None:
        return [StreamOrder(model=row) for row in await r.orders_of_stream(info, self.model.id, first)]

    @strawberry.field(
        description="Owner only: the secret key a broadcaster publishes the video with.",
        permission_classes=[OwnerOnly],
    )
    def stream_key(self) -> str | None:
        return self.model.stream_key


# ---------------------------------------------------------------- ending a stream


@strawberry.enum
class EndStreamAction(enum.Enum):
    SAVE = strawberry.enum_value("save", description="End the stream and keep it for on-demand viewing.")
    DELETE = strawberry.enum_value("delete", description="End the stream and keep no replay.")


@strawberry.type
class EndStreamResult:
    stream: Annotated["LiveStream", strawberry.lazy("livecart.schema.stream")]
    saved_stream: Annotated["SavedStream", strawberry.lazy("livecart.schema.stream")] | None = strawberry.field(
        description="Null when the action was DELETE."
    )
    stats: StreamStats


# ---------------------------------------------------------------- cart and orders


@strawberry.type
class ProductLine:
    """A product and its quantity: what cart items and order items share."""

    model: strawberry.Private[m.CartItem | m.OrderItem]

    @strawberry.field
    async def product(self, info: Info) -> Product:
        return Product.from_model(await catalog_r.product_by_id(info, self.model.product_id))

    @strawberry.field
    def quantity(self) -> int:
        return self.model.quantity


@strawberry.type
class CartItem(ProductLine):
    model: strawberry.Private[m.CartItem]

    @strawberry.field(description="The stream the item was added from, if any.")
    def stream_id(self) -> strawberry.ID | None:
        return strawberry.ID(str(self.model.stream_id)) if self.model.stream_id else None


@strawberry.type
class Cart:
    lines: strawberry.Private[list[m.CartItem]]

    @strawberry.field(
        description=f"One line per product; at most {m.MAX_CART_LINES}.", metadata=list_size(m.MAX_CART_LINES)
    )
    def items(self) -> list[CartItem]:
        return [CartItem(model=line) for line in self.lines]

    @strawberry.field(description=f"What the cart costs at today's prices; at most {MAX_TOTAL}.")
    async def total(self, info: Info) -> Decimal:
        total = Decimal("0.00")
        for line in self.lines:
            product = await catalog_r.product_by_id(info, line.product_id)
            total += product.price * line.quantity
        return total


IdempotencyKeyArg = Annotated[
    str | None,
    strawberry.argument(
        description="Any string of 1 to 100 characters the client makes up per intent (a UUID): a repeat with "
        "the same key, even concurrent, returns the first result and never acts twice."
    ),
]

ShowMyNameArg = Annotated[
    bool,
    strawberry.argument(description='Name me in the live page\'s "just bought" line; otherwise it says "someone".'),
]

OrderStatus = strawberry.enum(m.OrderStatus, name="OrderStatus")


@strawberry.type
class OrderItem(ProductLine):
    model: strawberry.Private[m.OrderItem]

    @strawberry.field(description="The price of one unit when it was ordered.")
    def unit_price(self) -> Decimal:
        return self.model.unit_price

    @strawberry.field
    def amount(self) -> Decimal:
        return self.model.amount

    @strawberry.field(description="The stream this item was bought on, if any.")
    def stream_id(self) -> strawberry.ID | None:
        return strawberry.ID(str(self.model.stream_id)) if self.model.stream_id else None


@strawberry.type
class Order:
    model: strawberry.Private[m.Order]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.model.id))

    @strawberry.field
    async def buyer(self, info: Info) -> User:
        return await user_type(info, self.model.buyer_id)

    @strawberry.field
    def status(self) -> OrderStatus:
        return self.model.status

    @strawberry.field(description=f"At most {MAX_TOTAL}.")
    def total(self) -> Decimal:
        return self.model.total

    @strawberry.field(
        description=f"One per product; at most {m.MAX_CART_LINES} (a cart's lines).", metadata=list_size(m.MAX_CART_LINES)
    )
    async def items(self, info: Info) -> list[OrderItem]:
        return [OrderItem(model=row) for row in await r.items_of_order(info, self.model.id)]

    @strawberry.field
    def created_at(self) -> dt.datetime:
        return self.model.created_at


# A page of orders times their items stays within the query cost limit (schema/cost.py).
ORDERS_PAGE = 20


@strawberry.type
class CommerceQuery:
    @strawberry.field(description="The caller's cart (UNAUTHENTICATED when anonymous).", metadata=caller_dependent())
    async def cart(self, info: Info) -> Cart:
        return Cart(lines=await r.cart(info))

    @strawberry.field(
        description=f"The caller's orders, newest first (UNAUTHENTICATED when anonymous): the first `first` (1 to {MAX_PAGE}).",
        metadata=caller_dependent(list_size(MAX_PAGE, "first", ORDERS_PAGE)),
    )
    async def my_orders(self, info: Info, first: int = ORDERS_PAGE) -> list[Order]:
        return [Order(model=row) for row in await r.my_orders(info, first)]


@strawberry.type
class CommerceMutation:
    @strawberry.mutation(
        description=(
            f"Adds to the cart's line of that product (1 to {m.MAX_LINE_QUANTITY} in all); a cart holds at most "
            f"{m.MAX_CART_LINES} products and a total of at most {MAX_TOTAL} (BAD_USER_INPUT with `limit` otherwise)."
        ),
        permission_classes=[IsAuthenticated],
    )
    async def add_to_cart(
        self, info: Info, product_id: strawberry.ID, quantity: int = 1, stream_id: strawberry.ID | None = None
    ) -> Cart:
        return Cart(lines=await r.add_to_cart(info, product_id, quantity, stream_id))

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def remove_from_cart(self, info: Info, product_id: strawberry.ID) -> Cart:
        return Cart(lines=await r.remove_from_cart(info, product_id))

    @strawberry.mutation(
        description=(
            "Orders the whole cart at once: every line or none. An order totals at most "
            f"{MAX_TOTAL}, and a stream's revenue at most {MAX_TOTAL} (BAD_USER_INPUT with `limit` otherwise)."
        ),
        permission_classes=[IsAuthenticated],
    )
    async def checkout(
        self, info: Info, idempotency_key: IdempotencyKeyArg = None, show_my_name: ShowMyNameArg = False
    ) -> Order:
        return Order(model=await r.checkout(info, idempotency_key, show_my_name))

    @strawberry.mutation(
        description=(
            f"Orders one product at once, skipping the cart. An order totals at most {MAX_TOTAL}, and a "
            f"stream's revenue at most {MAX_TOTAL} (BAD_USER_INPUT with `limit` otherwise)."
        ),
        permission_classes=[IsAuthenticated],
    )
    async def buy_now(
        self, info: Info, product_id: strawberry.ID, quantity: int = 1, stream_id: strawberry.ID | None = None,
        idempotency_key: IdempotencyKeyArg = None, show_my_name: ShowMyNameArg = False,
    ) -> Order:
        return Order(model=await r.buy_now(info, product_id, quantity, stream_id, idempotency_key, show_my_name))
